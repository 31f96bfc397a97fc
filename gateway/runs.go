package gateway

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers/train"
)

// Paging of GET /v1/datasets/{dataset}/runs.
const (
	defaultRunsPage = 100
	maxRunsPage     = 1000
)

type runsPage struct {
	Runs []registry.Run `json:"runs"`
	// NextPageToken, when set, fetches the next page (page_token=...).
	NextPageToken string `json:"next_page_token,omitempty"`
}

// handleRuns lists a dataset's runs in a stable order (creation time, then
// ID), filtered by spec name and version, a page at a time.
func (s *Server) handleRuns() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := s.dataset(w, r)
		if !ok {
			return
		}
		page, err := s.runsPage(r, d)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, page)
	})
}

func (s *Server) runsPage(r *http.Request, d *dataset.Definition) (runsPage, error) {
	q := r.URL.Query()
	limit := defaultRunsPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxRunsPage {
			return runsPage{}, badRequest("limit", "limit %q: want 1..%d", v, maxRunsPage)
		}
		limit = n
	}
	version := 0
	if v := q.Get("version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return runsPage{}, badRequest("version", "version %q: want a version number", v)
		}
		version = n
	}
	after, hasAfter, err := decodePageToken(q.Get("page_token"))
	if err != nil {
		return runsPage{}, err
	}
	runs, err := s.reg.Runs(r.Context(), d.Name)
	if err != nil {
		return runsPage{}, err
	}
	spec := q.Get("spec")
	runs = slices.DeleteFunc(runs, func(run registry.Run) bool {
		return (spec != "" && run.Spec != spec) || (version != 0 && run.Version != version) ||
			(hasAfter && compareRuns(run, after) <= 0)
	})
	slices.SortFunc(runs, compareRuns)
	page := runsPage{Runs: runs}
	if len(runs) > limit {
		page.Runs = runs[:limit]
		page.NextPageToken = encodePageToken(runs[limit-1])
	}
	return page, nil
}

func compareRuns(a, b registry.Run) int {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
}

// A page token is the position of the last run of a page: its creation
// time and ID, so a run created meanwhile never shifts the pages.
func encodePageToken(last registry.Run) string {
	return base64.RawURLEncoding.EncodeToString([]byte(last.CreatedAt.UTC().Format(time.RFC3339Nano) + " " + last.ID))
}

func decodePageToken(tok string) (registry.Run, bool, error) {
	if tok == "" {
		return registry.Run{}, false, nil
	}
	bad := badRequest("page_token", "page_token %q: use the next_page_token of a previous answer", tok)
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return registry.Run{}, false, bad
	}
	at, id, ok := strings.Cut(string(b), " ")
	t, err := time.Parse(time.RFC3339Nano, at)
	if !ok || err != nil || id == "" {
		return registry.Run{}, false, bad
	}
	return registry.Run{CreatedAt: t, ID: id}, true, nil
}

// findRun looks for a run in every dataset: run IDs are hashes of spec and
// content, unique across datasets in practice.
func (s *Server) findRun(ctx context.Context, id string) (registry.Run, error) {
	for _, name := range s.datasets.Names() {
		run, err := s.reg.Run(ctx, name, id)
		if err == nil {
			return run, nil
		}
		if !registry.IsNotFound(err) {
			return registry.Run{}, err
		}
	}
	return registry.Run{}, errorf(http.StatusNotFound, "no run %q in any dataset", id)
}

type runDetail struct {
	registry.Run
	// Params is the model spec the artifact was fitted from.
	Params        *dataset.ModelSpec `json:"params"`
	ArtifactError string             `json:"artifact_error,omitempty"`
	// Decision is the run's standing now (registry.StandingOf).
	Decision *registry.Standing `json:"decision"`
	// Promotions are the sequence numbers at which the run became champion.
	Promotions []int64          `json:"promotions"`
	Lineage    registry.Lineage `json:"lineage"`
}

// handleRun shows one run: its spec (from the artifact), scores, artifact,
// duration, code version, decision, promotions and lineage.
func (s *Server) handleRun() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		run, err := s.findRun(ctx, r.PathValue("id"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out := runDetail{Run: run, Promotions: []int64{}}
		if art, err := model.Load(ctx, s.bucket, run.Artifact, run.Checksum); err != nil {
			// Still worth showing the record: say what is wrong with the file.
			out.ArtifactError = err.Error()
		} else {
			out.Params = &art.Spec.Model
		}
		var dec *registry.Decision
		switch d, err := s.reg.Decision(ctx, run.Dataset, run.ID); {
		case err == nil:
			dec = &d
		case !registry.IsNotFound(err):
			s.fail(w, r, err)
			return
		}
		proms, err := s.reg.Promotions(ctx, run.Dataset)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if st, ok := registry.StandingOf(run.ID, dec, proms); ok {
			out.Decision = &st
		}
		for _, p := range proms {
			if p.RunID == run.ID {
				out.Promotions = append(out.Promotions, p.Sequence)
			}
		}
		if out.Lineage, err = s.reg.Lineage(ctx, run.Dataset, run.Version); err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
}

type runLineage struct {
	RunID string `json:"run_id"`
	Spec  string `json:"spec"`
	registry.Lineage
}

// handleRunLineage: from a model to its dataset version, and from there to
// every file generation and correction it was trained and tested on.
func (s *Server) handleRunLineage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		run, err := s.findRun(r.Context(), r.PathValue("id"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		l, err := s.reg.Lineage(r.Context(), run.Dataset, run.Version)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, runLineage{RunID: run.ID, Spec: run.Spec, Lineage: l})
	})
}

func (s *Server) handleVersionLineage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := s.dataset(w, r)
		if !ok {
			return
		}
		n, err := strconv.Atoi(r.PathValue("version"))
		if err != nil || n < 1 {
			s.fail(w, r, badRequest("version", "version %q: want a version number", r.PathValue("version")))
			return
		}
		l, err := s.reg.Lineage(r.Context(), d.Name, n)
		if registry.IsNotFound(err) {
			err = errorf(http.StatusNotFound, "dataset %q has no version %d", d.Name, n)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, l)
	})
}

// Reproducer refits a run from what it recorded (workers/train.Reproducer).
type Reproducer interface {
	Reproduce(ctx context.Context, run registry.Run) (train.Reproduction, error)
}

// handleReproduce refits a run and says whether it gives the recorded
// artifact's bytes.
func (s *Server) handleReproduce() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		run, err := s.findRun(r.Context(), r.PathValue("id"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out, err := s.repro.Reproduce(r.Context(), run)
		if errors.Is(err, train.ErrUnreproducible) {
			err = errorf(http.StatusConflict, "%v", err)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
}
