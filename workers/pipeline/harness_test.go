package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/workers"
	"github.com/refit-ml/refit/workers/preprocess"
	"github.com/refit-ml/refit/workers/promote"
	"github.com/refit-ml/refit/workers/train"
	"github.com/refit-ml/refit/workers/version"
)

// queue is the in-test bus: published events wait here until the test
// delivers them, in the order (and as often) it chooses.
type queue struct{ pending []events.Event }

func (q *queue) Publish(_ context.Context, e events.Event) error {
	q.pending = append(q.pending, e)
	return nil
}

// pipeline is the four workers over one bucket and one store.
type pipeline struct {
	t      testing.TB
	def    *dataset.Definition
	bucket blob.Bucket
	reg    *registry.Registry
	// gw writes what the gateway writes (corrections), never faulty.
	gw  *registry.Registry
	q   *queue
	pre *preprocess.Worker
	ver *version.Worker
	tr  *train.Worker
	pro *promote.Worker
	// clock is the time of uploads, corrections and of what the workers
	// record; it advances a millisecond at each reading, so no test sleeps
	// for distinct upload times.
	clock *testClock
}

// deps are the workers' dependencies on this pipeline's clock.
func (p *pipeline) deps(catalog *dataset.Catalog, bucket blob.Bucket, reg *registry.Registry, pub workers.Publisher) workers.Deps {
	return workers.Deps{Datasets: catalog, Bucket: bucket, Registry: reg, Publisher: pub, Logger: quiet(),
		Metrics: prometheus.NewRegistry(), Clock: p.clock}
}

// testClock starts at a fixed time and moves a millisecond per reading.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

// clockAfter starts a pipeline's clock after every upload already in the
// bucket: a pipeline restarted on the same storage goes on in time.
func clockAfter(t testing.TB, bucket blob.Bucket) *testClock {
	t.Helper()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	objs, err := bucket.List(context.Background(), "incoming/")
	require.NoError(t, err)
	for _, o := range objs {
		if o.Updated.After(start) {
			// An hour on: corrections made after that upload read the same clock.
			start = o.Updated.Add(time.Hour)
		}
	}
	return &testClock{now: start}
}

