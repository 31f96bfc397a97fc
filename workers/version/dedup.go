package version

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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

func (b bitset) any() bool { return slices.ContainsFunc(b, func(w uint64) bool { return w != 0 }) }

// positioned is a row hash and where the row is in the batch.
type positioned struct {
	hash dataset.RowHash
	pos  int
}

// batchScan is what one read of a batch's chunks tells: which rows are
// duplicates, and what the rest add.
type batchScan struct {
	dup    bitset
	rows   int          // rows read, duplicates included
	test   int          // of which in the test split
	sorted []positioned // the rows not duplicated earlier in the batch, by hash
	// chunkHashes are the SHA-256 of each chunk's bytes, in batch order: a
	// chunk with no duplicate is the version's rows blob as it stands.
	chunkHashes []string
}

// newRows are the sorted hashes of the rows the batch adds (its row index).
func (s batchScan) newRows() []dataset.RowHash {
	out := make([]dataset.RowHash, 0, len(s.sorted))
	for _, r := range s.sorted {
		if !s.dup.has(r.pos) {
			out = append(out, r.hash)
		}
	}
	return out
}

// scan reads the batch's chunks once, hashing their bytes, and marks the
// rows already in the parent version or earlier in the batch. Memory is a
// hash per batch row; the parent's rows are streamed from their sorted
// indexes.
func (w *Worker) scan(ctx context.Context, d *dataset.Definition, parent registry.Version, batch []registry.Ingest) (batchScan, error) {
	var s batchScan
	expected := 0
	for _, in := range batch {
		expected += in.Accepted
	}
	rows := make([]positioned, 0, expected) // the ledger's count: no regrowth on a million rows
	for _, in := range batch {
		if listed, test, ok := w.listedRowHashes(ctx, d, in, rows); ok {
			rows, s.test = listed, s.test+test
			s.chunkHashes = append(s.chunkHashes, in.ChunkHash)
			continue
		}
		sum := sha256.New()
		err := w.eachRecordTee(ctx, d, in.Chunk, sum, func(_ []byte, h dataset.RowHash, test bool) error {
			rows = append(rows, positioned{h, len(rows)})
			if test {
				s.test++
			}
			return nil
		})
		if err != nil {
			return s, err
		}
		s.chunkHashes = append(s.chunkHashes, hex.EncodeToString(sum.Sum(nil)))
	}
	s.rows = len(rows)
	s.dup = make(bitset, (len(rows)+63)/64)
	sortPositioned(rows)
	// The first copy in the batch stays: it sorts first among equals.
	firsts := rows[:0]
	for i, r := range rows {
		if i > 0 && r.hash == rows[i-1].hash {
			s.dup.set(r.pos)
			continue
		}
		firsts = append(firsts, r)
	}
	s.sorted = firsts
	for _, name := range parent.Blobs {
		i := 0
		err := w.eachIndexed(ctx, d, name, func(block []dataset.RowHash) bool {
			i = markKnown(firsts, i, block, s.dup)
			return i < len(firsts)
		})
		if err != nil {
			return s, err
		}
	}
	return s, nil
}

// listedRowHashes appends the row hashes staging listed for in's chunk
// (registry.Ingest.RowHashes) to rows, with their positions, and counts
// those in the test split: 16 bytes read per row instead of the chunk
// read and parsed. It reports false, with rows as they were, when there
// is no list or it does not hold in.Accepted hashes whose SHA-256 is the
// one recorded: the caller reads the chunk instead.
func (w *Worker) listedRowHashes(ctx context.Context, d *dataset.Definition, in registry.Ingest, rows []positioned) ([]positioned, int, bool) {
	if in.RowHashes == "" || in.RowHashesSum == "" || in.ChunkHash == "" {
		return rows, 0, false
	}
	fallBack := func(reason string, args ...any) ([]positioned, int, bool) {
		w.log.Warn("row hash list not usable; reading the chunk", append([]any{"dataset", in.Dataset, "list", in.RowHashes, "reason", reason}, args...)...)
		return rows, 0, false
	}
	// The list is of rows under this definition only if the chunk's header
	// is still the definition's (the chunk read would check it).
	if err := w.checkHeader(ctx, d, in.Chunk); err != nil {
		return fallBack("header", "err", err)
	}
	rc, err := w.bucket.Open(ctx, in.RowHashes)
	if err != nil {
		return fallBack("open", "err", err)
	}
	defer rc.Close()
	const size = len(dataset.RowHash{})
	sum := sha256.New()
	buf := make([]byte, 4096*size)
	out, test := rows, 0
	for {
		n, err := io.ReadFull(rc, buf)
		if n%size != 0 {
			return fallBack("not a whole number of hashes")
		}
		sum.Write(buf[:n])
		for k := 0; k < n; k += size {
			h := dataset.RowHash(buf[k : k+size])
			if d.IsTest(h) {
				test++
			}
			out = append(out, positioned{h, len(out)})
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return fallBack("read", "err", err)
		}
	}
	if got := len(out) - len(rows); got != in.Accepted {
		return fallBack("row count", "listed", got, "accepted", in.Accepted)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != in.RowHashesSum {
		return fallBack("checksum", "got", got, "recorded", in.RowHashesSum)
	}
	return out, test, true
}

// checkHeader reads the first line of a staged chunk.
func (w *Worker) checkHeader(ctx context.Context, d *dataset.Definition, chunk string) error {
	rc, err := w.bucket.Open(ctx, chunk)
	if err != nil {
		return err
	}
	defer rc.Close()
	want := d.HeaderRecord()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(rc, got); err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("staged csv: header %q, want %q (definition changed?)", bytes.TrimSpace(got), bytes.TrimSpace(want))
	}
	return nil
}

