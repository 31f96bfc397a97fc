package train

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
)

// CorruptBlobError is a rows blob that does not hold what its version
// recorded: training on it would fit a model on other data than the
// version names, so the run fails for good (retrying reads the same bytes).
type CorruptBlobError struct {
	Blob     string
	Version  int
	WantRows int
	GotRows  int
	WantHash string // empty when checked against the version hash chain
	GotHash  string
}

func (e *CorruptBlobError) Error() string {
	if e.WantRows < 0 {
		return fmt.Sprintf("rows blob %s of version %d: no version records what it holds", e.Blob, e.Version)
	}
	if e.WantRows != e.GotRows {
		return fmt.Sprintf("rows blob %s is corrupt: %d rows, version %d recorded %d", e.Blob, e.GotRows, e.Version, e.WantRows)
	}
	return fmt.Sprintf("rows blob %s is corrupt: content hash %s is not the one version %d recorded", e.Blob, e.GotHash, e.Version)
}

// blobCheck is what one rows blob must hold.
type blobCheck struct {
	version int
	rows    int
	hash    string // the blob's SHA-256, when recorded
	// Versions cut before blob hashes were recorded: the blob's hash must
	// rebuild the version's, sha256(parentHash + ":" + blob hash).
	parentHash, versionHash string
}

func (c blobCheck) ok(got string) bool {
	if c.hash != "" {
		return got == c.hash
	}
	whole := sha256.Sum256([]byte(c.parentHash + ":" + got))
	return hex.EncodeToString(whole[:]) == c.versionHash
}

// blobChecks says what each of v's blobs must hold: from the version
// record, or for older versions from the version that added each blob.
func (w *Worker) blobChecks(ctx context.Context, v registry.Version) (map[string]blobCheck, error) {
	checks := make(map[string]blobCheck, len(v.Blobs))
	if len(v.BlobHashes) == len(v.Blobs) && len(v.BlobRows) == len(v.Blobs) {
		for i, name := range v.Blobs {
			checks[name] = blobCheck{version: v.Number, rows: v.BlobRows[i], hash: v.BlobHashes[i]}
		}
		return checks, nil
	}
	versions, err := w.reg.Versions(ctx, v.Dataset)
	if err != nil {
		return nil, err
	}
	for _, a := range versions {
		if a.Number > v.Number || len(a.Blobs) == 0 || a.NewRows == 0 {
			continue
		}
		name := a.Blobs[len(a.Blobs)-1] // the blob a version adds is its last
		if _, seen := checks[name]; !seen {
			checks[name] = blobCheck{version: a.Number, rows: a.NewRows, parentHash: a.ParentHash, versionHash: a.Hash}
		}
	}
	for _, name := range v.Blobs {
		if _, ok := checks[name]; !ok {
			return nil, &CorruptBlobError{Blob: name, Version: v.Number, WantRows: -1}
		}
	}
	return checks, nil
}

// verifiedOpener opens rows blobs through a reader that counts their
// records and hashes their bytes, and fails at the end of a blob that does
// not match its check, before the scan can take a short blob for a whole
// one.
type verifiedOpener struct {
	dataset.Opener
	checks map[string]blobCheck
}

func (o verifiedOpener) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, err := o.Opener.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	return &verifyingReader{ReadCloser: rc, name: name, check: o.checks[name], sum: sha256.New()}, nil
}

// verifyingReader counts the records of a staged CSV blob (line breaks
// outside quotes) and hashes it while it is read.
type verifyingReader struct {
	io.ReadCloser
	name    string
	check   blobCheck
	sum     hash.Hash
	records int
	quoted  bool
	last    byte
	read    int64
}

func (r *verifyingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.sum.Write(p[:n])
	for _, b := range p[:n] {
		switch {
		case b == '"':
			r.quoted = !r.quoted // a doubled quote toggles twice
		case b == '\n' && !r.quoted:
			r.records++
		}
	}
	if n > 0 {
		r.last = p[n-1]
	}
	r.read += int64(n)
	if errors.Is(err, io.EOF) {
		if verr := r.verify(); verr != nil {
			return n, verr
		}
	}
	return n, err
}

func (r *verifyingReader) verify() error {
	records := r.records
	if r.read > 0 && r.last != '\n' {
		records++ // a last line without a line break
	}
	rows := max(records-1, 0) // the header
	got := hex.EncodeToString(r.sum.Sum(nil))
	if rows != r.check.rows || !r.check.ok(got) {
		return &CorruptBlobError{Blob: r.name, Version: r.check.version, WantRows: r.check.rows, GotRows: rows,
			WantHash: r.check.hash, GotHash: got}
	}
	return nil
}
