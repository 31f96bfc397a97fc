package preprocess_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/bolt"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/workers/preprocess"
	"github.com/refit-ml/refit/workers/workertest"
)

// BenchmarkStage stages one generated housing file on the embedded
// profile's storage (a local folder and bbolt), as `refit run` does. It
// reports the heap the staging added at its peak, which should not grow
// with the file.
func BenchmarkStage(b *testing.B) {
	for _, rows := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(rows), func(b *testing.B) {
			def := workertest.Shipped(b, "housing")
			var data bytes.Buffer
			if err := (synth.Housing{Seed: 1}).Write(&data, rows); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(data.Len()))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dir := b.TempDir()
				bucket, err := local.New(filepath.Join(dir, "bucket"), "bench")
				if err != nil {
					b.Fatal(err)
				}
				docs, err := bolt.Open(filepath.Join(dir, "refit.db"))
				if err != nil {
					b.Fatal(err)
				}
				w, err := preprocess.New(preprocess.Config{Deps: workertest.QuietDeps(b, def, bucket, registry.New(docs))})
				if err != nil {
					b.Fatal(err)
				}
				name := events.IncomingPrefix + "housing/data.csv"
				obj, err := bucket.Write(context.Background(), name, blob.CreateOnly, func(w io.Writer) error {
					_, err := w.Write(data.Bytes())
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				e := &events.ObjectFinalized{Bucket: bucket.Name(), Name: name, Generation: obj.Generation,
					EventType: events.EventTypeFinalize, Updated: time.Now()}
				runtime.GC()
				peak := watchHeap()
				b.StartTimer()
				if err := w.HandleObject(context.Background(), e); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				b.ReportMetric(peak()/(1<<20), "peak-heap-MiB")
				docs.Close()
			}
		})
	}
}

// watchHeap samples the live heap (as of the last garbage collection)
// until the returned function is called, which gives its peak above the
// live heap at the start.
func watchHeap() (peak func() float64) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	live := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	base := live()
	var top atomic.Uint64
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if v := live(); v > top.Load() {
				top.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 {
		close(done)
		<-stopped
		return float64(max(top.Load(), base) - base)
	}
}
