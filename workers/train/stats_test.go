package train

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/workers"
	"github.com/refit-ml/refit/workers/stats"
	"github.com/refit-ml/refit/workers/workertest"
)

// rowless refuses to open rows blobs: training from statistics reads none.
type rowless struct{ blob.Bucket }

func (r rowless) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if strings.HasSuffix(name, ".csv") {
		return nil, fmt.Errorf("read rows blob %s", name)
	}
	return r.Bucket.Open(ctx, name)
}

// trained is what one training of a version left: the runs and their
// artifacts' bytes, by spec.
type trained struct {
	runs map[string]registry.Run
	arts map[string][]byte
}

// trainOnce stages rows in a fresh bucket, lets prepare act on its files
// (write statistics, damage them), and trains the version.
func trainOnce(t *testing.T, d *dataset.Definition, fromRows, noRows bool, prepare func(t *testing.T, root string, v registry.Version)) trained {
	t.Helper()
	ctx := context.Background()
	catalog, err := dataset.NewCatalog(d)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	bucket, err := local.New(root, "test")
	if err != nil {
		t.Fatal(err)
	}
	v := stageVersion(t, d, bucket, 3000, 1000)
	if prepare != nil {
		prepare(t, root, v)
	}
	reg := registry.New(memory.New())
	if err := reg.AddVersion(ctx, v); err != nil {
		t.Fatal(err)
	}
	var b blob.Bucket = bucket
	if noRows {
		b = rowless{bucket}
	}
	w, err := New(Config{Deps: workers.Deps{Datasets: catalog, Bucket: b, Registry: reg, Publisher: workertest.Discard{},
		Logger: slog.New(slog.DiscardHandler), Metrics: prometheus.NewRegistry()}, FitFromRows: fromRows})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.HandleVersioned(ctx, &events.DatasetVersioned{Meta: events.Meta{Dataset: d.Name}, Version: v.Number}); err != nil {
		t.Fatal(err)
	}
	runs, err := reg.Runs(ctx, d.Name)
	if err != nil {
		t.Fatal(err)
	}
	out := trained{runs: map[string]registry.Run{}, arts: map[string][]byte{}}
	for _, r := range runs {
		b, err := os.ReadFile(filepath.Join(root, r.Artifact))
		if err != nil {
			t.Fatal(err)
		}
		out.runs[r.Spec], out.arts[r.Spec] = r, b
	}
	if len(out.runs) != len(d.Models) {
		t.Fatalf("%d runs, want %d", len(out.runs), len(d.Models))
	}
	return out
}

func statsFiles(t *testing.T, root string, d *dataset.Definition, v registry.Version) []string {
	t.Helper()
	key, err := model.StatsKey(d)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range v.Blobs {
		out = append(out, filepath.Join(root, stats.BlobName(b, key)))
	}
	return out
}

// writeStats does what the train worker does on each blob.written.
func writeStats(t *testing.T, root string, d *dataset.Definition, v registry.Version) {
	t.Helper()
	bucket, err := local.New(root, "test")
	if err != nil {
		t.Fatal(err)
	}
	s, err := stats.New(bucket, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	checks, _ := stats.Recorded(v)
	for _, b := range v.Blobs {
		if err := s.Ensure(context.Background(), d, b, checks[b]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTrainFromStatistics: linear specs are fitted from statistics, the
// same models as from the rows (to rounding), and a crash between a blob
// and its statistics (absent, truncated, corrupt) changes nothing: they
// are rebuilt from the rows, never half-read, giving the same bytes.
func TestTrainFromStatistics(t *testing.T) {
	d := workertest.Shipped(t, "housing")
	clean := trainOnce(t, d, false, true, func(t *testing.T, root string, v registry.Version) { writeStats(t, root, d, v) })
	rows := trainOnce(t, d, true, false, nil)
	for spec, r := range clean.runs {
		if r.FittedFrom != registry.FitStatistics || rows.runs[spec].FittedFrom != registry.FitRows {
			t.Fatalf("%s: fit %q and %q, want statistics and rows", spec, r.FittedFrom, rows.runs[spec].FittedFrom)
		}
		if r.TrainRows != rows.runs[spec].TrainRows || r.Metrics.Rows != rows.runs[spec].Metrics.Rows {
			t.Fatalf("%s: rows counted %d/%d from statistics, %d/%d from rows", spec, r.TrainRows, r.Metrics.Rows,
				rows.runs[spec].TrainRows, rows.runs[spec].Metrics.Rows)
		}
		a, b := r.Metrics, rows.runs[spec].Metrics
		for _, m := range []struct {
			name      string
			got, want float64
			tol       float64
		}{{"rmse", a.RMSE, b.RMSE, 1e-9}, {"r2", a.R2, b.R2, 1e-9}, {"mae", a.MAE, b.MAE, 1e-9}} {
			// The test split (about 600 rows) fits in the MAE sample, so
			// even MAE is exact.
			if math.Abs(m.got-m.want) > m.tol*math.Abs(m.want) {
				t.Errorf("%s: %s %v from statistics, %v from rows", spec, m.name, m.got, m.want)
			}
		}
		fromStats, err := model.Unmarshal(clean.arts[spec])
		if err != nil {
			t.Fatal(err)
		}
		fromRows, err := model.Unmarshal(rows.arts[spec])
		if err != nil {
			t.Fatal(err)
		}
		if len(fromStats.Coef) != len(fromRows.Coef) {
			t.Fatalf("%s: %d coefficients, want %d", spec, len(fromStats.Coef), len(fromRows.Coef))
		}
		for i := range fromRows.Coef {
			if diff := math.Abs(fromStats.Coef[i] - fromRows.Coef[i]); diff > 1e-6*max(math.Abs(fromRows.Coef[i]), 1) {
				t.Errorf("%s: coef %d = %v from statistics, %v from rows", spec, i, fromStats.Coef[i], fromRows.Coef[i])
			}
		}
	}

	for _, tt := range []struct {
		name    string
		prepare func(t *testing.T, root string, v registry.Version)
	}{
		{"statistics absent (crash after the blob)", nil},
		{"last blob's statistics truncated", func(t *testing.T, root string, v registry.Version) {
			writeStats(t, root, d, v)
			fs := statsFiles(t, root, d, v)
			fi, err := os.Stat(fs[len(fs)-1])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(fs[len(fs)-1], fi.Size()-40); err != nil {
				t.Fatal(err)
			}
		}},
		{"a blob's statistics with a flipped byte", func(t *testing.T, root string, v registry.Version) {
			writeStats(t, root, d, v)
			f := statsFiles(t, root, d, v)[0]
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/3] ^= 1
			if err := os.WriteFile(f, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := trainOnce(t, d, false, false, tt.prepare)
			for spec, want := range clean.arts {
				if !bytes.Equal(got.arts[spec], want) {
					t.Errorf("%s: artifact differs from the clean run's", spec)
				}
				if got.runs[spec].Metrics != clean.runs[spec].Metrics {
					t.Errorf("%s: metrics %+v, clean run %+v", spec, got.runs[spec].Metrics, clean.runs[spec].Metrics)
				}
			}
		})
	}
}
