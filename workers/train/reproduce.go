package train

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers/stats"
)

// ErrUnreproducible: what the run recorded (its artifact, its version or
// the version's rows) cannot be read as it was. Asking again will not help
// until the stored data is repaired.
var ErrUnreproducible = errors.New("run cannot be reproduced from what was recorded")

// definitions finds a dataset's definition.
type definitions interface {
	Get(name string) (*dataset.Definition, bool)
}

// versions reads recorded dataset versions (registry.Registry): one to
// refit, all of them for the row counts and hashes of older versions' blobs.
type versions interface {
	Version(ctx context.Context, ds string, n int) (registry.Version, error)
	stats.VersionLister
}

// Reproduction compares a refit with the recorded run.
type Reproduction struct {
	RunID            string  `json:"run_id"`
	Dataset          string  `json:"dataset"`
	Spec             string  `json:"spec"`
	Version          int     `json:"version"`
	VersionHash      string  `json:"version_hash"`
	TrainRows        int     `json:"train_rows"`
	RecordedChecksum string  `json:"recorded_checksum"`
	Checksum         string  `json:"checksum"`
	Identical        bool    `json:"identical"`
	DurationMS       float64 `json:"duration_ms"`
}

// Reproducer refits a run from what was recorded — the version's train
// split and the spec stored in the artifact — and compares the new
// artifact's checksum with the recorded one. Artifacts hold no timestamps,
// so the same code on the same rows gives the same bytes.
type Reproducer struct {
	datasets definitions
	versions versions
	bucket   dataset.Opener // artifacts and rows
	log      *slog.Logger
}

// NewReproducer builds a reproducer reading runs' inputs from bucket.
func NewReproducer(datasets definitions, versions versions, bucket dataset.Opener, logger *slog.Logger) *Reproducer {
	return &Reproducer{datasets: datasets, versions: versions, bucket: bucket, log: logger.With("component", "train.reproduce")}
}

// Reproduce refits run. Errors wrapping ErrUnreproducible name what
// recorded input could not be used.
func (r *Reproducer) Reproduce(ctx context.Context, run registry.Run) (Reproduction, error) {
	d, ok := r.datasets.Get(run.Dataset)
	if !ok {
		return Reproduction{}, fmt.Errorf("%w: run %s: dataset %q is not defined any more", ErrUnreproducible, run.ID, run.Dataset)
	}
	art, err := model.Load(ctx, r.bucket, run.Artifact, run.Checksum)
	if err != nil && ctx.Err() == nil {
		return Reproduction{}, fmt.Errorf("%w: run %s: the recorded artifact cannot be used: %w", ErrUnreproducible, run.ID, err)
	}
	if err != nil {
		return Reproduction{}, err
	}
	v, err := r.versions.Version(ctx, run.Dataset, run.Version)
	if registry.IsNotFound(err) {
		return Reproduction{}, fmt.Errorf("%w: run %s: version %d is not in the store", ErrUnreproducible, run.ID, run.Version)
	}
	if err != nil {
		return Reproduction{}, fmt.Errorf("run %s: version %d: %w", run.ID, run.Version, err)
	}
	if v.Hash != run.VersionHash {
		return Reproduction{}, fmt.Errorf("%w: run %s was trained on version hash %s, the store has %s", ErrUnreproducible, run.ID, run.VersionHash, v.Hash)
	}
	// The rows are checked against the version while they stream, as
	// training does: a short blob must not reproduce a different model.
	checks, err := stats.Checks(ctx, r.versions, v)
	if err != nil {
		if ctx.Err() == nil {
			return Reproduction{}, fmt.Errorf("%w: run %s: the rows of version %d cannot be read: %w", ErrUnreproducible, run.ID, v.Number, err)
		}
		return Reproduction{}, err
	}
	rowsBlobs := stats.VerifiedOpener{Opener: r.bucket, Checks: checks}
	start := time.Now()
	if run.FittedFrom == registry.FitStatistics {
		return r.reproduceFromStats(ctx, d, run, art, v, rowsBlobs, start)
	}
	var rowsErr error
	scan := d.ScanBlobs(ctx, rowsBlobs, v.Blobs, dataset.TrainRows)
	rows := func(fn func(dataset.StagedRow) error) error {
		// Tell the rows' errors from the fit's: only the former are the
		// recorded data's fault.
		var fnErr error
		err := scan(func(row dataset.StagedRow) error {
			fnErr = fn(row)
			return fnErr
		})
		if err != nil && fnErr == nil && ctx.Err() == nil {
			rowsErr = err
		}
		return err
	}
	refit, err := model.Fit(ctx, d, art.Spec.Model, rows)
	if rowsErr != nil {
		return Reproduction{}, fmt.Errorf("%w: run %s: the rows of version %d cannot be read: %w", ErrUnreproducible, run.ID, v.Number, rowsErr)
	}
	if err != nil {
		return Reproduction{}, fmt.Errorf("run %s: refit: %w", run.ID, err)
	}
	b, err := refit.Marshal()
	if err != nil {
		return Reproduction{}, err
	}
	sum := model.Checksum(b)
	r.log.Info("reproduced", "run", run.ID, "dataset", run.Dataset, "identical", sum == run.Checksum)
	return Reproduction{
		RunID: run.ID, Dataset: run.Dataset, Spec: art.Spec.Name, Version: v.Number, VersionHash: v.Hash, TrainRows: refit.TrainRows,
		RecordedChecksum: run.Checksum, Checksum: sum, Identical: sum == run.Checksum,
		DurationMS: float64(time.Since(start).Microseconds()) / 1000,
	}, nil
}
