package pipeline_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
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
