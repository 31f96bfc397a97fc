package train

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/workers"
	"github.com/refit-ml/refit/workers/stats"
	"github.com/refit-ml/refit/workers/workertest"
)

// countingBucket counts the rows blobs opened and the statistics written.
type countingBucket struct {
	blob.Bucket
	rowsOpened, statsWritten atomic.Int64
}

func (b *countingBucket) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if strings.HasSuffix(name, ".csv") {
		b.rowsOpened.Add(1)
	}
	return b.Bucket.Open(ctx, name)
}

func (b *countingBucket) Write(ctx context.Context, name string, mode blob.Mode, fill func(io.Writer) error) (blob.Object, error) {
	if strings.HasSuffix(name, ".stats") && strings.Contains(name, "/rows/") {
		b.statsWritten.Add(1)
	}
	return b.Bucket.Write(ctx, name, mode, fill)
}

// blobFixture is a staged housing version and train workers (replicas) on
// one bucket and registry.
type blobFixture struct {
	d      *dataset.Definition
	root   string
	bucket *countingBucket
	reg    *registry.Registry
	v      registry.Version
}

func newBlobFixture(t *testing.T) *blobFixture {
	t.Helper()
	root := t.TempDir()
	lb, err := local.New(root, "test")
	require.NoError(t, err)
	f := &blobFixture{d: workertest.Shipped(t, "housing"), root: root, bucket: &countingBucket{Bucket: lb}, reg: registry.New(memory.New())}
	f.v = stageVersion(t, f.d, lb, 3000, 700)
	require.Len(t, f.v.Blobs, 5)
	require.NoError(t, f.reg.AddVersion(context.Background(), f.v))
	return f
}

// replica is one train process: its own store and metrics.
func (f *blobFixture) replica(t *testing.T, defs ...*dataset.Definition) (*Worker, *prometheus.Registry) {
	t.Helper()
	catalog, err := dataset.NewCatalog(append([]*dataset.Definition{f.d}, defs...)...)
	require.NoError(t, err)
	metrics := prometheus.NewRegistry()
	w, err := New(Config{Deps: workers.Deps{Datasets: catalog, Bucket: f.bucket, Registry: f.reg, Publisher: workertest.Discard{},
		Logger: slog.New(slog.DiscardHandler), Metrics: metrics}})
	require.NoError(t, err)
	return w, metrics
}

// written is the blob.written the version worker publishes for blob i.
func (f *blobFixture) written(i int) *events.BlobWritten {
	return &events.BlobWritten{Meta: events.Meta{ID: f.v.Blobs[i], Dataset: f.d.Name}, Version: f.v.Number,
		Blob: f.v.Blobs[i], Position: i, Rows: f.v.BlobRows[i], Hash: f.v.BlobHashes[i]}
}

// fit trains the version and returns its artifacts' bytes by spec.
func (f *blobFixture) fit(t *testing.T, w *Worker) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, w.HandleVersioned(ctx, &events.DatasetVersioned{Meta: events.Meta{Dataset: f.d.Name}, Version: f.v.Number}))
	runs, err := f.reg.Runs(ctx, f.d.Name)
	require.NoError(t, err)
	require.Len(t, runs, len(f.d.Models))
	out := map[string][]byte{}
	for _, r := range runs {
		require.Equal(t, registry.FitStatistics, r.FittedFrom)
		b, err := os.ReadFile(filepath.Join(f.root, r.Artifact))
		require.NoError(t, err)
		out[r.Spec] = b
	}
	return out
}

