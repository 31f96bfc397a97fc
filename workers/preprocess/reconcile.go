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
// with no ledger entry. It also deletes uploads rejected whole longer ago
// than the retention. It returns the errors after trying them all.
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
	done := make(map[string]registry.Ingest, len(ledger))
	for _, in := range ledger {
		done[in.ID] = in
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
		if in, ok := done[registry.IngestID(src.Key())]; ok {
			if err := w.expire(ctx, o, in); err != nil {
				errs = append(errs, err)
			}
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
		if _, ok := done[registry.IngestID(src.Key())]; ok {
			continue
		}
		w.log.Info("reconcile: correction without ledger entry", "correction", c.ID)
		if err := w.stageCorrection(ctx, c, "correction/"+c.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// expire deletes the upload generation o when its ingest in rejected it
// whole (nothing staged, so no version holds a row of it) longer ago than
// the retention. Only that generation is deleted: a newer upload under the
// same name stays. The ledger entry and the quarantine report stay, so the
// upload's history and reason remain readable; the version watermark only
// counts uploads without a ledger entry, so it does not move. The same
// bytes uploaded again under the name are the same generation on the local
// folder (their ledger entry answers at once) and a new one on GCS.
func (w *Worker) expire(ctx context.Context, o blob.Object, in registry.Ingest) error {
	if w.deleter == nil || in.Chunk != "" || in.Reason == "" || in.StagedAt.IsZero() {
		return nil
	}
	if age := w.now().Sub(in.StagedAt); age < w.retention {
		return nil
	}
	err := w.deleter.DeleteGeneration(ctx, o.Name, o.Generation)
	if errors.Is(err, blob.ErrNotExist) || errors.Is(err, blob.ErrChanged) {
		return nil // gone, or a newer upload took the name: nothing of this generation to keep
	}
	if err != nil {
		return fmt.Errorf("delete rejected upload %s: %w", o.Name, err)
	}
	w.log.Info("deleted rejected upload past its retention", "object", o.Name, "generation", o.Generation,
		"rejected_at", in.StagedAt, "reason", in.Reason, "retention", w.retention)
	return nil
}
