package promote

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/workers/stats"
	"github.com/refit-ml/refit/workers/train"
	"github.com/refit-ml/refit/workers/workertest"
)

// BenchmarkNewVersion is the cost of a 5,000-row version on a dataset of
// rows already versioned: train both housing specs on it and decide on
// both runs against the champion.
//
//   - path=incremental: the version worker's statistics of the new blob
//     (from its rows), then the fit and the decisions from the version's
//     statistics (the parent's merged, cached, plus the new blob's);
//   - path=full: the full refit: every spec fitted from all the rows, and
//     both models scored on the test rows (a rule on MAE forces the
//     decision to read rows).
func BenchmarkNewVersion(b *testing.B) {
	for _, rows := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			env := newVersionEnv(b, rows, 5_000)
			for _, path := range []string{"incremental", "full"} {
				b.Run("path="+path, func(b *testing.B) {
					for range b.N {
						b.StopTimer()
						env.reset(b)
						b.StartTimer()
						env.run(b, path == "full")
					}
				})
			}
		})
	}
}

type versionEnv struct {
	d, dMAE   *dataset.Definition
	root      string
	bucket    blob.Bucket
	v1, v2    registry.Version
	v1Runs    []registry.Run
	champion  registry.Promotion
	statsKey  string
	logger    *slog.Logger
	reg       *registry.Registry
	newBlobSt string
}

