package version

import (
	"context"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/registry"
)

// announceBlob publishes blob.written for the rows blob v adds, so a train
// replica computes its sufficient statistics (workers/stats) on a message
// of its own, before or while the version is trained. The cut does not
// compute them: a fit that finds a blob's statistics missing computes them
// itself, so a lost event costs time, never correctness, and a failure to
// publish does not fail the cut. A version whose parent predates recorded
// blob hashes has none to announce (its fit computes them).
func (w *Worker) announceBlob(ctx context.Context, v registry.Version, correlation string) {
	last := len(v.Blobs) - 1
	if last < 0 || len(v.BlobHashes) != len(v.Blobs) || len(v.BlobRows) != len(v.Blobs) {
		return
	}
	name := v.Blobs[last]
	err := w.pub.Publish(ctx, &events.BlobWritten{
		Meta:    events.Meta{ID: name, Dataset: v.Dataset, Time: v.CreatedAt, CorrelationID: correlation},
		Version: v.Number, Blob: name, Position: last, Rows: v.BlobRows[last], Hash: v.BlobHashes[last],
	})
	if err != nil {
		w.log.Warn("blob.written not published; training computes the statistics itself", "dataset", v.Dataset, "blob", name, "err", err)
	}
}
