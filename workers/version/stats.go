package version

import (
	"cmp"
	"context"
	"errors"
	"io"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
)

// writeStats writes the sufficient statistics of a new rows blob beside it
// (see workers/stats), so training and promotion on this version and its
// descendants read them instead of the rows: those the cut computed while
// writing the blob (st), else from the blob read back. They are derived
// data: a failure here costs the reader one computation from the rows, so
// it does not fail the cut.
func (w *Worker) writeStats(ctx context.Context, d *dataset.Definition, rowsBlob string, st *model.Stats) {
	var err error
	if st != nil {
		err = w.stats.Put(ctx, d, rowsBlob, st)
	} else {
		err = w.stats.Ensure(ctx, d, rowsBlob)
	}
	if err != nil {
		w.log.Warn("statistics not written; training computes them from the rows", "dataset", d.Name, "blob", rowsBlob, "err", err)
	}
}

// statsTee computes a new blob's statistics from the bytes the cut writes
// to it, parsed on another goroutine as they are written, so the blob is
// not read back. It never fails the write: if the statistics fail, it
// drops what follows and finish reports why.
type statsTee struct {
	pw     *io.PipeWriter
	failed bool
	done   chan statsResult
}

type statsResult struct {
	st  *model.Stats
	err error
}

func startStats(ctx context.Context, d *dataset.Definition) *statsTee {
	pr, pw := io.Pipe()
	t := &statsTee{pw: pw, done: make(chan statsResult, 1)}
	go func() {
		st, err := model.ComputeStats(ctx, d, func(fn func(dataset.StagedRow) error) error {
			sr, err := d.NewStagedReader(pr)
			if err != nil {
				return err
			}
			var row dataset.StagedRow
			for {
				err := sr.Read(&row)
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
				if err := fn(row); err != nil {
					return err
				}
			}
		})
		// Unblocks the writer if the statistics stopped early.
		pr.CloseWithError(cmp.Or(err, io.ErrClosedPipe))
		t.done <- statsResult{st, err}
	}()
	return t
}

func (t *statsTee) Write(p []byte) (int, error) {
	if !t.failed {
		if _, err := t.pw.Write(p); err != nil {
			t.failed = true
		}
	}
	return len(p), nil
}

// finish ends the input (writeErr: why the write stopped; nil at the end
// of the blob) and returns the statistics, nil unless the blob was
// written whole and they were computed.
func (t *statsTee) finish(writeErr error) *model.Stats {
	t.pw.CloseWithError(writeErr)
	r := <-t.done
	if writeErr != nil || r.err != nil || t.failed {
		return nil
	}
	return r.st
}