func newVersionEnv(b *testing.B, base, fresh int) *versionEnv {
	ctx := context.Background()
	d, dMAE := workertest.Shipped(b, "housing"), workertest.Shipped(b, "housing")
	dMAE.Promotion.PrimaryMetric = "mae"
	e := &versionEnv{d: d, dMAE: dMAE, root: b.TempDir(), logger: slog.New(slog.DiscardHandler)}
	var err error
	if e.bucket, err = local.New(e.root, "bench"); err != nil {
		b.Fatal(err)
	}
	if e.statsKey, err = model.StatsKey(d); err != nil {
		b.Fatal(err)
	}
	e.v1 = registry.Version{Dataset: d.Name, Number: 1, Hash: "v1", CreatedAt: time.Now().UTC()}
	for _, m := range d.Models {
		e.v1.Specs = append(e.v1.Specs, m.Hash())
	}
	for i := 0; i*100_000 < base; i++ {
		stageBlob(b, d, e.bucket, &e.v1, fmt.Sprintf("datasets/%s/rows/base%03d.csv", d.Name, i), int64(100+i), min(100_000, base-i*100_000))
	}
	e.v2 = e.v1
	e.v2.Number, e.v2.Parent, e.v2.ParentHash, e.v2.Hash = 2, 1, "v1", "v2"
	e.v2.Blobs = append([]string(nil), e.v1.Blobs...)
	e.v2.BlobRows, e.v2.BlobHashes = append([]int(nil), e.v1.BlobRows...), append([]string(nil), e.v1.BlobHashes...)
	stageBlob(b, d, e.bucket, &e.v2, fmt.Sprintf("datasets/%s/rows/new.csv", d.Name), 7, fresh)
	e.newBlobSt = filepath.Join(e.root, stats.BlobName(e.v2.Blobs[len(e.v2.Blobs)-1], e.statsKey))

	// The dataset's history: v1's blobs have statistics (written at their
	// cuts), v1 is trained (caching its merged statistics) and its best
	// model serves.
	st, err := stats.New(e.bucket, e.logger, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	checks, _ := stats.Recorded(e.v1)
	for _, name := range e.v1.Blobs {
		if err := st.Ensure(ctx, d, name, checks[name]); err != nil {
			b.Fatal(err)
		}
	}
	reg := registry.New(memory.New())
	if err := reg.AddVersion(ctx, e.v1); err != nil {
		b.Fatal(err)
	}
	if err := e.trainWorker(b, reg, false, d).HandleVersioned(ctx, &events.DatasetVersioned{Meta: events.Meta{Dataset: d.Name}, Version: 1}); err != nil {
		b.Fatal(err)
	}
	if e.v1Runs, err = reg.Runs(ctx, d.Name); err != nil || len(e.v1Runs) != len(d.Models) {
		b.Fatalf("v1 runs %v, %v", e.v1Runs, err)
	}
	pw := e.promoteWorker(b, reg, d)
	for _, r := range e.v1Runs {
		if err := pw.HandleTrained(ctx, &events.ModelTrained{Meta: events.Meta{Dataset: d.Name}, RunID: r.ID}); err != nil {
			b.Fatal(err)
		}
	}
	if e.champion, err = reg.LatestPromotion(ctx, d.Name); err != nil {
		b.Fatal(err)
	}
	return e
}

func (e *versionEnv) trainWorker(b *testing.B, reg *registry.Registry, fromRows bool, d *dataset.Definition) *train.Worker {
	w, err := train.New(train.Config{Deps: workertest.QuietDeps(b, d, e.bucket, reg), FitFromRows: fromRows})
	if err != nil {
		b.Fatal(err)
	}
	return w
}

func (e *versionEnv) promoteWorker(b *testing.B, reg *registry.Registry, d *dataset.Definition) *Worker {
	w, err := New(workertest.QuietDeps(b, d, e.bucket, reg))
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// reset: v2 is new: no runs, no decisions, no statistics of its new blob
// or of itself.
func (e *versionEnv) reset(b *testing.B) {
	ctx := context.Background()
	for _, f := range []string{e.newBlobSt, filepath.Join(e.root, stats.VersionName(e.d.Name, e.v2.Hash, e.statsKey))} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			b.Fatal(err)
		}
	}
	e.reg = registry.New(memory.New())
	for _, v := range []registry.Version{e.v1, e.v2} {
		if err := e.reg.AddVersion(ctx, v); err != nil {
			b.Fatal(err)
		}
	}
	for _, r := range e.v1Runs {
		if err := e.reg.AddRun(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.reg.AddPromotion(ctx, e.champion); err != nil {
		b.Fatal(err)
	}
}

func (e *versionEnv) run(b *testing.B, full bool) {
	ctx := context.Background()
	d := e.d
	if full {
		d = e.dMAE
	} else {
		st, err := stats.New(e.bucket, e.logger, prometheus.NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		checks, _ := stats.Recorded(e.v2)
		last := e.v2.Blobs[len(e.v2.Blobs)-1]
		if err := st.Ensure(ctx, d, last, checks[last]); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.trainWorker(b, e.reg, full, d).HandleVersioned(ctx, &events.DatasetVersioned{Meta: events.Meta{Dataset: d.Name}, Version: 2}); err != nil {
		b.Fatal(err)
	}
	runs, err := e.reg.Runs(ctx, d.Name)
	if err != nil {
		b.Fatal(err)
	}
	pw := e.promoteWorker(b, e.reg, d)
	decided := 0
	for _, r := range runs {
		if r.Version != 2 {
			continue
		}
		if want := map[bool]string{true: registry.FitRows, false: registry.FitStatistics}[full]; r.FittedFrom != want {
			b.Fatalf("run %s fitted from %s, want %s", r.ID, r.FittedFrom, want)
		}
		if err := pw.HandleTrained(ctx, &events.ModelTrained{Meta: events.Meta{Dataset: d.Name}, RunID: r.ID}); err != nil {
			b.Fatal(err)
		}
		decided++
	}
	if decided != len(d.Models) {
		b.Fatalf("decided %d runs of v2, want %d", decided, len(d.Models))
	}
}

// stageBlob writes rows generated houses as one staged blob and adds it to v.
func stageBlob(b *testing.B, d *dataset.Definition, bucket blob.Bucket, v *registry.Version, name string, seed int64, rows int) {
	workertest.NewHouses(b, d, seed, rows).Stage(b, bucket, name, name, rows).AddTo(v)
}