func rebuiltTotal(t *testing.T, metrics *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := metrics.Gather()
	require.NoError(t, err)
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "refit_stats_rebuilt_total" {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// TestBlobStatisticsOnTheirOwnMessages: two replicas share a version's
// blob.written messages; each blob's statistics are computed once, equal
// those of its rows, and the fit reads them (no rows, nothing rebuilt),
// giving the same artifacts, byte for byte, as a fit that computed every
// blob itself; a redelivery reads the file.
func TestBlobStatisticsOnTheirOwnMessages(t *testing.T) {
	ctx := context.Background()
	alone := newBlobFixture(t)
	w, _ := alone.replica(t)
	want := alone.fit(t, w) // no blob.written handled: the fit computes each blob's statistics

	f := newBlobFixture(t)
	a, _ := f.replica(t)
	b, _ := f.replica(t)
	for i := range f.v.Blobs {
		replica := []*Worker{a, b}[i%2]
		require.NoError(t, replica.HandleBlobWritten(ctx, f.written(i)))
	}
	require.EqualValues(t, len(f.v.Blobs), f.bucket.rowsOpened.Load(), "one read of each blob")
	require.EqualValues(t, len(f.v.Blobs), f.bucket.statsWritten.Load())
	key, err := model.StatsKey(f.d)
	require.NoError(t, err)
	for _, name := range f.v.Blobs {
		got, err := os.ReadFile(filepath.Join(f.root, stats.BlobName(name, key)))
		require.NoError(t, err)
		st, err := model.ComputeStats(ctx, f.d, f.d.ScanBlobs(ctx, f.bucket.Bucket, []string{name}, nil))
		require.NoError(t, err)
		require.True(t, bytes.Equal(st.Marshal(), got), "statistics of %s differ from its rows'", name)
	}

	// Redelivered to the other replica: read, not recomputed.
	f.bucket.rowsOpened.Store(0)
	for i := range f.v.Blobs {
		replica := []*Worker{b, a}[i%2]
		require.NoError(t, replica.HandleBlobWritten(ctx, f.written(i)))
	}
	require.Zero(t, f.bucket.rowsOpened.Load(), "rows blobs read on a redelivery")

	fitter, metrics := f.replica(t)
	got := f.fit(t, fitter)
	require.Zero(t, f.bucket.rowsOpened.Load(), "the fit read rows although every blob had statistics")
	require.Zero(t, rebuiltTotal(t, metrics))
	require.Equal(t, want, got, "artifacts differ with the statistics computed by two replicas")
}

// TestHandleBlobWrittenRefuses: what can never succeed is permanent and
// writes no statistics; a dataset without linear specs computes none.
func TestHandleBlobWrittenRefuses(t *testing.T) {
	reviewsJSON, err := os.ReadFile("../../schemas/datasets/reviews.json")
	require.NoError(t, err)
	reviews, err := dataset.Parse(reviewsJSON)
	require.NoError(t, err)
	require.False(t, stats.Needed(reviews))
	for _, tt := range []struct {
		name   string
		edit   func(f *blobFixture, e *events.BlobWritten)
		damage func([]byte) []byte // to the blob
		want   string              // in the permanent error; "" for none
	}{
		{name: "a classification dataset computes nothing", edit: func(f *blobFixture, e *events.BlobWritten) {
			e.Dataset, e.Blob = reviews.Name, "datasets/"+reviews.Name+"/rows/x.csv"
		}},
		{name: "a truncated blob", damage: func(b []byte) []byte {
			lines := bytes.SplitAfter(b, []byte("\n"))
			return bytes.Join(lines[:len(lines)/2], nil)
		}, want: "rows, version 1 recorded 700"},
		{name: "a changed byte", damage: func(b []byte) []byte {
			b[bytes.LastIndexByte(b, ',')-1] ^= 1
			return b
		}, want: "content hash"},
		{name: "a blob that is not there", edit: func(f *blobFixture, e *events.BlobWritten) {
			e.Blob = "datasets/housing/rows/gone.csv"
		}, want: "not exist"},
		{name: "an object outside the rows", edit: func(f *blobFixture, e *events.BlobWritten) {
			e.Blob = "models/housing/x.csv"
		}, want: "not a rows blob"},
		{name: "an unknown dataset", edit: func(f *blobFixture, e *events.BlobWritten) { e.Dataset = "boats" }, want: `unknown dataset "boats"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newBlobFixture(t)
			w, _ := f.replica(t, reviews)
			e := f.written(1)
			if tt.edit != nil {
				tt.edit(f, e)
			}
			if tt.damage != nil {
				path := filepath.Join(f.root, filepath.FromSlash(e.Blob))
				b, err := os.ReadFile(path)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(path, tt.damage(b), 0o644))
			}
			f.bucket.rowsOpened.Store(0)
			err := w.HandleBlobWritten(context.Background(), e)
			require.Zero(t, f.bucket.statsWritten.Load(), "statistics written")
			if tt.want == "" {
				require.NoError(t, err)
				require.Zero(t, f.bucket.rowsOpened.Load(), "rows read")
				return
			}
			require.True(t, bus.IsPermanent(err), "%v", err)
			require.ErrorContains(t, err, tt.want)
			if tt.damage != nil {
				var corrupt *CorruptBlobError
				require.True(t, errors.As(err, &corrupt), "%v", err)
				require.Equal(t, e.Blob, corrupt.Blob)
			}
		})
	}
}

// BenchmarkHandleBlobWritten is what a train replica spends on one blob's
// message: reading and verifying 100k rows and summing their statistics
// (the work the cut no longer does inline).
func BenchmarkHandleBlobWritten(b *testing.B) {
	ctx := context.Background()
	d := workertest.Shipped(b, "housing")
	root := b.TempDir()
	bucket, err := local.New(root, "bench")
	if err != nil {
		b.Fatal(err)
	}
	v := stageVersion(b, d, bucket, 100_000, 100_000)
	catalog, err := dataset.NewCatalog(d)
	if err != nil {
		b.Fatal(err)
	}
	w, err := New(Config{Deps: workers.Deps{Datasets: catalog, Bucket: bucket, Registry: registry.New(memory.New()), Publisher: workertest.Discard{},
		Logger: slog.New(slog.DiscardHandler), Metrics: prometheus.NewRegistry()}})
	if err != nil {
		b.Fatal(err)
	}
	key, err := model.StatsKey(d)
	if err != nil {
		b.Fatal(err)
	}
	e := &events.BlobWritten{Meta: events.Meta{ID: v.Blobs[0], Dataset: d.Name}, Version: 1, Blob: v.Blobs[0], Rows: v.BlobRows[0], Hash: v.BlobHashes[0]}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		_ = os.Remove(filepath.Join(root, filepath.FromSlash(stats.BlobName(v.Blobs[0], key))))
		b.StartTimer()
		if err := w.HandleBlobWritten(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e5, "ns/row")
}
