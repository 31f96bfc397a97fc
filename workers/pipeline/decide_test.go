package pipeline_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store"
	"github.com/refit-ml/refit/workers"
	"github.com/refit-ml/refit/workers/promote"
)

// playOrdered runs the scenario, delivering the model.trained events of one
// version (published together) with the better or the worse run first.
func playOrdered(p *pipeline, worseFirst bool) {
	for _, a := range scenario() {
		p.q.Publish(context.Background(), a(p))
		for len(p.q.pending) > 0 {
			n := 0
			for n < len(p.q.pending) {
				if _, ok := p.q.pending[n].(*events.ModelTrained); !ok {
					break
				}
				n++
			}
			slices.SortStableFunc(p.q.pending[:n], func(a, b events.Event) int {
				c := cmp.Compare(a.(*events.ModelTrained).Metrics.RMSE, b.(*events.ModelTrained).Metrics.RMSE)
				if worseFirst {
					return -c
				}
				return c
			})
			p.step(1)
		}
	}
}

// TestSpecsOfOneVersionAreDecidedTogether: the specs of a version are
// decided once, over all their runs, so the weaker spec is never promoted
// as "first model" and replaced a moment later, and the history does not
// depend on which run's event arrives first (issue 12, item 17).
func TestSpecsOfOneVersionAreDecidedTogether(t *testing.T) {
	history := func(worseFirst bool) []string {
		p, _, _ := freshPipeline(t, 150)
		playOrdered(p, worseFirst)
		ctx := context.Background()
		proms, err := p.reg.Promotions(ctx, "housing")
		require.NoError(t, err)
		var out []string
		perVersion := map[int]int{}
		for _, pr := range proms {
			out = append(out, fmt.Sprintf("#%d %s v%d", pr.Sequence, pr.Spec, pr.Version))
			perVersion[pr.Version]++
		}
		for v, n := range perVersion {
			require.Equal(t, 1, n, "version %d promoted %d times: %v", v, n, out)
		}
		decisions, err := p.reg.Decisions(ctx, "housing")
		require.NoError(t, err)
		runs, err := p.reg.Runs(ctx, "housing")
		require.NoError(t, err)
		require.Len(t, decisions, len(runs), "every run decided once")
		return out
	}
	better, worse := history(false), history(true)
	require.NotEmpty(t, better)
	require.Equal(t, "#1 linear-onehot v1", better[0], "the stronger spec is the first model")
	require.Equal(t, better, worse)
}

// hidingDocs hides the runs of one spec, as if it had not been trained.
type hidingDocs struct {
	store.Docs
	spec string
}

func (h hidingDocs) hidden(collection string, body []byte) bool {
	return collection == "runs" && strings.Contains(string(body), `"spec":"`+h.spec+`"`)
}

func (h hidingDocs) Get(ctx context.Context, collection, key string) (json.RawMessage, error) {
	b, err := h.Docs.Get(ctx, collection, key)
	if err == nil && h.hidden(collection, b) {
		return nil, store.ErrNotFound
	}
	return b, err
}

func (h hidingDocs) List(ctx context.Context, collection, prefix string) ([]store.Doc, error) {
	docs, err := h.Docs.List(ctx, collection, prefix)
	return slices.DeleteFunc(docs, func(d store.Doc) bool { return h.hidden(collection, d.Body) }), err
}

// TestAVersionWaitsForEachSpecOrItsRecordedFailure: a version is decided
// only once each spec it lists has a run, or a failure the train worker
// recorded; then on the runs there are.
func TestAVersionWaitsForEachSpecOrItsRecordedFailure(t *testing.T) {
	ctx := context.Background()
	p, bucket, docs := freshPipeline(t, 150)
	// Train everything, hold back promotion.
	for _, a := range scenario()[:2] {
		p.q.Publish(ctx, a(p))
		for len(p.q.pending) > 0 {
			e := p.q.pending[0]
			p.q.pending = p.q.pending[1:]
			if _, ok := e.(*events.ModelTrained); !ok {
				require.NoError(t, p.deliver(e))
			}
		}
	}
	v1, err := p.reg.Version(ctx, "housing", 1)
	require.NoError(t, err)
	// A promote worker that cannot see the hashed spec's run.
	catalog, err := dataset.NewCatalog(p.def)
	require.NoError(t, err)
	blind, err := promote.New(p.deps(catalog, bucket, registry.New(hidingDocs{Docs: docs, spec: "linear-hashed"}), p.q))
	require.NoError(t, err)
	require.NoError(t, blind.Reconcile(ctx))
	decisions, err := p.reg.Decisions(ctx, "housing")
	require.NoError(t, err)
	require.Empty(t, decisions, "waiting for linear-hashed")

	hashed := slices.IndexFunc(p.def.Models, func(m dataset.ModelSpec) bool { return m.Name == "linear-hashed" })
	failed := workers.FailedRunKey("housing", registry.RunID(p.def.Models[hashed].Hash(), v1.Hash))
	_, err = bucket.Write(ctx, failed, blob.Overwrite, func(w io.Writer) error { _, err := io.WriteString(w, "degenerate\n"); return err })
	require.NoError(t, err)
	require.NoError(t, blind.Reconcile(ctx))
	decisions, err = p.reg.Decisions(ctx, "housing")
	require.NoError(t, err)
	require.Len(t, decisions, 1, "decided on the run there is")
	champ, err := p.reg.LatestPromotion(ctx, "housing")
	require.NoError(t, err)
	require.Equal(t, "linear-onehot", champ.Spec)
	require.Equal(t, 1, champ.Version)
}
