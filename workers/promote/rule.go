package promote

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
)

// metric is one row of the table the rule reads scores through: its name
// in a dataset definition, which way is better, and where its value is.
type metric struct {
	name          string
	lowerIsBetter bool
	value         func(registry.Metrics) float64
}

// metricTable lists the metrics a promotion can compare on. A new metric
// (e.g. accuracy, f1_macro, roc_auc, log_loss for classifiers) is a new row.
func metricTable() []metric {
	return []metric{
		{"rmse", true, func(m registry.Metrics) float64 { return m.RMSE }},
		{"mae", true, func(m registry.Metrics) float64 { return m.MAE }},
		{"r2", false, func(m registry.Metrics) float64 { return m.R2 }},
		{"accuracy", false, classScore(func(c *registry.Classification) float64 { return c.Accuracy })},
		{"f1_macro", false, classScore(func(c *registry.Classification) float64 { return c.F1Macro })},
		{"log_loss", true, classScore(func(c *registry.Classification) float64 { return c.LogLoss })},
		{"roc_auc", false, classScore(func(c *registry.Classification) float64 {
			if c.ROCAUC == nil {
				return math.NaN() // undefined: one class absent from the rows
			}
			return *c.ROCAUC
		})},
	}
}

// classScore reads a classification metric; NaN for a run without
// classification scores, which wins no comparison and breaks no bound.
func classScore(f func(*registry.Classification) float64) func(registry.Metrics) float64 {
	return func(m registry.Metrics) float64 {
		if m.Classification == nil {
			return math.NaN()
		}
		return f(m.Classification)
	}
}

func lookupMetric(name string) (metric, bool) {
	for _, m := range metricTable() {
		if m.name == name {
			return m, true
		}
	}
	return metric{}, false
}

// score is a metric's value by name; NaN for a metric the table lacks, so
// no bound on it can be broken.
func score(m registry.Metrics, name string) float64 {
	if row, ok := lookupMetric(name); ok {
		return row.value(m)
	}
	return math.NaN()
}

// Verdict is what the promotion rule decides for a challenger.
type Verdict struct {
	Status string // registry.StatusPromoted, StatusRejected or StatusAwaitingApproval
	Reason string
}

// Promote reports whether the challenger becomes the champion now.
func (v Verdict) Promote() bool { return v.Status == registry.StatusPromoted }

// Rule is the promotion rule, a pure function of the dataset's promotion
// settings and the scores of challenger and champion (nil: no champion) on
// the same rows, those of version evalVersion. Bounds come first: a model
// outside them is not served, however bad the champion is.
func Rule(ds string, p dataset.Promotion, challenger registry.Metrics, champion *registry.Metrics, evalVersion int) Verdict {
	m, ok := lookupMetric(p.PrimaryMetric)
	if !ok {
		return Verdict{registry.StatusRejected, fmt.Sprintf("unknown primary metric %q", p.PrimaryMetric)}
	}
	if broken := p.Bounds(func(name string) float64 { return score(challenger, name) }); broken != "" {
		return Verdict{registry.StatusRejected, fmt.Sprintf("outside the promotion bounds: %s (on %d rows of version %d)", broken, challenger.Rows, evalVersion)}
	}
	var reason string
	if champion == nil {
		reason = fmt.Sprintf("first model for %s: %s %.6g on %d rows of version %d", ds, m.name, m.value(challenger), challenger.Rows, evalVersion)
	} else {
		gain := m.value(*champion) - m.value(challenger)
		if !m.lowerIsBetter {
			gain = -gain
		}
		wins := gain > 0 && gain >= p.MinImprovement
		verb := "beats"
		if !wins {
			verb = "does not beat"
		}
		reason = fmt.Sprintf("%s %.6g %s the champion's %.6g by the required %g (gain %.6g) on the same %d rows of version %d",
			m.name, m.value(challenger), verb, m.value(*champion), p.MinImprovement, gain, challenger.Rows, evalVersion)
		if !wins {
			return Verdict{registry.StatusRejected, reason}
		}
	}
	if !p.Auto() {
		return Verdict{registry.StatusAwaitingApproval, reason + "; awaiting approval (promotion.auto_promote is false)"}
	}
	return Verdict{registry.StatusPromoted, reason}
}

// Rank orders runs best first on metric (by their scores on their own
// version's test split), ties by spec name then run ID, so the order is the
// same however the runs arrived. Runs are left in place for an unknown
// metric, sorted by spec name.
func Rank(metricName string, runs []registry.Run) []registry.Run {
	out := slices.Clone(runs)
	m, ok := lookupMetric(metricName)
	slices.SortStableFunc(out, func(a, b registry.Run) int {
		if ok {
			x, y := m.value(a.Metrics), m.value(b.Metrics)
			if !m.lowerIsBetter {
				x, y = y, x
			}
			if c := cmp.Compare(x, y); c != 0 {
				return c
			}
		}
		if c := cmp.Compare(a.Spec, b.Spec); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}
