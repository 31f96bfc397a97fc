package train

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers/stats"
)

// HandleBlobWritten computes a new rows blob's sufficient statistics, one
// blob per message: train replicas share the subscription, so they share
// the work, and each version's fit merges the results in blob order. A
// file already there ends it (create-only; a redelivery reads it). The fit
// computes any blob's statistics it finds missing, so this is a head start,
// not a step anything waits for.
func (w *Worker) HandleBlobWritten(ctx context.Context, e *events.BlobWritten) error {
	d, ok := w.datasets.Get(e.Dataset)
	if !ok {
		return bus.Permanent(fmt.Errorf("unknown dataset %q", e.Dataset))
	}
	if !stats.Needed(d) {
		return nil // no spec is fitted from statistics
	}
	if !isRowsBlob(d, e.Blob) {
		return bus.Permanent(fmt.Errorf("blob %q is not a rows blob of %s", e.Blob, d.Name))
	}
	start := time.Now()
	err := w.stats.Ensure(ctx, d, e.Blob, stats.BlobCheck{Version: e.Version, Rows: e.Rows, Hash: e.Hash})
	var corrupt *CorruptBlobError
	switch {
	case errors.As(err, &corrupt), errors.Is(err, blob.ErrNotExist):
		// The same bytes every time; the fit reports it on the version.
		return bus.Permanent(fmt.Errorf("statistics of %s: %w", e.Blob, err))
	case err != nil:
		return err
	}
	w.log.Info("blob statistics ready", "dataset", d.Name, "version", e.Version, "blob", e.Blob, "position", e.Position,
		"rows", e.Rows, "duration", time.Since(start), "correlation_id", e.CorrelationID)
	return nil
}

// isRowsBlob: a version's rows blobs are its staged chunks (an upload with
// no duplicate, taken as it was staged) or blobs the cut wrote.
func isRowsBlob(d *dataset.Definition, name string) bool {
	return strings.HasSuffix(name, ".csv") &&
		(strings.HasPrefix(name, "datasets/"+d.Name+"/rows/") || strings.HasPrefix(name, "staged/"+d.Name+"/"))
}

// fitsFromStats: least squares is a function of sufficient statistics, so
// a linear spec is fitted and scored from them, reading no rows; a kind
// without a closed form (logistic) reads the rows.
// (stats.Needed says whether a dataset has such a spec.)
func fitsFromStats(spec dataset.ModelSpec) bool { return spec.Kind == dataset.KindLinear }

// splitByFit separates the specs fitted from statistics from those fitted
// from rows (all of them when the worker is configured FitFromRows).
func splitByFit(specs []dataset.ModelSpec, fromRows bool) (byStats, byRows []dataset.ModelSpec) {
	for _, s := range specs {
		if !fromRows && fitsFromStats(s) {
			byStats = append(byStats, s)
		} else {
			byRows = append(byRows, s)
		}
	}
	return byStats, byRows
}

// fitStats fits and scores specs from the version's statistics (its
// parent's merged with its new blob's; see workers/stats). Specs the
// statistics cannot cover (ErrStatsLayout) are returned to be fitted from
// the rows.
func (w *Worker) fitStats(ctx context.Context, d *dataset.Definition, v registry.Version, specs []dataset.ModelSpec) ([]fitted, []model.Metrics, []dataset.ModelSpec, []error) {
	if len(specs) == 0 {
		return nil, nil, nil, nil
	}
	st, err := w.stats.Version(ctx, d, v)
	if err != nil {
		err = w.fitError(fmt.Errorf("statistics of %s/v%d: %w", d.Name, v.Number, err))
		errs := make([]error, len(specs))
		for i, spec := range specs {
			errs[i] = w.failed(ctx, d, v, spec, err)
		}
		return nil, nil, nil, errs
	}
	var done []fitted
	var ms []model.Metrics
	var rows []dataset.ModelSpec
	var errs []error
	for _, spec := range specs {
		art, err := model.FitFromStats(d, spec, st)
		if err == nil {
			var m model.Metrics
			if m, err = model.ScoreFromStats(d, art, st); err == nil {
				done = append(done, fitted{spec: spec, art: art, from: registry.FitStatistics})
				ms = append(ms, m)
				continue
			}
			err = fmt.Errorf("score on %s/v%d: %w", d.Name, v.Number, err)
		}
		if errors.Is(err, model.ErrStatsLayout) {
			w.log.Warn("statistics do not cover the spec; fitting from the rows", "dataset", d.Name, "version", v.Number, "spec", spec.Name, "err", err)
			rows = append(rows, spec)
			continue
		}
		errs = append(errs, w.failed(ctx, d, v, spec, w.fitError(fmt.Errorf("%s/v%d: %w", d.Name, v.Number, err))))
	}
	return done, ms, rows, errs
}

// reproduceFromStats refits a run fitted from statistics the same way:
// each blob's statistics recomputed from its rows (not read from their
// files), folded in blob order as workers/stats does, and fitted.
func (r *Reproducer) reproduceFromStats(ctx context.Context, d *dataset.Definition, run registry.Run, art *model.Artifact, v registry.Version, rowsBlobs dataset.Opener, start time.Time) (Reproduction, error) {
	var st *model.Stats
	for _, b := range v.Blobs {
		bs, err := model.ComputeStats(ctx, d, d.ScanBlobs(ctx, rowsBlobs, []string{b}, nil))
		if err != nil && ctx.Err() == nil {
			return Reproduction{}, fmt.Errorf("%w: run %s: the rows of version %d cannot be read: %w", ErrUnreproducible, run.ID, v.Number, err)
		}
		if err != nil {
			return Reproduction{}, err
		}
		if st == nil {
			st = bs
		} else if st, err = model.Merge(st, bs); err != nil {
			return Reproduction{}, fmt.Errorf("run %s: %w", run.ID, err)
		}
	}
	if st == nil {
		return Reproduction{}, fmt.Errorf("%w: run %s: version %d has no rows", ErrUnreproducible, run.ID, v.Number)
	}
	refit, err := model.FitFromStats(d, art.Spec.Model, st)
	if err != nil {
		return Reproduction{}, fmt.Errorf("run %s: refit: %w", run.ID, err)
	}
	b, err := refit.Marshal()
	if err != nil {
		return Reproduction{}, err
	}
	sum := model.Checksum(b)
	r.log.Info("reproduced", "run", run.ID, "dataset", run.Dataset, "from", registry.FitStatistics, "identical", sum == run.Checksum)
	return Reproduction{
		RunID: run.ID, Dataset: run.Dataset, Spec: art.Spec.Name, Version: v.Number, VersionHash: v.Hash, TrainRows: refit.TrainRows,
		RecordedChecksum: run.Checksum, Checksum: sum, Identical: sum == run.Checksum,
		DurationMS: float64(time.Since(start).Microseconds()) / 1000,
	}, nil
}
