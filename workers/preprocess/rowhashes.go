package preprocess

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"

	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/dataset"
)

// rowHashList streams the content hashes of a chunk's rows, in row order,
// 16 bytes each, into an object of their own (registry.Ingest.RowHashes)
// while the chunk is written, so that the version cut learns which rows
// are duplicates by reading 16 bytes a row instead of reading and parsing
// the chunk. Its SHA-256 is recorded on the ingest, and the cut checks it
// (and the row count) before trusting the list; on any mismatch it reads
// the chunk as before. Memory stays flat: the list is never held whole.
type rowHashList struct {
	pw   *io.PipeWriter
	done chan error
	sum  hash.Hash
	buf  []byte
	rows int
}

var errAbandoned = errors.New("row hash list abandoned")

// startRowHashList starts writing name on a goroutine of its own.
func startRowHashList(ctx context.Context, bucket blob.Bucket, name string) *rowHashList {
	pr, pw := io.Pipe()
	l := &rowHashList{pw: pw, done: make(chan error, 1), sum: sha256.New(), buf: make([]byte, 0, 64<<10)}
	go func() {
		_, err := bucket.Write(ctx, name, blob.CreateOnly, func(out io.Writer) error {
			_, err := io.Copy(out, pr)
			return err
		})
		pr.CloseWithError(err) // a write that failed early must not block add
		l.done <- err
	}()
	return l
}

func (l *rowHashList) add(h dataset.RowHash) {
	l.buf = append(l.buf, h[:]...)
	l.rows++
	if len(l.buf) == cap(l.buf) {
		l.flush()
	}
}

func (l *rowHashList) flush() {
	l.sum.Write(l.buf)
	_, _ = l.pw.Write(l.buf) // an error comes back from finish
	l.buf = l.buf[:0]
}

// finish commits the list and returns its SHA-256 (an earlier attempt's
// identical list counts as committed).
func (l *rowHashList) finish() (string, error) {
	l.flush()
	_ = l.pw.Close()
	if err := <-l.done; err != nil && !errors.Is(err, blob.ErrExists) {
		return "", err
	}
	return hex.EncodeToString(l.sum.Sum(nil)), nil
}

// abandon drops the list: nothing is committed.
func (l *rowHashList) abandon() {
	_ = l.pw.CloseWithError(errAbandoned)
	<-l.done
}
