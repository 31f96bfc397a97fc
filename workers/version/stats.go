package version

import (
	"context"

	"github.com/refit-ml/refit/internal/dataset"
)

// writeStats writes the sufficient statistics of a new rows blob beside it
// (see workers/stats), so training and promotion on this version and its
// descendants read them instead of the rows. They are derived data: a
// failure here costs the reader one computation from the rows, so it does
// not fail the cut.
func (w *Worker) writeStats(ctx context.Context, d *dataset.Definition, rowsBlob string) {
	if err := w.stats.Ensure(ctx, d, rowsBlob); err != nil {
		w.log.Warn("statistics not written; training computes them from the rows", "dataset", d.Name, "blob", rowsBlob, "err", err)
	}
}
