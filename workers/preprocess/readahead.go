package preprocess

import (
	"context"
	"errors"
	"io"

	"github.com/refit-ml/refit/internal/dataset"
)

// parsed is one outcome of rowReader.Next.
type parsed struct {
	row dataset.Row
	rej *dataset.Rejected
}

const readAheadBatch = 1024

// batch is readAhead's unit: parsed rows whose fields live in one arena, so
// a batch costs no allocation once it has been recycled.
type batch struct {
	rows   []parsed
	fields []dataset.Field
}

// readAhead runs rows.Next on its own goroutine, a batch ahead of the
// caller, so that parsing and validating (one core) overlap with encoding,
// hashing and summing the rows, while a third goroutine writes the chunk
// (chunkwriter.go). Each row's fields
// are copied into the batch's arena, so rows may reuse their Fields
// (InputOptions.ReuseFields); strings are not copied (they are the row's).
// next returns io.EOF at the end, and the previous batch goes back to be
// reused: it is valid until the following call. stop must be called when
// done.
func readAhead(ctx context.Context, rows rowReader) (next func() ([]parsed, error), stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	batches := make(chan *batch, 2)
	free := make(chan *batch, 4) // more than can be out at once: 2 queued, 1 filling, 1 read
	var readErr error            // written before batches is closed
	go func() {
		defer close(batches)
		for {
			var b *batch
			select {
			case b = <-free:
				b.rows, b.fields = b.rows[:0], b.fields[:0]
			default:
				b = &batch{rows: make([]parsed, 0, readAheadBatch)}
			}
			for len(b.rows) < readAheadBatch {
				row, rej, err := rows.Next()
				if err != nil {
					readErr = err
					break
				}
				if rej == nil {
					start := len(b.fields)
					b.fields = append(b.fields, row.Fields...)
					row.Fields = b.fields[start:len(b.fields):len(b.fields)]
				}
				b.rows = append(b.rows, parsed{row, rej})
			}
			select {
			case batches <- b:
			case <-ctx.Done():
				return
			}
			if readErr != nil {
				return
			}
		}
	}()
	var last *batch
	next = func() ([]parsed, error) {
		if last != nil {
			select {
			case free <- last:
			default:
			}
			last = nil
		}
		b, ok := <-batches
		if ok {
			last = b
			return b.rows, nil
		}
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return nil, readErr
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	stop = func() {
		cancel()
		for range batches { // let the reader finish before its source is closed
		}
	}
	return next, stop
}
