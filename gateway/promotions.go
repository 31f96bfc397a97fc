package gateway

import (
	"net/http"
	"regexp"

	"github.com/refit-ml/refit/internal/registry"
)

// handlePromotions shows a dataset's promotion history and every decision.
func (s *Server) handlePromotions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := s.dataset(w, r)
		if !ok {
			return
		}
		proms, err := s.reg.Promotions(r.Context(), d.Name)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		decisions, err := s.reg.Decisions(r.Context(), d.Name)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		// Each decision as it stands now: a person may have promoted the run since.
		writeJSON(w, http.StatusOK, map[string]any{"promotions": proms, "decisions": registry.Standings(decisions, proms)})
	})
}

type promotionRequest struct {
	// RunID promotes that run; Rollback returns to the previous champion.
	RunID    string `json:"run_id,omitempty"`
	Rollback bool   `json:"rollback,omitempty"`
	// Actor is recorded as who did it (default admin).
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
}

var actorPattern = regexp.MustCompile(`^[\pL\pN ._@+-]{1,100}$`)

func (req promotionRequest) validate() error {
	switch {
	case req.RunID == "" && !req.Rollback:
		return badRequest("run_id", `want {"run_id": "..."} to promote a run or {"rollback": true} to return to the previous champion`)
	case req.RunID != "" && req.Rollback:
		return badRequest("rollback", "run_id and rollback exclude each other")
	case req.Actor != "" && !actorPattern.MatchString(req.Actor):
		return badRequest("actor", "actor: up to 100 letters, digits, spaces or ._@+-")
	case len(req.Reason) > 1000:
		return badRequest("reason", "reason: at most 1000 bytes")
	}
	return nil
}

// handlePromote promotes a chosen run or rolls back, as a new entry of the
// history; gateways follow at once through model.promoted.
func (s *Server) handlePromote() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := s.dataset(w, r)
		if !ok {
			return
		}
		var req promotionRequest
		if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		if err := req.validate(); err != nil {
			s.fail(w, r, err)
			return
		}
		var p registry.Promotion
		var err error
		if req.Rollback {
			p, err = s.promoter.Rollback(r.Context(), d.Name, req.Actor, req.Reason)
		} else {
			p, err = s.promoter.Promote(r.Context(), d.Name, req.RunID, req.Actor, req.Reason)
			if registry.IsNotFound(err) {
				err = errorf(http.StatusNotFound, "no run %q in dataset %q", req.RunID, d.Name)
			}
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, p)
	})
}
