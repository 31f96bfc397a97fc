package train

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
)

// trainKinds fits specs through their model.Kind, one at a time (a
// logistic fit holds its rows as CSR, so fitting them together would hold
// every spec's at once), each warm-started from the parent version's run
// of the same spec when there is one, then scores them together on the
// test split. errs are the errors so far; it returns them with its own.
func (w *Worker) trainKinds(ctx context.Context, d *dataset.Definition, v registry.Version, todo []dataset.ModelSpec, errs []error, correlation string) error {
	start := time.Now()
	var done []fitted
	var ps []*model.Predictor
	for _, spec := range todo {
		k, ok := model.LookupKind(spec.Kind)
		if !ok {
			errs = append(errs, w.failed(ctx, d, v, spec, bus.Permanent(fmt.Errorf("%s/v%d: spec %s: unknown kind %q", d.Name, v.Number, spec.Name, spec.Kind))))
			continue
		}
		warm, warmRun, err := w.warmStart(ctx, d, v, spec)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		art, _, err := k.Fit(ctx, d, spec, d.ScanSplit(ctx, w.bucket, v.Blobs, dataset.TrainSplit), warm)
		if err != nil {
			errs = append(errs, w.failed(ctx, d, v, spec, w.fitError(fmt.Errorf("%s/v%d: %w", d.Name, v.Number, err))))
			continue
		}
		p, err := art.Predictor(d)
		if err != nil {
			errs = append(errs, w.failed(ctx, d, v, spec, bus.Permanent(err)))
			continue
		}
		done = append(done, fitted{spec: spec, art: art, from: registry.FitRows, warmRun: warmRun})
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return errors.Join(errs...)
	}
	ms, err := model.EvaluateEach(ctx, ps, d.ScanSplit(ctx, w.bucket, v.Blobs, dataset.TestSplit))
	if err != nil {
		return errors.Join(append(errs, w.fitError(fmt.Errorf("score on %s/v%d: %w", d.Name, v.Number, err)))...)
	}
	for i, f := range done {
		errs = append(errs, w.record(ctx, d, v, f, ms[i], start, correlation))
	}
	return errors.Join(errs...)
}

// warmStart finds the parent version's run of spec and loads its model
// (nil when there is no parent or no such run: a cold start). A parent's
// model that cannot be read is an error: silently fitting cold would make
// the run depend on a storage hiccup.
func (w *Worker) warmStart(ctx context.Context, d *dataset.Definition, v registry.Version, spec dataset.ModelSpec) (*model.Artifact, string, error) {
	if v.Parent <= 0 || v.ParentHash == "" || v.ParentHash == v.Hash {
		return nil, "", nil
	}
	id := registry.RunID(spec.Hash(), v.ParentHash)
	run, err := w.reg.Run(ctx, d.Name, id)
	if registry.IsNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	art, err := model.Load(ctx, w.bucket, run.Artifact, run.Checksum)
	if err != nil {
		return nil, "", fmt.Errorf("warm start from run %s: %w", id, err)
	}
	return art, id, nil
}

// runFit is what a run records of an iterative fit (nil for others).
func runFit(f fitted) *registry.Fit {
	l := f.art.Logistic
	if l == nil {
		return nil
	}
	fit := &registry.Fit{Iterations: l.Iterations, Converged: l.Converged}
	if l.WarmStart != "" {
		fit.WarmStart = f.warmRun
	}
	return fit
}
