package train

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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
	"github.com/refit-ml/refit/workers"
)

type discard struct{}

func (discard) Publish(context.Context, events.Event) error { return nil }

func housingDef(tb testing.TB) *dataset.Definition {
	tb.Helper()
	b, err := os.ReadFile("../../schemas/datasets/housing.json")
	if err != nil {
		tb.Fatal(err)
	}
	d, err := dataset.Parse(b)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// stageVersion writes rows generated houses as staged CSV blobs of at most
// perBlob rows, the way preprocess and version do, and returns a version
// naming them.
func stageVersion(tb testing.TB, d *dataset.Definition, bucket blob.Bucket, rows, perBlob int) registry.Version {
	tb.Helper()
	ctx := context.Background()
	var raw bytes.Buffer
	if err := (synth.Housing{Seed: 42}).Write(&raw, rows); err != nil {
		tb.Fatal(err)
	}
	in, err := d.NewInputReader(&raw, dataset.InputOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	v := registry.Version{Dataset: d.Name, Number: 1, Hash: fmt.Sprintf("bench-%d", rows), CreatedAt: time.Now().UTC()}
	for _, m := range d.Models {
		v.Specs = append(v.Specs, m.Hash())
	}
	for done := false; !done; {
		name := fmt.Sprintf("datasets/%s/rows/%06d.csv", d.Name, len(v.Blobs))
		n := 0
		sum := sha256.New()
		_, err := bucket.Write(ctx, name, blob.CreateOnly, func(w io.Writer) error {
			out := io.MultiWriter(w, sum)
			enc := d.NewStagedEncoder("bench")
			if _, err := out.Write(d.HeaderRecord()); err != nil {
				return err
			}
			for n < perBlob {
				row, rej, err := in.Next()
				if errors.Is(err, io.EOF) {
					done = true
					break
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
				n++
				v.Rows++
				if test {
					v.TestRows++
				} else {
					v.TrainRows++
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
		if n > 0 {
			v.Blobs = append(v.Blobs, name)
			v.BlobRows = append(v.BlobRows, n)
			v.BlobHashes = append(v.BlobHashes, hex.EncodeToString(sum.Sum(nil)))
		}
	}
	return v
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
			d := housingDef(b)
			catalog, err := dataset.NewCatalog(d)
			if err != nil {
				b.Fatal(err)
			}
			root := b.TempDir()
			bucket, err := local.New(root, "bench")
			if err != nil {
				b.Fatal(err)
			}
			v := stageVersion(b, d, bucket, size.rows, size.perBlob)
			logger := slog.New(slog.DiscardHandler)
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
				w, err := New(Config{Deps: workers.Deps{Datasets: catalog, Bucket: bucket, Registry: reg, Publisher: discard{},
					Logger: logger, Metrics: prometheus.NewRegistry()}})
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
