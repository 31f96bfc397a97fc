package preprocess

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/registry"
)

// Reconcile finds sources whose event was lost: uploads and corrections
// with no ledger entry. It returns the first error after trying them all.
func (w *Worker) Reconcile(ctx context.Context) error {
	var errs []error
	for _, name := range w.datasets.Names() {
		if err := w.reconcileDataset(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func (w *Worker) reconcileDataset(ctx context.Context, name string) error {
	ledger, err := w.reg.Ingests(ctx, name)
	if err != nil {
		return err
	}
	done := make(map[string]bool, len(ledger))
	for _, in := range ledger {
		done[in.ID] = true
	}
	objects, err := w.bucket.List(ctx, events.IncomingPrefix+name+"/")
	if err != nil {
		return err
	}
	// Oldest first, as they would have arrived: versions are cut in source
	// order, so this reproduces the boundaries of an uninterrupted run.
	slices.SortStableFunc(objects, func(a, b blob.Object) int { return a.Updated.Compare(b.Updated) })
	var errs []error
	for _, o := range objects {
		src := registry.Source{Kind: registry.SourceObject, Bucket: w.bucket.Name(), Object: o.Name, Generation: o.Generation}
		if done[registry.IngestID(src.Key())] {
			continue
		}
		w.log.Info("reconcile: upload without ledger entry", "object", o.Name)
		e := events.NewObjectFinalized(w.bucket.Name(), o.Name, o.Generation, o.Size, o.Updated)
		if err := w.HandleObject(ctx, e); err != nil {
			errs = append(errs, err)
		}
	}
	corrections, err := w.reg.Corrections(ctx, name)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, c := range corrections {
		src := registry.Source{Kind: registry.SourceCorrection, CorrectionID: c.ID}
		if done[registry.IngestID(src.Key())] {
			continue
		}
		w.log.Info("reconcile: correction without ledger entry", "correction", c.ID)
		if err := w.stageCorrection(ctx, c, "correction/"+c.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
