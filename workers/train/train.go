// Package train fits every model spec of a dataset on each new dataset
// version, never twice on the same data: a run is named by the spec's hash
// and the version's content hash, and is recorded by insert.
package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers"
	"github.com/refit-ml/refit/workers/stats"
)

// Config is the worker's dependencies and its one option.
type Config struct {
	workers.Deps
	// CodeVersion is recorded on every run.
	CodeVersion string
	// FitFromRows fits every spec from the version's rows, as before
	// statistics: the baseline the incremental path is measured against.
	FitFromRows bool
}

// Worker is the train worker.
type Worker struct {
	datasets workers.Datasets
	bucket   blob.Bucket
	reg      *registry.Registry
	pub      workers.Publisher
	log      *slog.Logger
	now      func() time.Time
	version  string
	stats    *stats.Store
	fromRows bool

	runs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New builds the worker.
func New(cfg Config) (*Worker, error) {
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	w := &Worker{
		datasets: cfg.Datasets, bucket: cfg.Bucket, reg: cfg.Registry, pub: cfg.Publisher,
		log: cfg.Logger.With("component", "train"), now: cfg.Now(), version: cfg.CodeVersion, fromRows: cfg.FitFromRows,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refit_training_runs_total", Help: "Models trained by this process, by dataset and spec.",
		}, []string{"dataset", "spec"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "refit_training_duration_seconds", Help: "Time to fit and score one model.",
			Buckets: prometheus.ExponentialBuckets(0.005, 3, 10),
		}, []string{"dataset", "spec"}),
	}
	cfg.Metrics.MustRegister(w.runs, w.duration)
	var err error
	if w.stats, err = stats.New(cfg.Bucket, w.log, cfg.Metrics, stats.WithVersions(cfg.Registry)); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return w, nil
}

// HandleVersioned trains the version's specs.
func (w *Worker) HandleVersioned(ctx context.Context, e *events.DatasetVersioned) error {
	d, ok := w.datasets.Get(e.Dataset)
	if !ok {
		return bus.Permanent(fmt.Errorf("unknown dataset %q", e.Dataset))
	}
	v, err := w.reg.Version(ctx, e.Dataset, e.Version)
	if registry.IsNotFound(err) {
		return bus.Permanent(fmt.Errorf("version %s/v%d not in the store", e.Dataset, e.Version))
	}
	if err != nil {
		return err
	}
	latest, err := w.reg.LatestVersion(ctx, e.Dataset)
	if err != nil {
		return err
	}
	return w.train(ctx, d, v, specsFor(d, v, latest.Number == v.Number), e.CorrelationID)
}

// specsFor lists the specs a version gets a run for: those defined when it
// was cut and, for the newest version, every spec defined now (so a spec
// added later trains on the latest data only).
func specsFor(d *dataset.Definition, v registry.Version, newest bool) []dataset.ModelSpec {
	var out []dataset.ModelSpec
	for _, m := range d.Models {
		if newest || slices.Contains(v.Specs, m.Hash()) {
			out = append(out, m)
		}
	}
	return out
}

