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

// readAhead runs rows.Next on its own goroutine, a batch ahead of the
// caller, so that parsing and validating (one core) overlap with hashing
// and writing (another): staging is two similar halves. The rows a
// rowReader returns do not share memory, so they can cross goroutines.
// next returns io.EOF at the end; stop must be called when done.
func readAhead(ctx context.Context, rows rowReader) (next func() ([]parsed, error), stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	batches := make(chan []parsed, 2)
	var readErr error // written before batches is closed
	go func() {
		defer close(batches)
		for {
			batch := make([]parsed, 0, readAheadBatch)
			for len(batch) < readAheadBatch {
				row, rej, err := rows.Next()
				if err != nil {
					readErr = err
					break
				}
				batch = append(batch, parsed{row, rej})
			}
			select {
			case batches <- batch:
			case <-ctx.Done():
				return
			}
			if readErr != nil {
				return
			}
		}
	}()
	next = func() ([]parsed, error) {
		batch, ok := <-batches
		if ok {
			return batch, nil
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
