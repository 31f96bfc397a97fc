package promote

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
)

func TestRule(t *testing.T) {
	off := false
	m := func(rmse, mae, r2 float64) registry.Metrics {
		return registry.Metrics{Metrics: events.Metrics{RMSE: rmse, MAE: mae, R2: r2, Rows: 100}}
	}
	champ := m(10, 8, 0.5)
	for _, tt := range []struct {
		name       string
		p          dataset.Promotion
		challenger registry.Metrics
		champion   *registry.Metrics
		status     string
		reason     string
	}{
		{"no champion: the first model", dataset.Promotion{PrimaryMetric: "rmse"}, m(12, 9, 0.4), nil,
			registry.StatusPromoted, "first model for housing: rmse 12 on 100 rows of version 3"},
		{"lower is better, lower wins", dataset.Promotion{PrimaryMetric: "rmse"}, m(9, 9, 0.1), &champ,
			registry.StatusPromoted, "rmse 9 beats the champion's 10 by the required 0 (gain 1) on the same 100 rows of version 3"},
		{"lower is better, higher loses", dataset.Promotion{PrimaryMetric: "mae"}, m(9, 8.5, 0.9), &champ,
			registry.StatusRejected, "mae 8.5 does not beat the champion's 8 by the required 0 (gain -0.5) on the same 100 rows of version 3"},
		{"higher is better, higher wins", dataset.Promotion{PrimaryMetric: "r2"}, m(11, 9, 0.6), &champ,
			registry.StatusPromoted, "r2 0.6 beats the champion's 0.5 by the required 0 (gain 0.1) on the same 100 rows of version 3"},
		{"higher is better, lower loses", dataset.Promotion{PrimaryMetric: "r2"}, m(1, 1, 0.4), &champ,
			registry.StatusRejected, "r2 0.4 does not beat the champion's 0.5 by the required 0 (gain -0.1) on the same 100 rows of version 3"},
		{"a tie is not a gain", dataset.Promotion{PrimaryMetric: "rmse"}, m(10, 1, 0.9), &champ,
			registry.StatusRejected, "rmse 10 does not beat the champion's 10 by the required 0 (gain 0) on the same 100 rows of version 3"},
		{"a gain exactly min_improvement wins", dataset.Promotion{PrimaryMetric: "rmse", MinImprovement: 0.5}, m(9.5, 8, 0.5), &champ,
			registry.StatusPromoted, "rmse 9.5 beats the champion's 10 by the required 0.5 (gain 0.5) on the same 100 rows of version 3"},
		{"a gain under min_improvement loses", dataset.Promotion{PrimaryMetric: "rmse", MinImprovement: 0.5}, m(9.75, 8, 0.5), &champ,
			registry.StatusRejected, "rmse 9.75 does not beat the champion's 10 by the required 0.5 (gain 0.25) on the same 100 rows of version 3"},
		{"bounds before the comparison", dataset.Promotion{PrimaryMetric: "rmse", Min: map[string]float64{"r2": 0}}, m(1, 1, -0.1), &champ,
			registry.StatusRejected, "outside the promotion bounds: r2 -0.1 is below promotion.min.r2 = 0 (on 100 rows of version 3)"},
		{"bounds apply to the first model too", dataset.Promotion{PrimaryMetric: "rmse", Max: map[string]float64{"rmse": 5}}, m(6, 1, 0.9), nil,
			registry.StatusRejected, "outside the promotion bounds: rmse 6 is above promotion.max.rmse = 5 (on 100 rows of version 3)"},
		{"auto_promote false: a winner awaits approval", dataset.Promotion{PrimaryMetric: "rmse", AutoPromote: &off}, m(9, 8, 0.5), &champ,
			registry.StatusAwaitingApproval, "rmse 9 beats the champion's 10 by the required 0 (gain 1) on the same 100 rows of version 3; awaiting approval (promotion.auto_promote is false)"},
		{"auto_promote false: the first model awaits approval", dataset.Promotion{PrimaryMetric: "rmse", AutoPromote: &off}, m(9, 8, 0.5), nil,
			registry.StatusAwaitingApproval, "first model for housing: rmse 9 on 100 rows of version 3; awaiting approval (promotion.auto_promote is false)"},
		{"auto_promote false: a loser is rejected", dataset.Promotion{PrimaryMetric: "rmse", AutoPromote: &off}, m(11, 8, 0.5), &champ,
			registry.StatusRejected, "rmse 11 does not beat the champion's 10 by the required 0 (gain -1) on the same 100 rows of version 3"},
		{"an unknown metric is refused", dataset.Promotion{PrimaryMetric: "mse"}, m(9, 8, 0.5), nil,
			registry.StatusRejected, `unknown primary metric "mse"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := Rule("housing", tt.p, tt.challenger, tt.champion, 3)
			require.Equal(t, tt.status, v.Status)
			require.Equal(t, tt.reason, v.Reason)
			require.Equal(t, tt.status == registry.StatusPromoted, v.Promote())
		})
	}
}

// TestMetricTable: every metric a definition may bound has a row, so a
// bound is never silently skipped.
func TestMetricTable(t *testing.T) {
	for _, name := range []string{"rmse", "mae", "r2"} {
		_, ok := lookupMetric(name)
		require.True(t, ok, name)
	}
	require.Equal(t, 7.0, score(registry.Metrics{Metrics: events.Metrics{MAE: 7}}, "mae"))
	require.True(t, math.IsNaN(score(registry.Metrics{}, "nope")))
}
