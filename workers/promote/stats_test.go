package promote_test

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/workers/promote"
	"github.com/refit-ml/refit/workers/workertest"
)

// TestDecisionsFromStatistics: challenger and champion are scored from the
// version's statistics, opening no rows blob, unless the rule names mae
// (only rows score it exactly); the decisions are the same either way.
func TestDecisionsFromStatistics(t *testing.T) {
	for _, tt := range []struct {
		name     string
		primary  string
		readRows bool
	}{
		{name: "rmse: statistics only", primary: "rmse"},
		{name: "mae: the test rows", primary: "mae", readRows: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := workertest.New(t, 150)
			evs := trained(t, e)
			var opened atomic.Int64
			e.Bucket.OpenFn = func(ctx context.Context, name string) (io.ReadCloser, error) {
				if strings.HasSuffix(name, ".csv") {
					opened.Add(1)
				}
				return e.Local.Open(ctx, name)
			}
			e.Def.Promotion.PrimaryMetric = tt.primary
			w, err := promote.New(e.Deps(t))
			require.NoError(t, err)
			require.NoError(t, w.HandleTrained(context.Background(), evs[0]))
			require.Equal(t, tt.readRows, opened.Load() > 0, "rows blobs opened: %d", opened.Load())
			decisions, err := e.Registry.Decisions(context.Background(), "housing")
			require.NoError(t, err)
			require.Len(t, decisions, 2)
			for _, d := range decisions {
				require.Positive(t, d.Challenger.RMSE)
				require.Positive(t, d.Challenger.MAE)
				require.Equal(t, 300, d.Challenger.Rows+trainRows(t, e, d.RunID), "test and train rows add up")
			}
		})
	}
}

func trainRows(t *testing.T, e *workertest.Env, runID string) int {
	t.Helper()
	r, err := e.Registry.Run(context.Background(), "housing", runID)
	require.NoError(t, err)
	return r.TrainRows
}
