package promote

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
)

func TestRuleClassificationMetrics(t *testing.T) {
	auc := func(x float64) *float64 { return &x }
	m := func(acc, f1, loss float64, roc *float64) registry.Metrics {
		var r registry.Metrics
		r.Rows = 200
		r.Classification = &registry.Classification{Accuracy: acc, F1Macro: f1, LogLoss: loss, ROCAUC: roc}
		return r
	}
	champ := m(0.80, 0.79, 0.45, auc(0.88))
	for _, tt := range []struct {
		name       string
		p          dataset.Promotion
		challenger registry.Metrics
		want       string
	}{
		{"higher accuracy wins", dataset.Promotion{PrimaryMetric: "accuracy"}, m(0.82, 0.70, 0.60, nil), registry.StatusPromoted},
		{"lower accuracy loses", dataset.Promotion{PrimaryMetric: "accuracy"}, m(0.78, 0.90, 0.10, nil), registry.StatusRejected},
		{"accuracy gain below min_improvement loses", dataset.Promotion{PrimaryMetric: "accuracy", MinImprovement: 0.05}, m(0.82, 0.8, 0.4, nil), registry.StatusRejected},
		{"higher macro F1 wins", dataset.Promotion{PrimaryMetric: "f1_macro"}, m(0.70, 0.80, 0.60, nil), registry.StatusPromoted},
		{"lower log loss wins", dataset.Promotion{PrimaryMetric: "log_loss"}, m(0.70, 0.70, 0.40, nil), registry.StatusPromoted},
		{"higher log loss loses", dataset.Promotion{PrimaryMetric: "log_loss"}, m(0.90, 0.90, 0.50, nil), registry.StatusRejected},
		{"higher AUC wins", dataset.Promotion{PrimaryMetric: "roc_auc"}, m(0.70, 0.70, 0.60, auc(0.90)), registry.StatusPromoted},
		{"an undefined AUC never wins", dataset.Promotion{PrimaryMetric: "roc_auc"}, m(0.99, 0.99, 0.01, nil), registry.StatusRejected},
		{"below the accuracy bound is rejected", dataset.Promotion{PrimaryMetric: "log_loss", Min: map[string]float64{"accuracy": 0.85}}, m(0.84, 0.9, 0.1, nil), registry.StatusRejected},
		{"above the log-loss bound is rejected", dataset.Promotion{PrimaryMetric: "accuracy", Max: map[string]float64{"log_loss": 0.5}}, m(0.95, 0.9, 0.6, nil), registry.StatusRejected},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := Rule("reviews", tt.p, tt.challenger, &champ, 2)
			require.Equal(t, tt.want, v.Status, v.Reason)
		})
	}
	// A regression run scored under a classification metric has no value:
	// it cannot be promoted over a classifier.
	var reg registry.Metrics
	reg.RMSE = 1
	require.Equal(t, registry.StatusRejected, Rule("reviews", dataset.Promotion{PrimaryMetric: "accuracy"}, reg, &champ, 2).Status)
}
