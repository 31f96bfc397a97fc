// Package workertest gives the workers' tests their dependencies: the real
// in-memory store and local bucket, wrapped in fakes of function fields (the
// wtf mock habit) so a test injects only the failure it needs.
package workertest

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/schemas"
	"github.com/refit-ml/refit/workers"
)

// Docs is a store.Docs: each method calls its Fn field when set, else the
// wrapped store.
type Docs struct {
	store.Docs
	InsertFn func(ctx context.Context, collection, key string, body json.RawMessage) error
	GetFn    func(ctx context.Context, collection, key string) (json.RawMessage, error)
	ListFn   func(ctx context.Context, collection, prefix string) ([]store.Doc, error)
}

func (d *Docs) Insert(ctx context.Context, collection, key string, body json.RawMessage) error {
	if d.InsertFn != nil {
		return d.InsertFn(ctx, collection, key, body)
	}
	return d.Docs.Insert(ctx, collection, key, body)
}

func (d *Docs) Get(ctx context.Context, collection, key string) (json.RawMessage, error) {
	if d.GetFn != nil {
		return d.GetFn(ctx, collection, key)
	}
	return d.Docs.Get(ctx, collection, key)
}

func (d *Docs) List(ctx context.Context, collection, prefix string) ([]store.Doc, error) {
	if d.ListFn != nil {
		return d.ListFn(ctx, collection, prefix)
	}
	return d.Docs.List(ctx, collection, prefix)
}

// Bucket is a blob.Bucket: each method calls its Fn field when set, else
// the wrapped bucket.
type Bucket struct {
	blob.Bucket
	WriteFn func(ctx context.Context, name string, mode blob.Mode, fill func(w io.Writer) error) (blob.Object, error)
	OpenFn  func(ctx context.Context, name string) (io.ReadCloser, error)
	StatFn  func(ctx context.Context, name string) (blob.Object, error)
}

func (b *Bucket) Write(ctx context.Context, name string, mode blob.Mode, fill func(w io.Writer) error) (blob.Object, error) {
	if b.WriteFn != nil {
		return b.WriteFn(ctx, name, mode, fill)
	}
	return b.Bucket.Write(ctx, name, mode, fill)
}

func (b *Bucket) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if b.OpenFn != nil {
		return b.OpenFn(ctx, name)
	}
	return b.Bucket.Open(ctx, name)
}

func (b *Bucket) Stat(ctx context.Context, name string) (blob.Object, error) {
	if b.StatFn != nil {
		return b.StatFn(ctx, name)
	}
	return b.Bucket.Stat(ctx, name)
}

// Publisher keeps what was published; PublishFn, when set, answers instead.
type Publisher struct {
	PublishFn func(ctx context.Context, e events.Event) error
	mu        sync.Mutex
	events    []events.Event
}

func (p *Publisher) Publish(ctx context.Context, e events.Event) error {
	if p.PublishFn != nil {
		if err := p.PublishFn(ctx, e); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, e)
	return nil
}

// Events returns what was published, in order.
func (p *Publisher) Events() []events.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]events.Event(nil), p.events...)
}

// Take returns what was published and forgets it.
func (p *Publisher) Take() []events.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.events
	p.events = nil
	return out
}

// Clock starts at a fixed time and moves a millisecond per reading.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		c.now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

// Env is one worker's world: real storage behind the fakes.
type Env struct {
	Def       *dataset.Definition
	Docs      *Docs
	Local     *local.Bucket
	Bucket    *Bucket
	Registry  *registry.Registry
	Publisher *Publisher
	Clock     *Clock
}

// New builds an Env for the shipped housing definition with batch_size batch.
func New(t testing.TB, batch int) *Env {
	t.Helper()
	lb, err := local.New(t.TempDir(), "test-bucket")
	if err != nil {
		t.Fatal(err)
	}
	docs := &Docs{Docs: memory.New()}
	return &Env{Def: Housing(t, batch), Docs: docs, Local: lb, Bucket: &Bucket{Bucket: lb},
		Registry: registry.New(docs), Publisher: &Publisher{}, Clock: &Clock{}}
}

// Deps are the worker's dependencies on the Env.
func (e *Env) Deps(t testing.TB) workers.Deps {
	t.Helper()
	catalog, err := dataset.NewCatalog(e.Def)
	if err != nil {
		t.Fatal(err)
	}
	return workers.Deps{Datasets: catalog, Bucket: e.Bucket, Registry: e.Registry, Publisher: e.Publisher,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry(), Clock: e.Clock}
}

// Housing is the shipped housing definition with batch_size batch.
func Housing(t testing.TB, batch int) *dataset.Definition {
	t.Helper()
	b, err := fs.ReadFile(schemas.Files, "datasets/housing.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	raw["batch_size"] = batch
	b, _ = json.Marshal(raw)
	d, err := dataset.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Put writes content as an upload and returns its notification.
func (e *Env) Put(t testing.TB, name string, content []byte) *events.ObjectFinalized {
	t.Helper()
	obj, err := e.Local.Write(context.Background(), "incoming/housing/"+name, blob.Overwrite, func(w io.Writer) error {
		_, err := w.Write(content)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return events.NewObjectFinalized(obj.Bucket, obj.Name, obj.Generation, obj.Size, e.Clock.Now())
}
