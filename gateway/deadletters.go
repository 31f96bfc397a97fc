package gateway

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/registry"
)

// Dead letters: events a handler failed on for good, kept with the reason
// by every worker process (cmd/refit records them). An admin lists them
// and, once the cause is fixed (a dataset definition added, a bucket
// permission granted), replays one: its message is published again on its
// topic. Every handler is idempotent, so the other consumer groups of that
// topic hearing it again change nothing.

// republisher sends a recorded message again (bus.EventPublisher).
type republisher interface {
	Republish(ctx context.Context, topic string, payload []byte, metadata map[string]string, replayOf string) (string, error)
}

type deadLetterView struct {
	ID string `json:"id"`
	registry.DeadLetter
	Replay *registry.Replay `json:"replay,omitempty"`
}

type replayView struct {
	registry.Replay
	Already bool `json:"already,omitempty"`
}

// deadLetterRoutes: GET /v1/deadletters and POST /v1/deadletters/{id}/replay,
// both admin (payloads carry data).
func (s *Server) deadLetterRoutes() {
	timeout := func(h http.Handler) http.Handler {
		return http.TimeoutHandler(h, s.cfg.Timeout, `{"error":"request timed out"}`)
	}
	s.mux.Handle("GET /v1/deadletters", s.admin(timeout(s.handleDeadLetters())))
	s.mux.Handle("POST /v1/deadletters/{id}/replay", s.admin(timeout(s.handleReplay())))
}

func (s *Server) deadLetters(ctx context.Context) ([]deadLetterView, error) {
	dls, err := s.reg.DeadLetters(ctx)
	if err != nil {
		return nil, err
	}
	replays, err := s.reg.Replays(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]deadLetterView, 0, len(dls))
	for _, d := range dls {
		v := deadLetterView{ID: registry.DeadLetterID(d), DeadLetter: d}
		if rp, ok := replays[v.ID]; ok {
			v.Replay = &rp
		}
		out = append(out, v)
	}
	slices.SortStableFunc(out, func(a, b deadLetterView) int { return a.At.Compare(b.At) })
	return out, nil
}

func (s *Server) handleDeadLetters() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, err := s.deadLetters(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"dead_letters": out})
	})
}

// handleReplay republishes a dead letter once: a second request answers
// the first replay (already: true) and publishes nothing.
func (s *Server) handleReplay() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, err := s.replay(w, r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
}

func (s *Server) replay(w http.ResponseWriter, r *http.Request) (replayView, error) {
	var req struct {
		Actor string `json:"actor,omitempty"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
			return replayView{}, err
		}
	}
	if req.Actor == "" {
		req.Actor = "admin"
	}
	if !actorPattern.MatchString(req.Actor) {
		return replayView{}, badRequest("actor", "actor: up to 100 letters, digits, spaces or ._@+-")
	}
	ctx := r.Context()
	all, err := s.deadLetters(ctx)
	if err != nil {
		return replayView{}, err
	}
	id := r.PathValue("id")
	i := slices.IndexFunc(all, func(d deadLetterView) bool { return d.ID == id })
	if i < 0 {
		return replayView{}, errorf(http.StatusNotFound, "no dead letter %q (GET /v1/deadletters lists them)", id)
	}
	d := all[i]
	if d.Replay != nil {
		return replayView{Replay: *d.Replay, Already: true}, nil
	}
	rp, ok := s.pub.(republisher)
	if !ok {
		return replayView{}, errorf(http.StatusNotImplemented, "this gateway's event publisher cannot republish messages")
	}
	msgID, err := rp.Republish(ctx, d.Topic, []byte(d.Payload), d.Metadata, id)
	if errors.Is(err, bus.ErrNotReplayable) {
		return replayView{}, errorf(http.StatusConflict, "dead letter %s: %v", id, err)
	}
	if err != nil {
		return replayView{}, err
	}
	rec := registry.Replay{DeadLetterID: id, Topic: d.Topic, MessageID: msgID, Actor: req.Actor, At: time.Now().UTC()}
	// Published, then recorded: a crash between the two leaves a dead letter
	// an admin may replay again, which the idempotent handlers absorb.
	if err := s.reg.AddReplay(ctx, rec); registry.IsDuplicate(err) {
		// A concurrent replay recorded first: answer with its record.
		if replays, err := s.reg.Replays(ctx); err == nil {
			if prev, ok := replays[id]; ok {
				return replayView{Replay: prev, Already: true}, nil
			}
		}
	} else if err != nil {
		return replayView{}, err
	}
	s.log.Info("dead letter replayed", "dead_letter", id, "topic", d.Topic, "handler", d.Handler, "message", msgID, "actor", req.Actor)
	return replayView{Replay: rec}, nil
}