// Reconcile trains the runs whose event was lost.
func (w *Worker) Reconcile(ctx context.Context) error {
	var errs []error
	for _, name := range w.datasets.Names() {
		d, _ := w.datasets.Get(name)
		versions, err := w.reg.Versions(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for i, v := range versions {
			if err := w.train(ctx, d, v, specsFor(d, v, i == len(versions)-1), ""); err != nil {
				errs = append(errs, fmt.Errorf("reconcile %s/v%d: %w", name, v.Number, err))
			}
		}
	}
	return errors.Join(errs...)
}

// train fits the specs that have no run on v yet: linear specs from the
// version's statistics (fitStats), the other kinds from its rows.
func (w *Worker) train(ctx context.Context, d *dataset.Definition, v registry.Version, specs []dataset.ModelSpec, correlation string) error {
	if correlation == "" {
		correlation = fmt.Sprintf("%s/v%d", d.Name, v.Number)
	}
	var errs []error
	var todo []dataset.ModelSpec
	for _, spec := range specs {
		run, err := w.reg.Run(ctx, d.Name, registry.RunID(spec.Hash(), v.Hash))
		switch {
		case err == nil:
			// Trained before; the event may have been lost.
			errs = append(errs, w.announce(ctx, run, correlation))
		case registry.IsNotFound(err):
			todo = append(todo, spec)
		default:
			errs = append(errs, err)
		}
	}
	if len(todo) == 0 {
		return errors.Join(errs...)
	}
	if d.Task == dataset.TaskClassification {
		return w.trainKinds(ctx, d, v, todo, errs, correlation)
	}

	start := time.Now()
	byStats, byRows := splitByFit(todo, w.fromRows)
	done, ms, rows, statErrs := w.fitStats(ctx, d, v, byStats)
	errs = append(errs, statErrs...)
	done2, ms2, rowErrs := w.fitRows(ctx, d, v, append(rows, byRows...))
	errs = append(errs, rowErrs...)
	done, ms = append(done, done2...), append(ms, ms2...)
	for i, f := range done {
		errs = append(errs, w.record(ctx, d, v, f, ms[i], start, correlation))
	}
	return errors.Join(errs...)
}

// fitRows fits and scores specs from the version's rows. They share the
// reads (two of the training split, one of the test split): reading and
// parsing rows costs more than fitting them.
func (w *Worker) fitRows(ctx context.Context, d *dataset.Definition, v registry.Version, todo []dataset.ModelSpec) ([]fitted, []model.Metrics, []error) {
	if len(todo) == 0 {
		return nil, nil, nil
	}
	checks, err := stats.Checks(ctx, w.reg, v)
	var corrupt *CorruptBlobError
	if errors.As(err, &corrupt) {
		return nil, nil, []error{bus.Permanent(fmt.Errorf("%s/v%d: %w", d.Name, v.Number, err))}
	}
	if err != nil {
		return nil, nil, []error{err}
	}
	// Every blob is checked against its version while it streams: a short
	// or altered blob fails the run instead of training on other data.
	rows := stats.VerifiedOpener{Opener: w.bucket, Checks: checks}
	var errs []error
	arts, fitErrs := model.FitEach(ctx, d, todo, d.ScanSplit(ctx, rows, v.Blobs, dataset.TrainSplit))
	var done []fitted
	var ps []*model.Predictor
	for i, spec := range todo {
		if fitErrs[i] != nil {
			errs = append(errs, w.failed(ctx, d, v, spec, w.fitError(fmt.Errorf("%s/v%d: %w", d.Name, v.Number, fitErrs[i]))))
			continue
		}
		p, err := arts[i].Predictor(d)
		if err != nil {
			errs = append(errs, w.failed(ctx, d, v, spec, bus.Permanent(err)))
			continue
		}
		done = append(done, fitted{spec: spec, art: arts[i], from: registry.FitRows})
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return nil, nil, errs
	}
	ms, err := model.EvaluateEach(ctx, ps, d.ScanSplit(ctx, rows, v.Blobs, dataset.TestSplit))
	if err != nil {
		return nil, nil, append(errs, w.fitError(fmt.Errorf("score on %s/v%d: %w", d.Name, v.Number, err)))
	}
	return done, ms, errs
}

// fitted is a spec's artifact, trained but not stored yet.
type fitted struct {
	spec dataset.ModelSpec
	art  *model.Artifact
	from string // registry.FitStatistics or FitRows
	// warmRun is the run a fit started from ("" for a cold start).
	warmRun string
}

// record stores a trained model and its run. The run's duration counts from
// the start of the shared training: that is how long the model took to be
// ready.
func (w *Worker) record(ctx context.Context, d *dataset.Definition, v registry.Version, f fitted, m model.Metrics, start time.Time, correlation string) error {
	spec, art := f.spec, f.art
	id := registry.RunID(spec.Hash(), v.Hash)
	b, err := art.Marshal()
	if err != nil {
		return bus.Permanent(err)
	}
	name := fmt.Sprintf("models/%s/%s.json", d.Name, id)
	checksum := model.Checksum(b)
	_, err = w.bucket.Write(ctx, name, blob.CreateOnly, func(out io.Writer) error {
		_, err := out.Write(b)
		return err
	})
	if errors.Is(err, blob.ErrExists) {
		// Written by an earlier attempt or a racing worker: the first
		// write wins; training is deterministic, so this is a check.
		existing, lerr := model.Load(ctx, w.bucket, name, "")
		if lerr != nil {
			return lerr
		}
		eb, _ := existing.Marshal()
		if got := model.Checksum(eb); got != checksum {
			w.log.Warn("retrained model differs from the stored one; keeping the stored one", "run", id, "stored", got, "new", checksum)
			checksum = got
		}
	} else if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	elapsed := time.Since(start)
	run := registry.Run{
		ID: id, Dataset: d.Name, Spec: spec.Name, SpecHash: spec.Hash(), Version: v.Number, VersionHash: v.Hash,
		TrainRows: art.TrainRows, FittedFrom: f.from, L2: art.L2, Metrics: workers.RunMetrics(m), Fit: runFit(f), Artifact: name, ArtifactURI: blob.URI(w.bucket, name),
		Checksum: checksum, DurationMS: float64(elapsed.Microseconds()) / 1000, CodeVersion: w.version, CreatedAt: w.now(),
	}
	err = w.reg.AddRun(ctx, run)
	if registry.IsDuplicate(err) {
		if run, err = w.reg.Run(ctx, d.Name, id); err != nil {
			return err
		}
		return w.announce(ctx, run, correlation)
	}
	if err != nil {
		return err
	}
	w.runs.WithLabelValues(d.Name, spec.Name).Inc()
	w.duration.WithLabelValues(d.Name, spec.Name).Observe(elapsed.Seconds())
	w.log.Info("trained", "dataset", d.Name, "version", v.Number, "spec", spec.Name, "run", id,
		"train_rows", art.TrainRows, "fit", f.from, "l2", art.L2, "rmse", m.RMSE, "r2", m.R2, "duration", elapsed, "correlation_id", correlation)
	return w.announce(ctx, run, correlation)
}

// failed records that spec cannot be trained on v, before any run of v is
// recorded (so promote, deciding v once each of its specs has a run or a
// failure, never waits for it), and returns err. A failure that was not
// permanent after all is overtaken by the run a later attempt records.
func (w *Worker) failed(ctx context.Context, d *dataset.Definition, v registry.Version, spec dataset.ModelSpec, err error) error {
	if !bus.IsPermanent(err) {
		return err
	}
	key := workers.FailedRunKey(d.Name, registry.RunID(spec.Hash(), v.Hash))
	_, werr := w.bucket.Write(ctx, key, blob.Overwrite, func(out io.Writer) error {
		_, err := fmt.Fprintf(out, "spec %s on %s/v%d: %v\n", spec.Name, d.Name, v.Number, err)
		return err
	})
	if werr != nil {
		return errors.Join(err, fmt.Errorf("record the failure: %w", werr))
	}
	return err
}

// fitError: bad data or a degenerate system fails again on retry; the
// reconcile pass tries again later, so dead-lettering loses nothing.
func (w *Worker) fitError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return bus.Permanent(err)
}

func (w *Worker) announce(ctx context.Context, run registry.Run, correlation string) error {
	return w.pub.Publish(ctx, &events.ModelTrained{
		Meta:  events.Meta{ID: run.ID, Dataset: run.Dataset, Time: run.CreatedAt, CorrelationID: correlation},
		RunID: run.ID, Spec: run.Spec, SpecHash: run.SpecHash, Version: run.Version, VersionHash: run.VersionHash,
		Metrics: run.Metrics.Event(),
	})
}
