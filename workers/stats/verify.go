package stats

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
// recorded: a model or statistics computed from it would describe other
// data than the version names, so the reader fails for good (retrying
// reads the same bytes).
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

// BlobCheck is what one rows blob must hold.
type BlobCheck struct {
	Version int
	Rows    int
	Hash    string // the blob's SHA-256, when recorded
	// Versions cut before blob hashes were recorded: the blob's hash must
	// rebuild the version's, sha256(ParentHash + ":" + blob hash).
	ParentHash, VersionHash string
}

func (c BlobCheck) ok(got string) bool {
	if c.Hash != "" {
		return got == c.Hash
	}
	whole := sha256.Sum256([]byte(c.ParentHash + ":" + got))
	return hex.EncodeToString(whole[:]) == c.VersionHash
}

// VersionLister lists a dataset's versions (registry.Registry does).
type VersionLister interface {
	Versions(ctx context.Context, dataset string) ([]registry.Version, error)
}

// Recorded returns the checks v records itself, false for a version cut
// before blob row counts and hashes were recorded.
func Recorded(v registry.Version) (map[string]BlobCheck, bool) {
	if len(v.BlobHashes) != len(v.Blobs) || len(v.BlobRows) != len(v.Blobs) {
		return nil, false
	}
	checks := make(map[string]BlobCheck, len(v.Blobs))
	for i, name := range v.Blobs {
		checks[name] = BlobCheck{Version: v.Number, Rows: v.BlobRows[i], Hash: v.BlobHashes[i]}
	}
	return checks, true
}

// Checks says what each of v's blobs must hold: from the version record,
// or for older versions from the version that added each blob (listed by
// versions; nil when there is no registry to ask).
func Checks(ctx context.Context, versions VersionLister, v registry.Version) (map[string]BlobCheck, error) {
	if checks, ok := Recorded(v); ok {
		return checks, nil
	}
	all := []registry.Version{v}
	if versions != nil {
		var err error
		if all, err = versions.Versions(ctx, v.Dataset); err != nil {
			return nil, err
		}
	}
	checks := make(map[string]BlobCheck, len(v.Blobs))
	for _, a := range all {
		if a.Number > v.Number || len(a.Blobs) == 0 || a.NewRows == 0 {
			continue
		}
		name := a.Blobs[len(a.Blobs)-1] // the blob a version adds is its last
		if _, seen := checks[name]; !seen {
			checks[name] = BlobCheck{Version: a.Number, Rows: a.NewRows, ParentHash: a.ParentHash, VersionHash: a.Hash}
		}
	}
	for _, name := range v.Blobs {
		if _, ok := checks[name]; !ok {
			return nil, &CorruptBlobError{Blob: name, Version: v.Number, WantRows: -1}
		}
	}
	return checks, nil
}

// VerifiedOpener opens rows blobs through a reader that counts their
// records and hashes their bytes, and fails at the end of a blob that does
// not match its check, before a scan can take a short blob for a whole
// one.
type VerifiedOpener struct {
	dataset.Opener
	Checks map[string]BlobCheck
}

func (o VerifiedOpener) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	check, ok := o.Checks[name]
	if !ok {
		return nil, &CorruptBlobError{Blob: name, WantRows: -1}
	}
	rc, err := o.Opener.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	return &verifyingReader{ReadCloser: rc, name: name, check: check, sum: sha256.New()}, nil
}

// verifyingReader counts the records of a staged CSV blob (line breaks
// outside quotes) and hashes it while it is read.
type verifyingReader struct {
	io.ReadCloser
	name    string
	check   BlobCheck
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
	if rows != r.check.Rows || !r.check.ok(got) {
		return &CorruptBlobError{Blob: r.name, Version: r.check.Version, WantRows: r.check.Rows, GotRows: rows,
			WantHash: r.check.Hash, GotHash: got}
	}
	return nil
}
