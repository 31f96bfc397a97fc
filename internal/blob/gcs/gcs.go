// Package gcs is the blob store on Google Cloud Storage.
package gcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/refit-ml/refit/internal/blob"
)

var _ blob.Bucket = (*Bucket)(nil)

// Bucket is one GCS bucket.
type Bucket struct {
	name   string
	handle *storage.BucketHandle
	// chunkSize is the resumable upload chunk; 0 keeps the client default
	// (16 MiB). Tests lower it to reach multi-chunk paths cheaply.
	chunkSize int
}

// New returns the bucket named bucket. It does not check that it exists.
func New(client *storage.Client, bucket string) *Bucket {
	return &Bucket{name: bucket, handle: client.Bucket(bucket)}
}

// NewClient returns a client for endpoint (an emulator such as
// "http://127.0.0.1:4443", e.g. from STORAGE_EMULATOR_HOST), or for GCS with
// default credentials when endpoint is empty. Reads use the JSON API: the
// default XML reads fail against fake-gcs-server.
func NewClient(ctx context.Context, endpoint string) (*storage.Client, error) {
	opts := []option.ClientOption{storage.WithJSONReads()}
	if endpoint != "" {
		opts = append(opts,
			option.WithEndpoint(strings.TrimSuffix(endpoint, "/")+"/storage/v1/"),
			option.WithoutAuthentication(),
		)
	}
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gcs: new client: %w", err)
	}
	return client, nil
}

// Name returns the bucket name.
func (b *Bucket) Name() string { return b.name }

// Write streams fill into name. CreateOnly is a server-side precondition
// (ifGenerationMatch=0), so concurrent writers race safely.
func (b *Bucket) Write(ctx context.Context, name string, mode blob.Mode, fill func(w io.Writer) error) (blob.Object, error) {
	obj := b.handle.Object(name)
	switch mode {
	case blob.CreateOnly:
		obj = obj.If(storage.Conditions{DoesNotExist: true})
	case blob.Overwrite:
	default:
		return blob.Object{}, fmt.Errorf("gcs: write %q: unknown mode %d", name, mode)
	}
	if err := ctx.Err(); err != nil {
		return blob.Object{}, fmt.Errorf("gcs: write %q: %w", name, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sw := obj.NewWriter(wctx)
	if b.chunkSize > 0 {
		sw.ChunkSize = b.chunkSize
	}
	w := &startedWriter{w: sw}
	if err := fill(w); err != nil {
		abort(w, cancel, err)
		return blob.Object{}, fmt.Errorf("gcs: write %q: %w", name, writeErr(err))
	}
	// A fill that ignored a cancelled context must not commit either.
	if err := ctx.Err(); err != nil {
		abort(w, cancel, err)
		return blob.Object{}, fmt.Errorf("gcs: write %q: %w", name, err)
	}
	if err := w.w.Close(); err != nil {
		return blob.Object{}, fmt.Errorf("gcs: write %q: %w", name, writeErr(err))
	}
	return b.object(w.w.Attrs()), nil
}

// startedWriter records whether the storage.Writer was opened (its first
// Write starts the upload goroutine). It also keeps Close away from fill.
type startedWriter struct {
	w       *storage.Writer
	started bool
}

func (s *startedWriter) Write(p []byte) (int, error) {
	s.started = true
	return s.w.Write(p)
}

// abort abandons an upload so nothing is committed, and returns only once
// the upload goroutine is done. Cancelling alone is asynchronous: a Close
// right after it can end the stream cleanly before the writer's cancel
// monitor fails it, and then a complete object is sent. So the stream is
// failed synchronously with CloseWithError, and Close waits for the upload.
func abort(s *startedWriter, cancel context.CancelFunc, cause error) {
	cancel()
	if !s.started {
		return // nothing in flight; Close would upload an empty object
	}
	//lint:ignore SA1019 the only synchronous abort; see above.
	_ = s.w.CloseWithError(cause)
	_ = s.w.Close()
}

// writeErr adds blob.ErrExists to a failed DoesNotExist precondition. The
// 412 can surface from Close or, for uploads larger than one chunk, from a
// Write inside fill.
func writeErr(err error) error {
	var gerr *googleapi.Error
	if errors.As(err, &gerr) && gerr.Code == http.StatusPreconditionFailed {
		return fmt.Errorf("%w: %w", blob.ErrExists, err)
	}
	return err
}

// Open streams an object's content.
func (b *Bucket) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	r, err := b.handle.Object(name).NewReader(ctx)
	if err != nil {
		return nil, fmt.Errorf("gcs: open %q: %w", name, notExist(err))
	}
	return r, nil
}

// Stat describes an object.
func (b *Bucket) Stat(ctx context.Context, name string) (blob.Object, error) {
	attrs, err := b.handle.Object(name).Attrs(ctx)
	if err != nil {
		return blob.Object{}, fmt.Errorf("gcs: stat %q: %w", name, notExist(err))
	}
	return b.object(attrs), nil
}

func notExist(err error) error {
	if errors.Is(err, storage.ErrObjectNotExist) {
		return fmt.Errorf("%w: %w", blob.ErrNotExist, err)
	}
	return err
}

// List returns the objects whose names start with prefix, sorted by name.
func (b *Bucket) List(ctx context.Context, prefix string) ([]blob.Object, error) {
	q := &storage.Query{Prefix: prefix}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Generation", "Updated"}); err != nil {
		return nil, fmt.Errorf("gcs: list %q: %w", prefix, err)
	}
	objs := []blob.Object{}
	it := b.handle.Objects(ctx, q)
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("gcs: list %q: %w", prefix, err)
		}
		objs = append(objs, b.object(attrs))
	}
	// GCS lists in name order already; sorting keeps the contract explicit
	// for emulators too.
	slices.SortFunc(objs, func(x, y blob.Object) int { return strings.Compare(x.Name, y.Name) })
	return objs, nil
}

func (b *Bucket) object(a *storage.ObjectAttrs) blob.Object {
	return blob.Object{
		Bucket:     b.name,
		Name:       a.Name,
		Size:       a.Size,
		Generation: a.Generation,
		Updated:    a.Updated,
	}
}

// DeleteGeneration deletes name only while it holds generation, so a newer
// upload under the same name is never removed: blob.ErrChanged if it was
// overwritten, blob.ErrNotExist if gone. The request names the generation
// and also sets ifGenerationMatch (emulators honour one or the other).
func (b *Bucket) DeleteGeneration(ctx context.Context, name string, generation int64) error {
	err := b.handle.Object(name).Generation(generation).If(storage.Conditions{GenerationMatch: generation}).Delete(ctx)
	var gerr *googleapi.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &gerr) && gerr.Code == http.StatusPreconditionFailed:
		return fmt.Errorf("gcs: delete %q#%d: %w: %w", name, generation, blob.ErrChanged, err)
	case errors.Is(err, storage.ErrObjectNotExist):
		// That generation is gone; say whether a newer one took its place.
		if cur, serr := b.Stat(ctx, name); serr == nil {
			return fmt.Errorf("gcs: delete %q#%d: holds generation %d: %w", name, generation, cur.Generation, blob.ErrChanged)
		}
		return fmt.Errorf("gcs: delete %q#%d: %w", name, generation, notExist(err))
	default:
		return fmt.Errorf("gcs: delete %q#%d: %w", name, generation, err)
	}
}
