package workers

import (
	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
)

// RunMetrics records a model's scores as a run or a decision holds them.
func RunMetrics(m model.Metrics) registry.Metrics {
	return registry.Metrics{
		Metrics:        events.Metrics{Rows: m.Rows, RMSE: m.RMSE, MAE: m.MAE, R2: m.R2},
		Classification: (*registry.Classification)(m.Classification),
	}
}
