package version_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/workers/preprocess"
	"github.com/refit-ml/refit/workers/version"
	"github.com/refit-ml/refit/workers/workertest"
)

// BenchmarkCut cuts the first version of a dataset from one staged file:
// deduplication, the rows blob, its index and its hash.
func BenchmarkCut(b *testing.B) {
	for _, rows := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprint(rows), func(b *testing.B) {
			ctx := context.Background()
			def := workertest.Shipped(b, "housing")
			// Stage the file once.
			dir := b.TempDir()
			bucket, err := local.New(filepath.Join(dir, "staging"), "bench")
			if err != nil {
				b.Fatal(err)
			}
			reg := registry.New(memory.New())
			pre, err := preprocess.New(preprocess.Config{Deps: workertest.QuietDeps(b, def, bucket, reg)})
			if err != nil {
				b.Fatal(err)
			}
			var data bytes.Buffer
			if err := (synth.Housing{Seed: 1}).Write(&data, rows); err != nil {
				b.Fatal(err)
			}
			obj, err := bucket.Write(ctx, events.IncomingPrefix+"housing/a.csv", blob.CreateOnly, func(w io.Writer) error {
				_, err := w.Write(data.Bytes())
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			if err := pre.HandleObject(ctx, events.NewObjectFinalized(obj.Bucket, obj.Name, obj.Generation, obj.Size, obj.Updated)); err != nil {
				b.Fatal(err)
			}
			ingests, err := reg.Ingests(ctx, "housing")
			if err != nil || len(ingests) != 1 {
				b.Fatal(ingests, err)
			}
			in := ingests[0]
			rc, err := bucket.Open(ctx, in.Chunk)
			if err != nil {
				b.Fatal(err)
			}
			chunk, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				b.Fatal(err)
			}
			// What staging wrote beside the chunk: the cut reads this list,
			// not the chunk, when it checks out.
			rc, err = bucket.Open(ctx, in.RowHashes)
			if err != nil {
				b.Fatal(err)
			}
			hashList, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(chunk)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				fresh, err := local.New(filepath.Join(dir, fmt.Sprint(i)), "bench")
				if err != nil {
					b.Fatal(err)
				}
				for name, content := range map[string][]byte{in.Chunk: chunk, in.RowHashes: hashList} {
					if _, err := fresh.Write(ctx, name, blob.CreateOnly, func(w io.Writer) error {
						_, err := w.Write(content)
						return err
					}); err != nil {
						b.Fatal(err)
					}
				}
				reg := registry.New(memory.New())
				if err := reg.RecordIngest(ctx, in); err != nil {
					b.Fatal(err)
				}
				w, err := version.New(workertest.QuietDeps(b, def, fresh, reg))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				if err := w.Cut(ctx, "housing", ""); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(rows), "ns/row")
				b.StopTimer()
				if v, err := reg.LatestVersion(ctx, "housing"); err != nil || v.Rows != rows {
					b.Fatal(v.Rows, err)
				}
			}
		})
	}
}

// BenchmarkCutOnto cuts a 5,000-row upload onto a version of N rows: the
// part of freshness that can grow with the dataset (the new rows are
// checked against the sorted index of every blob before them).
func BenchmarkCutOnto(b *testing.B) {
	for _, base := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", base), func(b *testing.B) {
			ctx := context.Background()
			def := workertest.Shipped(b, "housing")
			bucket, err := local.New(b.TempDir(), "bench")
			if err != nil {
				b.Fatal(err)
			}
			reg := registry.New(memory.New())
			deps := workertest.QuietDeps(b, def, bucket, reg)
			pre, err := preprocess.New(preprocess.Config{Deps: deps})
			if err != nil {
				b.Fatal(err)
			}
			stageFile := func(name string, seed int64, rows int) {
				var data bytes.Buffer
				if err := (synth.Housing{Seed: seed}).Write(&data, rows); err != nil {
					b.Fatal(err)
				}
				obj, err := bucket.Write(ctx, events.IncomingPrefix+"housing/"+name, blob.CreateOnly, func(w io.Writer) error {
					_, err := w.Write(data.Bytes())
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				if err := pre.HandleObject(ctx, events.NewObjectFinalized(obj.Bucket, obj.Name, obj.Generation, obj.Size, obj.Updated)); err != nil {
					b.Fatal(err)
				}
			}
			stageFile("base.csv", 1, base)
			deps.Metrics = prometheus.NewRegistry()
			w, err := version.New(deps)
			if err != nil {
				b.Fatal(err)
			}
			if err := w.Cut(ctx, "housing", ""); err != nil {
				b.Fatal(err)
			}
			v1, err := reg.LatestVersion(ctx, "housing")
			if err != nil || v1.Rows != base {
				b.Fatal(v1.Rows, err)
			}
			time.Sleep(time.Millisecond) // the upload's time orders it after the base
			stageFile("fresh.csv", 2, 5_000)
			ingests, err := reg.Ingests(ctx, "housing")
			if err != nil || len(ingests) != 2 {
				b.Fatal(ingests, err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				fresh := registry.New(memory.New())
				for _, in := range ingests {
					if err := fresh.RecordIngest(ctx, in); err != nil {
						b.Fatal(err)
					}
				}
				if err := fresh.AddVersion(ctx, v1); err != nil {
					b.Fatal(err)
				}
				deps.Registry, deps.Metrics = fresh, prometheus.NewRegistry()
				w, err := version.New(deps)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := w.Cut(ctx, "housing", ""); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if v, err := fresh.LatestVersion(ctx, "housing"); err != nil || v.Number != 2 || v.NewRows+v.Duplicate != 5_000 {
					b.Fatal(v, err)
				}
				b.StartTimer()
			}
		})
	}
}