func housing(t testing.TB, batch int) *dataset.Definition {
	t.Helper()
	b, err := os.ReadFile("../../schemas/datasets/housing.json")
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	raw["batch_size"] = batch
	b, _ = json.Marshal(raw)
	d, err := dataset.Parse(b)
	require.NoError(t, err)
	return d
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newPipeline builds workers on existing storage (a restart reuses it).
func newPipeline(t testing.TB, def *dataset.Definition, bucket blob.Bucket, docs store.Docs) *pipeline {
	return newPipelineOn(t, def, bucket, docs, docs)
}

// newPipelineOn gives the workers their own view of the store (a faulty one).
func newPipelineOn(t testing.TB, def *dataset.Definition, bucket blob.Bucket, docs, workerDocs store.Docs) *pipeline {
	t.Helper()
	catalog, err := dataset.NewCatalog(def)
	require.NoError(t, err)
	p := &pipeline{t: t, def: def, bucket: bucket, reg: registry.New(workerDocs), gw: registry.New(docs), q: &queue{}, clock: clockAfter(t, bucket)}
	deps := p.deps(catalog, bucket, p.reg, p.q)
	p.pre, err = preprocess.New(preprocess.Config{Deps: deps})
	require.NoError(t, err)
	p.ver, err = version.New(deps)
	require.NoError(t, err)
	p.tr, err = train.New(train.Config{Deps: deps})
	require.NoError(t, err)
	p.pro, err = promote.New(deps)
	require.NoError(t, err)
	return p
}

func freshPipeline(t testing.TB, batch int) (*pipeline, *local.Bucket, store.Docs) {
	bucket, err := local.New(t.TempDir(), "test-bucket")
	require.NoError(t, err)
	docs := memory.New()
	return newPipeline(t, housing(t, batch), bucket, docs), bucket, docs
}

// upload writes a generated file and returns its notification.
func (p *pipeline) upload(name string, seed int64, rows int, bad float64) *events.ObjectFinalized {
	p.t.Helper()
	var buf bytes.Buffer
	require.NoError(p.t, synth.Housing{Seed: seed, BadRowFraction: bad}.Write(&buf, rows))
	return p.put(name, buf.Bytes())
}

func (p *pipeline) put(name string, content []byte) *events.ObjectFinalized {
	p.t.Helper()
	obj, err := p.bucket.Write(context.Background(), "incoming/housing/"+name, blob.Overwrite, func(w io.Writer) error {
		_, err := w.Write(content)
		return err
	})
	require.NoError(p.t, err)
	// The upload time comes from the test's clock: the folder's mtime is
	// what the version worker's watermark reads.
	at := p.clock.Now()
	lb, ok := p.bucket.(*local.Bucket)
	require.True(p.t, ok, "uploads need the local bucket")
	require.NoError(p.t, os.Chtimes(filepath.Join(lb.Root(), filepath.FromSlash(obj.Name)), at, at))
	obj, err = p.bucket.Stat(context.Background(), obj.Name)
	require.NoError(p.t, err)
	return events.NewObjectFinalized(obj.Bucket, obj.Name, obj.Generation, obj.Size, obj.Updated)
}

// deliver hands one event to the worker that consumes it.
func (p *pipeline) deliver(e events.Event) error {
	ctx := context.Background()
	switch e := e.(type) {
	case *events.ObjectFinalized:
		return p.pre.HandleObject(ctx, e)
	case *events.CorrectionSubmitted:
		return p.pre.HandleCorrection(ctx, e)
	case *events.RowsStaged:
		return p.ver.HandleRowsStaged(ctx, e)
	case *events.DatasetVersioned:
		return p.tr.HandleVersioned(ctx, e)
	case *events.BlobWritten:
		return p.tr.HandleBlobWritten(ctx, e)
	case *events.ModelTrained:
		return p.pro.HandleTrained(ctx, e)
	case *events.ModelPromoted:
		return nil // for subscribers; no worker consumes it
	}
	p.t.Fatalf("no consumer for %T", e)
	return nil
}

// drain delivers every pending event (and those they cause), in order.
func (p *pipeline) drain() {
	p.t.Helper()
	for len(p.q.pending) > 0 {
		e := p.q.pending[0]
		p.q.pending = p.q.pending[1:]
		require.NoError(p.t, p.deliver(e), "%T %s", e, events.Event(e).Topic())
	}
}

// step delivers at most n events; it reports how many it delivered.
func (p *pipeline) step(n int) int {
	p.t.Helper()
	done := 0
	for ; done < n && len(p.q.pending) > 0; done++ {
		e := p.q.pending[0]
		p.q.pending = p.q.pending[1:]
		require.NoError(p.t, p.deliver(e))
	}
	return done
}

func (p *pipeline) reconcile() {
	p.t.Helper()
	ctx := context.Background()
	require.NoError(p.t, p.pre.Reconcile(ctx))
	require.NoError(p.t, p.ver.Reconcile(ctx))
	require.NoError(p.t, p.tr.Reconcile(ctx))
	require.NoError(p.t, p.pro.Reconcile(ctx))
}

// state is what must not depend on how the events travelled.
type state struct {
	Ingests   []string // id accepted/rejected/duplicate
	Versions  []string // number hash rows
	Runs      []string // id spec version rmse
	Decisions int
	Champion  string
	Accepted  int
}

func (p *pipeline) state() state {
	p.t.Helper()
	ctx := context.Background()
	var s state
	ingests, err := p.reg.Ingests(ctx, "housing")
	require.NoError(p.t, err)
	for _, in := range ingests {
		s.Ingests = append(s.Ingests, fmt.Sprintf("%s %d/%d", in.Source.Key(), in.Accepted, in.Rejected))
		s.Accepted += in.Accepted
	}
	sort.Strings(s.Ingests)
	versions, err := p.reg.Versions(ctx, "housing")
	require.NoError(p.t, err)
	for _, v := range versions {
		s.Versions = append(s.Versions, fmt.Sprintf("v%d %s %d/%d", v.Number, v.Hash, v.Rows, v.Duplicate))
	}
	runs, err := p.reg.Runs(ctx, "housing")
	require.NoError(p.t, err)
	for _, r := range runs {
		s.Runs = append(s.Runs, fmt.Sprintf("%s %s v%d %.6f", r.ID, r.Spec, r.Version, r.Metrics.RMSE))
	}
	decisions, err := p.reg.Decisions(ctx, "housing")
	require.NoError(p.t, err)
	s.Decisions = len(decisions)
	champ, err := p.reg.LatestPromotion(ctx, "housing")
	if err == nil {
		s.Champion = champ.RunID
	}
	return s
}

func shuffle[T any](r *rand.Rand, xs []T) {
	r.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
}

// correction stores a correction the way the gateway does and returns its event.
func (p *pipeline) correction(id string, fields map[string]string, label string, at time.Time) *events.CorrectionSubmitted {
	p.t.Helper()
	require.NoError(p.t, p.gw.AddCorrection(context.Background(), registry.Correction{ID: id, Dataset: "housing", Fields: fields, Label: label, ReceivedAt: at}))
	return &events.CorrectionSubmitted{Meta: events.Meta{ID: "correction/" + id, Dataset: "housing", Time: at, CorrelationID: id}, CorrectionID: id}
}
