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
	// encoded: the reading goroutine encoded the batch's accepted rows too
	// (readAhead), into recs; enc[i] is row i's (unused for a rejection).
	encoded bool
	enc     []encodedRow
	recs    []byte
}

// encodedRow is what StagedEncoder.Encode returned for one row.
type encodedRow struct {
	hash       dataset.RowHash
	test       bool
	start, end int // the record in batch.recs
}

// record returns row i's encoding: from the batch when the reading
// goroutine made it, else from enc.
func (b *batch) record(i int, enc *dataset.StagedEncoder) (dataset.RowHash, bool, []byte) {
	if b.encoded {
		e := b.enc[i]
		return e.hash, e.test, b.recs[e.start:e.end]
	}
	return enc.Encode(b.rows[i].row)
}

// encodeAll encodes the batch's accepted rows into it.
func (b *batch) encodeAll(enc *dataset.StagedEncoder) {
	b.enc, b.recs = b.enc[:0], b.recs[:0]
	for _, p := range b.rows {
		if p.rej != nil {
			b.enc = append(b.enc, encodedRow{})
			continue
		}
		h, test, rec := enc.Encode(p.row)
		start := len(b.recs)
		b.recs = append(b.recs, rec...)
		b.enc = append(b.enc, encodedRow{h, test, start, len(b.recs)})
	}
	b.encoded = true
}

// readAhead runs rows.Next on its own goroutine, a batch ahead of the
// caller, so that parsing and validating (one core) overlap with encoding,
// hashing and summing the rows, while a third goroutine writes the chunk
// (chunkwriter.go). The caller's half is the larger one (summing the
// statistics is there, where each row's values are in cache), so when the
// caller falls behind (the queue is full) this goroutine encodes the batch
// it has just parsed too, with an encoder of its own from newEncoder (the
// bytes are the same whichever goroutine encodes: Encode is a function of
// the row and the source). Each row's fields
// are copied into the batch's arena, so rows may reuse their Fields
// (InputOptions.ReuseFields); strings are not copied (they are the row's).
// next returns io.EOF at the end, and the previous batch goes back to be
// reused: it is valid until the following call. stop must be called when
// done.
func readAhead(ctx context.Context, rows rowReader, newEncoder func() *dataset.StagedEncoder) (next func() (*batch, error), stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	batches := make(chan *batch, 2)
	free := make(chan *batch, 4) // more than can be out at once: 2 queued, 1 filling, 1 read
	var readErr error            // written before batches is closed
	go func() {
		defer close(batches)
		var enc *dataset.StagedEncoder
		if newEncoder != nil {
			enc = newEncoder()
		}
		for {
			var b *batch
			select {
			case b = <-free:
				b.rows, b.fields, b.encoded = b.rows[:0], b.fields[:0], false
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
			if enc != nil && len(batches) == cap(batches) {
				b.encodeAll(enc) // the caller is behind: share its work
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
	next = func() (*batch, error) {
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
	stop = func() {
		cancel()
		for range batches { // let the reader finish before its source is closed
		}
	}
	return next, stop
}