// sortPositioned sorts rows by hash, then position. Row hashes are
// SHA-256, so a counting sort on their first 16 bits spreads a large batch
// into small buckets that are sorted on their own: under a third of the
// time of one comparison sort on a million rows (BenchmarkSortPositioned). The
// counting sort is stable and rows come in position order, so equal hashes
// stay in position order. A crafted batch of colliding prefixes only makes
// some buckets large, and those get the comparison sort.
func sortPositioned(rows []positioned) {
	byHashThenPos := func(a, b positioned) int {
		if c := compareHashes(a.hash, b.hash); c != 0 {
			return c
		}
		return a.pos - b.pos
	}
	if len(rows) < 1<<14 {
		slices.SortFunc(rows, byHashThenPos)
		return
	}
	counts := make([]int, 1<<16+1)
	for _, r := range rows {
		counts[int(r.hash[0])<<8|int(r.hash[1])+1]++
	}
	for i := 1; i < len(counts); i++ {
		counts[i] += counts[i-1]
	}
	out := make([]positioned, len(rows))
	next := slices.Clone(counts[:1<<16])
	for _, r := range rows {
		b := int(r.hash[0])<<8 | int(r.hash[1])
		out[next[b]] = r
		next[b]++
	}
	for b := range 1 << 16 {
		bucket := out[counts[b]:counts[b+1]]
		if len(bucket) > 32 {
			slices.SortFunc(bucket, byHashThenPos)
			continue
		}
		for i := 1; i < len(bucket); i++ { // insertion sort keeps equal hashes in position order
			for j := i; j > 0 && compareHashes(bucket[j].hash, bucket[j-1].hash) < 0; j-- {
				bucket[j], bucket[j-1] = bucket[j-1], bucket[j]
			}
		}
	}
	copy(rows, out)
}

// markKnown marks the sorted batch rows, from the i-th on, whose hash is
// in block, the next part of one sorted stream of known hashes. It returns
// the first row that may be in a later block. A binary search per row
// inside the block: a 5,000-row batch checked against a million-row index
// costs a read of the index and about 5,000 searches, not a million
// comparisons.
func markKnown(rows []positioned, i int, block []dataset.RowHash, dup bitset) int {
	for i < len(rows) && len(block) > 0 {
		j, found := slices.BinarySearchFunc(block, rows[i].hash, compareHashes)
		if j == len(block) {
			return i // beyond this block
		}
		if found {
			dup.set(rows[i].pos)
		}
		block = block[j:]
		i++
	}
	return i
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
func (w *Worker) writeRowIndex(ctx context.Context, name string, sorted []dataset.RowHash) error {
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
// its index, a block at a time (the block is reused), until fn returns
// false. A blob cut before indexes existed has none: its hashes are read
// from the rows and sorted.
func (w *Worker) eachIndexed(ctx context.Context, d *dataset.Definition, rowsBlob string, fn func(block []dataset.RowHash) bool) error {
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
		fn(hashes)
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer rc.Close()
	const size = len(dataset.RowHash{})
	buf := make([]byte, 4096*size)
	block := make([]dataset.RowHash, 0, 4096)
	for {
		n, err := io.ReadFull(rc, buf)
		if n%size != 0 {
			return fmt.Errorf("read %s: %d bytes is not a whole number of %d-byte hashes", name, n, size)
		}
		block = block[:0]
		for k := 0; k < n; k += size {
			block = append(block, dataset.RowHash(buf[k:k+size]))
		}
		if len(block) > 0 && !fn(block) {
			return nil
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		case err != nil:
			return fmt.Errorf("read %s: %w", name, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// eachRecord visits the records of a staged CSV blob.
func (w *Worker) eachRecord(ctx context.Context, d *dataset.Definition, name string, fn func(rec []byte, h dataset.RowHash, test bool) error) error {
	return w.eachRecordTee(ctx, d, name, nil, fn)
}

// eachRecordTee is eachRecord that also copies the blob's bytes, as they
// are read, to tee (when not nil).
func (w *Worker) eachRecordTee(ctx context.Context, d *dataset.Definition, name string, tee io.Writer, fn func(rec []byte, h dataset.RowHash, test bool) error) error {
	rc, err := w.bucket.Open(ctx, name)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer rc.Close()
	var r io.Reader = rc
	if tee != nil {
		r = io.TeeReader(rc, tee)
	}
	rr, err := d.NewStagedRecordReader(r)
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
