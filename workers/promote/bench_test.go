package promote

import (
	"context"
	"testing"
	"time"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/workers/train"
	"github.com/refit-ml/refit/workers/workertest"
)

// BenchmarkDecide decides on a challenger against a champion trained on the
// same version: both are scored on the version's test split.
func BenchmarkDecide(b *testing.B) {
	for _, size := range []struct {
		name string
		rows int
	}{{"rows=100k", 100_000}, {"rows=1M", 1_000_000}} {
		b.Run(size.name, func(b *testing.B) {
			ctx := context.Background()
			d := workertest.Shipped(b, "housing")
			bucket, err := local.New(b.TempDir(), "bench")
			if err != nil {
				b.Fatal(err)
			}
			v := stageVersion(b, d, bucket, size.rows)

			// Train both specs once, through the train worker.
			trained := registry.New(memory.New())
			if err := trained.AddVersion(ctx, v); err != nil {
				b.Fatal(err)
			}
			tw, err := train.New(train.Config{Deps: workertest.QuietDeps(b, d, bucket, trained)})
			if err != nil {
				b.Fatal(err)
			}
			if err := tw.HandleVersioned(ctx, &events.DatasetVersioned{Meta: events.Meta{Dataset: d.Name}, Version: v.Number}); err != nil {
				b.Fatal(err)
			}
			runs, err := trained.Runs(ctx, d.Name)
			if err != nil || len(runs) != 2 {
				b.Fatalf("runs %v, %v", runs, err)
			}
			champ, challenger := runs[0], runs[1]

			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				reg := registry.New(memory.New())
				if err := reg.AddVersion(ctx, v); err != nil {
					b.Fatal(err)
				}
				for _, r := range runs {
					if err := reg.AddRun(ctx, r); err != nil {
						b.Fatal(err)
					}
				}
				if err := reg.AddPromotion(ctx, registry.Promotion{Dataset: d.Name, Sequence: 1, RunID: champ.ID, Spec: champ.Spec,
					Version: champ.Version, VersionHash: champ.VersionHash, Artifact: champ.Artifact, ArtifactURI: champ.ArtifactURI,
					Checksum: champ.Checksum, Metrics: champ.Metrics, Actor: ActorAuto, PromotedAt: time.Now().UTC()}); err != nil {
					b.Fatal(err)
				}
				w, err := New(workertest.QuietDeps(b, d, bucket, reg))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := w.HandleTrained(ctx, &events.ModelTrained{Meta: events.Meta{Dataset: d.Name}, RunID: challenger.ID}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(v.TestRows), "ns/test-row")
		})
	}
}

// stageVersion writes generated houses as one staged blob and returns a
// version naming it.
func stageVersion(tb testing.TB, d *dataset.Definition, bucket blob.Bucket, rows int) registry.Version {
	tb.Helper()
	v := registry.Version{Dataset: d.Name, Number: 1, Hash: "bench", CreatedAt: time.Now().UTC()}
	for _, m := range d.Models {
		v.Specs = append(v.Specs, m.Hash())
	}
	// The blob's row count and hash too: training and deciding refuse a
	// blob no version records.
	workertest.NewHouses(tb, d, 43, rows).Stage(tb, bucket, "datasets/"+d.Name+"/rows/bench.csv", "bench", rows).AddTo(&v)
	return v
}
