package version

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
)

// bitset marks rows of a batch by position.
type bitset []uint64

func (b bitset) has(i int) bool { return i/64 < len(b) && b[i/64]&(1<<(i%64)) != 0 }
func (b bitset) set(i int)      { b[i/64] |= 1 << (i % 64) }

// positioned is a row hash and where the row is in the batch.
type positioned struct {
	hash dataset.RowHash
	pos  int
}

// duplicates marks the batch's rows that are already in the parent version
// or appear earlier in the batch. Memory is a hash per batch row; the
// parent's rows are streamed from their sorted indexes.
func (w *Worker) duplicates(ctx context.Context, d *dataset.Definition, parent registry.Version, batch []registry.Ingest) (bitset, error) {
	var rows []positioned
	for _, in := range batch {
		err := w.eachRecord(ctx, d, in.Chunk, func(_ []byte, h dataset.RowHash, _ bool) error {
			rows = append(rows, positioned{h, len(rows)})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	dup := make(bitset, (len(rows)+63)/64)
	slices.SortFunc(rows, func(a, b positioned) int {
		if c := compareHashes(a.hash, b.hash); c != 0 {
			return c
		}
		return a.pos - b.pos
	})
	// The first copy in the batch stays: it sorts first among equals.
	firsts := rows[:0:0]
	for i, r := range rows {
		if i > 0 && r.hash == rows[i-1].hash {
			dup.set(r.pos)
			continue
		}
		firsts = append(firsts, r)
	}
	for _, name := range parent.Blobs {
		err := w.eachIndexed(ctx, d, name, func(next func() (dataset.RowHash, bool, error)) error {
			return markKnown(firsts, next, dup)
		})
		if err != nil {
			return nil, err
		}
	}
	return dup, nil
}

// markKnown merges sorted batch rows with one sorted stream of known hashes.
func markKnown(rows []positioned, next func() (dataset.RowHash, bool, error), dup bitset) error {
	i := 0
	for i < len(rows) {
		h, ok, err := next()
		if err != nil || !ok {
			return err
		}
		for i < len(rows) && compareHashes(rows[i].hash, h) < 0 {
			i++
		}
		if i < len(rows) && rows[i].hash == h {
			dup.set(rows[i].pos)
			i++
		}
	}
	return nil
}

// compareHashes orders hashes as bytes.Compare does, a word at a time.
func compareHashes(a, b dataset.RowHash) int {
	if c := cmp.Compare(binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8])); c != 0 {
		return c
	}
	return cmp.Compare(binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:]))
}

// rowIndexName is where the sorted row hashes of a rows blob are kept.
func rowIndexName(rowsBlob string) string {
	return strings.TrimSuffix(rowsBlob, ".csv") + ".index"
}

// writeRowIndex writes the sorted hashes, 16 bytes each.
func (w *Worker) writeRowIndex(ctx context.Context, name string, hashes []dataset.RowHash) error {
	sorted := slices.Clone(hashes)
	slices.SortFunc(sorted, compareHashes)
	_, err := w.bucket.Write(ctx, name, blob.CreateOnly, func(out io.Writer) error {
		bw := bufio.NewWriterSize(out, 64<<10)
		for _, h := range sorted {
			if _, err := bw.Write(h[:]); err != nil {
				return err
			}
		}
		return bw.Flush()
	})
	if err != nil && !errors.Is(err, blob.ErrExists) {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// eachIndexed streams the sorted row hashes of a version's rows blob from
// its index. A blob cut before indexes existed has none: its hashes are read
// from the rows and sorted.
func (w *Worker) eachIndexed(ctx context.Context, d *dataset.Definition, rowsBlob string, fn func(next func() (dataset.RowHash, bool, error)) error) error {
	name := rowIndexName(rowsBlob)
	rc, err := w.bucket.Open(ctx, name)
	if errors.Is(err, blob.ErrNotExist) {
		var hashes []dataset.RowHash
		err := w.eachRecord(ctx, d, rowsBlob, func(_ []byte, h dataset.RowHash, _ bool) error {
			hashes = append(hashes, h)
			return nil
		})
		if err != nil {
			return err
		}
		slices.SortFunc(hashes, compareHashes)
		return fn(func() (dataset.RowHash, bool, error) {
			if len(hashes) == 0 {
				return dataset.RowHash{}, false, nil
			}
			h := hashes[0]
			hashes = hashes[1:]
			return h, true, nil
		})
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	return fn(func() (dataset.RowHash, bool, error) {
		var h dataset.RowHash
		_, err := io.ReadFull(br, h[:])
		switch {
		case errors.Is(err, io.EOF):
			return h, false, nil
		case err != nil:
			return h, false, fmt.Errorf("read %s: %w", name, err)
		}
		return h, true, nil
	})
}

// eachRecord visits the records of a staged CSV blob.
func (w *Worker) eachRecord(ctx context.Context, d *dataset.Definition, name string, fn func(rec []byte, h dataset.RowHash, test bool) error) error {
	rc, err := w.bucket.Open(ctx, name)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer rc.Close()
	rr, err := d.NewStagedRecordReader(rc)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rec, h, test, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := fn(rec, h, test); err != nil {
			return err
		}
	}
}
