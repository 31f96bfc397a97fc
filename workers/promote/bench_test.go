package promote

import (
	"bytes"
	"context"
	"errors"
	"github.com/refit-ml/refit/workers"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/workers/train"
)

type discard struct{}

func (discard) Publish(context.Context, events.Event) error { return nil }

// BenchmarkDecide decides on a challenger against a champion trained on the
// same version: both are scored on the version's test split.
func BenchmarkDecide(b *testing.B) {
	for _, size := range []struct {
		name string
		rows int
	}{{"rows=100k", 100_000}, {"rows=1M", 1_000_000}} {
		b.Run(size.name, func(b *testing.B) {
			ctx := context.Background()
			raw, err := os.ReadFile("../../schemas/datasets/housing.json")
			if err != nil {
				b.Fatal(err)
			}
			d, err := dataset.Parse(raw)
			if err != nil {
				b.Fatal(err)
			}
			catalog, err := dataset.NewCatalog(d)
			if err != nil {
				b.Fatal(err)
			}
			bucket, err := local.New(b.TempDir(), "bench")
			if err != nil {
				b.Fatal(err)
			}
			v := stageVersion(b, d, bucket, size.rows)
			logger := slog.New(slog.DiscardHandler)

			// Train both specs once, through the train worker.
			trained := registry.New(memory.New())
			if err := trained.AddVersion(ctx, v); err != nil {
				b.Fatal(err)
			}
			tw, err := train.New(train.Config{Deps: workers.Deps{Datasets: catalog, Bucket: bucket, Registry: trained, Publisher: discard{},
				Logger: logger, Metrics: prometheus.NewRegistry()}})
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
				w, err := New(workers.Deps{Datasets: catalog, Bucket: bucket, Registry: reg, Publisher: discard{},
					Logger: logger, Metrics: prometheus.NewRegistry()})
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
	var raw bytes.Buffer
	if err := (synth.Housing{Seed: 43}).Write(&raw, rows); err != nil {
		tb.Fatal(err)
	}
	in, err := d.NewInputReader(&raw, dataset.InputOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	v := registry.Version{Dataset: d.Name, Number: 1, Hash: "bench", CreatedAt: time.Now().UTC(),
		Blobs: []string{"datasets/" + d.Name + "/rows/bench.csv"}}
	for _, m := range d.Models {
		v.Specs = append(v.Specs, m.Hash())
	}
	_, err = bucket.Write(context.Background(), v.Blobs[0], blob.CreateOnly, func(out io.Writer) error {
		enc := d.NewStagedEncoder("bench")
		if _, err := out.Write(d.HeaderRecord()); err != nil {
			return err
		}
		for {
			row, rej, err := in.Next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if rej != nil {
				continue
			}
			_, test, rec := enc.Encode(row)
			if _, err := out.Write(rec); err != nil {
				return err
			}
			v.Rows++
			if test {
				v.TestRows++
			} else {
				v.TrainRows++
			}
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}
