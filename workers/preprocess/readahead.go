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
// a batch costs no allocation once it has been recycled. hashes and tests
// are the accepted rows' content hashes and splits, in order, filled in by
// the encoder for the statistics goroutine (chunkstats.go).
type batch struct {
	rows   []parsed
	fields []dataset.Field
	hashes []dataset.RowHash
	tests  []bool
}

// readAhead runs rows.Next on its own goroutine, a batch ahead of the
// caller, so that parsing and validating overlap with encoding and hashing
// the rows, summing their statistics and writing the chunk (each on a
// goroutine of its own). Each row's fields are copied into the batch's
// arena, so rows may reuse their Fields (InputOptions.ReuseFields);
// strings are not copied (they are the row's). next returns io.EOF at the
// end; a batch is valid until it is given back with release, from any
// goroutine, for reuse. stop must be called when done.
func readAhead(ctx context.Context, rows rowReader) (next func() (*batch, error), release func(*batch), stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	batches := make(chan *batch, 2)
	// More than can be out at once: 2 queued, 1 filling, 1 encoding, 3 with
	// the statistics (chunkstats.go).
	free := make(chan *batch, 8)
	var readErr error // written before batches is closed
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
	next = func() (*batch, error) {
		b, ok := <-batches
		if ok {
			return b, nil
		}
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return nil, readErr
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	release = func(b *batch) {
		select {
		case free <- b:
		default:
		}
	}
	stop = func() {
		cancel()
		for range batches { // let the reader finish before its source is closed
		}
	}
	return next, release, stop
}
