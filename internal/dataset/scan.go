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
// keep returns true (all when keep is nil). A row's Fields are reused once
// fn returns (the strings may be kept).
func (d *Definition) ScanBlobs(ctx context.Context, o Opener, names []string, keep func(StagedRow) bool) Scan {
	return func(fn func(StagedRow) error) error {
		var row StagedRow
		for _, name := range names {
			if err := d.scanBlob(ctx, o, name, AllRows, keep, &row, fn); err != nil {
				return err
			}
		}
		return nil
	}
}

// ScanSplit is ScanBlobs keeping the rows of one split, without parsing
// the others.
func (d *Definition) ScanSplit(ctx context.Context, o Opener, names []string, split Split) Scan {
	return func(fn func(StagedRow) error) error {
		var row StagedRow
		for _, name := range names {
			if err := d.scanBlob(ctx, o, name, split, nil, &row, fn); err != nil {
				return err
			}
		}
		return nil
	}
}

// How often (in rows) a scan looks at the context.
const ctxEvery = 4096

func (d *Definition) scanBlob(ctx context.Context, o Opener, name string, split Split, keep func(StagedRow) bool, row *StagedRow, fn func(StagedRow) error) error {
	rc, err := o.Open(ctx, name)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer rc.Close()
	sr, err := d.NewStagedReader(rc)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	sr.Select(split)
	for i := 0; ; i++ {
		if i%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		err := sr.Read(row)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if keep != nil && !keep(*row) {
			continue
		}
		if err := fn(*row); err != nil {
			return err
		}
	}
}

// TrainRows keeps the training split.
func TrainRows(r StagedRow) bool { return !r.Test }
