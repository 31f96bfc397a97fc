package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Opener opens a stored object (a blob.Bucket does).
type Opener interface {
	Open(ctx context.Context, name string) (io.ReadCloser, error)
}

// ScanBlobs reads staged CSV objects in order, keeping the rows for which
// keep returns true (all when keep is nil).
func (d *Definition) ScanBlobs(ctx context.Context, o Opener, names []string, keep func(StagedRow) bool) Scan {
	return func(fn func(StagedRow) error) error {
		for _, name := range names {
			if err := d.scanBlob(ctx, o, name, keep, fn); err != nil {
				return err
			}
		}
		return nil
	}
}

func (d *Definition) scanBlob(ctx context.Context, o Opener, name string, keep func(StagedRow) bool, fn func(StagedRow) error) error {
	rc, err := o.Open(ctx, name)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer rc.Close()
	sr, err := d.NewStagedReader(rc)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for {
		r, err := sr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if keep != nil && !keep(r) {
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
	}
}

// TrainRows keeps the training split.
func TrainRows(r StagedRow) bool { return !r.Test }

// TestRows keeps the test split.
func TestRows(r StagedRow) bool { return r.Test }
