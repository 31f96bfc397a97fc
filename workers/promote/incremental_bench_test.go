package promote

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
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/workers"
	"github.com/refit-ml/refit/workers/stats"
	"github.com/refit-ml/refit/workers/train"
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
	raw, err := os.ReadFile("../../schemas/datasets/housing.json")
	if err != nil {
		b.Fatal(err)
	}
	d, err := dataset.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	dMAE, err := dataset.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	dMAE.Promotion.PrimaryMetric = "mae"
	e := &versionEnv{d: d, dMAE: dMAE, root: b.TempDir(), logger: slog.New(slog.DiscardHandler)}
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
	catalog, err := dataset.NewCatalog(d)
	if err != nil {
		b.Fatal(err)
	}
	w, err := train.New(train.Config{Deps: workers.Deps{Datasets: catalog, Bucket: e.bucket, Registry: reg, Publisher: discard{},
		Logger: e.logger, Metrics: prometheus.NewRegistry()}, FitFromRows: fromRows})
	if err != nil {
		b.Fatal(err)
	}
	return w
}

func (e *versionEnv) promoteWorker(b *testing.B, reg *registry.Registry, d *dataset.Definition) *Worker {
	catalog, err := dataset.NewCatalog(d)
	if err != nil {
		b.Fatal(err)
	}
	w, err := New(workers.Deps{Datasets: catalog, Bucket: e.bucket, Registry: reg, Publisher: discard{},
		Logger: e.logger, Metrics: prometheus.NewRegistry()})
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
	var raw bytes.Buffer
	if err := (synth.Housing{Seed: seed}).Write(&raw, rows); err != nil {
		b.Fatal(err)
	}
	in, err := d.NewInputReader(&raw, dataset.InputOptions{})
	if err != nil {
		b.Fatal(err)
	}
	sum, n := sha256.New(), 0
	_, err = bucket.Write(context.Background(), name, blob.CreateOnly, func(w io.Writer) error {
		out := io.MultiWriter(w, sum)
		enc := d.NewStagedEncoder(name)
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
			n++
			if test {
				v.TestRows++
			} else {
				v.TrainRows++
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	// What the version records of each blob; its readers check it.
	v.Blobs = append(v.Blobs, name)
	v.BlobRows, v.BlobHashes = append(v.BlobRows, n), append(v.BlobHashes, hex.EncodeToString(sum.Sum(nil)))
}
