// Package blob defines the object store Refit keeps files in: uploads,
// staged rows, dataset versions, model artifacts and quarantine reports.
//
// Implementations: blob/local (a folder, the embedded default) and
// blob/gcs (Google Cloud Storage). Both pass blobtest.Run.
package blob

import (
	"context"
	"errors"
	"io"
	"time"
)

// Errors every implementation returns (wrapped) so callers can use errors.Is.
var (
	ErrNotExist = errors.New("blob: object does not exist")
	ErrExists   = errors.New("blob: object already exists")
	// ErrChanged: the object no longer holds the generation a conditional
	// call named (DeleteGeneration).
	ErrChanged = errors.New("blob: object changed since")
)

// Object describes one stored object.
type Object struct {
	Bucket string
	Name   string
	Size   int64
	// Generation identifies this content of the object. GCS assigns it on
	// every write; the local folder derives it from the content hash, so the
	// same bytes under the same name always have the same generation.
	Generation int64
	Updated    time.Time
}

// Mode says what Write does when the object already exists.
type Mode int

const (
	// CreateOnly fails with ErrExists when the object exists. Immutable
	// objects (staged chunks, versions, artifacts) are written this way so a
	// retried write never clobbers what a first attempt committed.
	CreateOnly Mode = iota
	// Overwrite replaces the object (uploads: a new generation).
	Overwrite
)

// Bucket is the object store seam.
type Bucket interface {
	// Name is the bucket's name, as it appears in object events.
	Name() string
	// Write streams fill's output into name. Nothing is visible until fill
	// returns nil and the write commits; on error nothing is written.
	Write(ctx context.Context, name string, mode Mode, fill func(w io.Writer) error) (Object, error)
	// Open streams an object's content. ErrNotExist if absent.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// Stat describes an object. ErrNotExist if absent.
	Stat(ctx context.Context, name string) (Object, error)
	// List returns the objects whose names start with prefix, sorted by name.
	List(ctx context.Context, prefix string) ([]Object, error)
}

// URI names an object for people and events: gs://bucket/name for GCS;
// the local folder's implementation may return a file:// URI instead.
func URI(b Bucket, name string) string {
	if u, ok := b.(interface{ URI(name string) string }); ok {
		return u.URI(name)
	}
	return "gs://" + b.Name() + "/" + name
}
