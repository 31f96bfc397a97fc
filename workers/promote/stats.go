package promote

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers"
)

// scoreFromStats scores the runs' linear models on the test split of v
// from its statistics, reading no rows: SSE, and so RMSE and R², exactly;
// MAE from the statistics' bounded test sample (model.ScoreFromStats).
// ok is false when the rows must be read instead: the rule names MAE
// (model.NeedsRows), or a model is of a kind sums cannot score.
func (w *Worker) scoreFromStats(ctx context.Context, d *dataset.Definition, v registry.Version, runs []scoredRun) (out []registry.Metrics, ok bool, err error) {
	if model.NeedsRows(d) {
		return nil, false, nil
	}
	// Artifacts are small; the rows are what this path saves reading.
	arts := make([]*model.Artifact, len(runs))
	for i, r := range runs {
		a, err := model.Load(ctx, w.bucket, r.artifact, r.checksum)
		if errors.Is(err, model.ErrInvalidArtifact) {
			return nil, false, bus.Permanent(err)
		}
		if err != nil {
			return nil, false, err
		}
		if a.Format != model.FormatLinearV1 {
			return nil, false, nil
		}
		arts[i] = a
	}
	st, err := w.stats.Version(ctx, d, v)
	if err != nil {
		return nil, false, fmt.Errorf("statistics of %s/v%d: %w", d.Name, v.Number, err)
	}
	out = make([]registry.Metrics, len(runs))
	for i, a := range arts {
		m, err := model.ScoreFromStats(d, a, st)
		if err != nil {
			return nil, false, bus.Permanent(fmt.Errorf("score run %s from statistics: %w", runs[i].id, err))
		}
		if math.IsNaN(m.RMSE) {
			return nil, false, bus.Permanent(fmt.Errorf("score run %s: NaN", runs[i].id))
		}
		out[i] = workers.RunMetrics(m)
	}
	return out, true, nil
}
