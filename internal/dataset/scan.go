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
// keep returns true (all when keep is nil). Rows are read ahead in another
// goroutine; a row and its Fields are valid only until fn returns (the
// strings may be kept).
func (d *Definition) ScanBlobs(ctx context.Context, o Opener, names []string, keep func(StagedRow) bool) Scan {
	return func(fn func(StagedRow) error) error {
		return d.scan(ctx, o, names, AllRows, keep, fn)
	}
}

// ScanSplit is ScanBlobs keeping the rows of one split, without parsing
// the others.
func (d *Definition) ScanSplit(ctx context.Context, o Opener, names []string, split Split) Scan {
	return func(fn func(StagedRow) error) error {
		return d.scan(ctx, o, names, split, nil, fn)
	}
}

// Rows travel from the reading goroutine to fn in batches, which go back to
// be refilled: a batch's Fields are reused, and a handoff per row would
// cost more than parsing it.
const (
	batchRows = 256
	batches   = 4
)

type rowBatch struct {
	rows []StagedRow
	n    int
}

// scan parses in one goroutine while fn runs in the caller's, so reading
// and fitting use a core each.
func (d *Definition) scan(ctx context.Context, o Opener, names []string, split Split, keep func(StagedRow) bool, fn func(StagedRow) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan *rowBatch, batches)
	full := make(chan *rowBatch, batches)
	for range batches {
		free <- &rowBatch{rows: make([]StagedRow, batchRows)}
	}
	read := make(chan error, 1)
	go func() {
		defer close(full)
		read <- d.readBlobs(ctx, o, names, split, free, full)
	}()
	var err error
	for b := range full {
		for i := 0; i < b.n && err == nil; i++ {
			if keep == nil || keep(b.rows[i]) {
				err = fn(b.rows[i])
			}
		}
		if err != nil {
			cancel() // the reader stops; drain what it sent
		}
		free <- b
	}
	if rerr := <-read; err == nil {
		err = rerr
	}
	return err
}

// readBlobs fills free batches from the blobs in order and sends them on
// full, which has room for every batch.
func (d *Definition) readBlobs(ctx context.Context, o Opener, names []string, split Split, free <-chan *rowBatch, full chan<- *rowBatch) error {
	var b *rowBatch
	for _, name := range names {
		if err := d.readBlob(ctx, o, name, split, func() (*StagedRow, error) {
			if b == nil {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				select {
				case b = <-free:
					b.n = 0
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			return &b.rows[b.n], nil
		}, func() {
			if b.n++; b.n == len(b.rows) {
				full <- b
				b = nil
			}
		}); err != nil {
			return err
		}
	}
	if b != nil && b.n > 0 {
		full <- b
	}
	return nil
}

// readBlob reads one blob's rows into the slots slot gives, calling filled
// after each row read.
func (d *Definition) readBlob(ctx context.Context, o Opener, name string, split Split, slot func() (*StagedRow, error), filled func()) error {
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
	for {
		r, err := slot()
		if err != nil {
			return err
		}
		err = sr.Read(r)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		filled()
	}
}

// TrainRows keeps the training split.
func TrainRows(r StagedRow) bool { return !r.Test }

// TestRows keeps the test split.
func TestRows(r StagedRow) bool { return r.Test }
