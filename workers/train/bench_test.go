package train

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/workers/workertest"
)

// stageVersion writes rows generated houses as staged CSV blobs of at most
// perBlob rows, the way preprocess and version do, and returns a version
// naming them.
func stageVersion(tb testing.TB, d *dataset.Definition, bucket blob.Bucket, rows, perBlob int) registry.Version {
	tb.Helper()
	houses := workertest.NewHouses(tb, d, 42, rows)
	v := registry.Version{Dataset: d.Name, Number: 1, Hash: fmt.Sprintf("bench-%d", rows), CreatedAt: time.Now().UTC()}
	for _, m := range d.Models {
		v.Specs = append(v.Specs, m.Hash())
	}
	for {
		b := houses.Stage(tb, bucket, fmt.Sprintf("datasets/%s/rows/%06d.csv", d.Name, len(v.Blobs)), "bench", perBlob)
		if b.Rows > 0 {
			b.AddTo(&v)
		}
		if b.Rows < perBlob {
			return v
		}
	}
}

// BenchmarkTrainVersion trains every spec of the housing dataset on one
// version, through the worker: read the staged blobs from a local bucket,
// fit, score, write the artifacts, record the runs.
func BenchmarkTrainVersion(b *testing.B) {
	for _, size := range []struct {
		name          string
		rows, perBlob int
	}{
		{"rows=100k", 100_000, 5_000},
		{"rows=1M", 1_000_000, 100_000},
	} {
		b.Run(size.name, func(b *testing.B) {
			ctx := context.Background()
			d := workertest.Shipped(b, "housing")
			root := b.TempDir()
			bucket, err := local.New(root, "bench")
			if err != nil {
				b.Fatal(err)
			}
			v := stageVersion(b, d, bucket, size.rows, size.perBlob)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				if err := os.RemoveAll(filepath.Join(root, "models")); err != nil {
					b.Fatal(err)
				}
				reg := registry.New(memory.New())
				if err := reg.AddVersion(ctx, v); err != nil {
					b.Fatal(err)
				}
				w, err := New(Config{Deps: workertest.QuietDeps(b, d, bucket, reg)})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := w.HandleVersioned(ctx, &events.DatasetVersioned{Meta: events.Meta{Dataset: d.Name}, Version: v.Number}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(v.Rows), "ns/row")
		})
	}
}
