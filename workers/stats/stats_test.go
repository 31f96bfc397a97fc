package stats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers/workertest"
)

// stage writes rows generated houses as staged blobs of perBlob rows and
// returns the versions a version worker would cut, one blob each.
func stage(t testing.TB, d *dataset.Definition, bucket blob.Bucket, rows, perBlob int) []registry.Version {
	t.Helper()
	houses := workertest.NewHouses(t, d, 7, rows)
	var out []registry.Version
	var parent registry.Version
	for {
		b := houses.Stage(t, bucket, fmt.Sprintf("datasets/%s/rows/%06d.csv", d.Name, len(out)), "test", perBlob)
		if b.Rows == 0 {
			return out
		}
		v := registry.Version{Dataset: d.Name, Number: parent.Number + 1, Parent: parent.Number, ParentHash: parent.Hash,
			Hash: fmt.Sprintf("h%d", parent.Number+1), Blobs: append(append([]string(nil), parent.Blobs...), b.Name),
			BlobRows: append(append([]int(nil), parent.BlobRows...), b.Rows), NewRows: b.Rows,
			BlobHashes: append(append([]string(nil), parent.BlobHashes...), b.Hash)}
		out = append(out, v)
		parent = v
		if b.Rows < perBlob {
			return out
		}
	}
}

func newStore(t testing.TB, bucket blob.Bucket) (*Store, *prometheus.CounterVec) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(bucket, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	// A second store on the same registry (train and promote in one
	// process) shares the counter.
	if _, err := New(bucket, slog.New(slog.DiscardHandler), reg); err != nil {
		t.Fatal(err)
	}
	return s, s.rebuilt
}

func TestVersionStatsEqualFullRecomputation(t *testing.T) {
	ctx := context.Background()
	d := workertest.Shipped(t, "housing")
	key, err := model.StatsKey(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		// damage is done to the files before the newest version's
		// statistics are read.
		damage func(t *testing.T, root string, vs []registry.Version)
		// rebuilt counts the files rebuilt from rows, by reason.
		missing, corrupt float64
	}{
		{name: "clean"},
		{name: "blob stats missing (crash after the blob)", damage: func(t *testing.T, root string, vs []registry.Version) {
			last := vs[len(vs)-1]
			remove(t, root, BlobName(last.Blobs[len(last.Blobs)-1], key))
		}, missing: 1},
		{name: "blob stats truncated", damage: func(t *testing.T, root string, vs []registry.Version) {
			last := vs[len(vs)-1]
			truncate(t, root, BlobName(last.Blobs[len(last.Blobs)-1], key))
		}, corrupt: 1},
		{name: "parent's merged stats corrupt", damage: func(t *testing.T, root string, vs []registry.Version) {
			flip(t, root, VersionName(d.Name, vs[len(vs)-2].Hash, key))
		}},
		{name: "every file missing", damage: func(t *testing.T, root string, vs []registry.Version) {
			for _, v := range vs[:len(vs)-1] {
				remove(t, root, VersionName(d.Name, v.Hash, key))
			}
			for _, b := range vs[len(vs)-1].Blobs {
				remove(t, root, BlobName(b, key))
			}
		}, missing: 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			bucket, err := local.New(root, "test")
			if err != nil {
				t.Fatal(err)
			}
			vs := stage(t, d, bucket, 1800, 500)
			if len(vs) != 4 {
				t.Fatalf("%d versions, want 4", len(vs))
			}
			s, rebuilt := newStore(t, bucket)
			// The train worker computes each blob's statistics on its
			// blob.written; training reads each version's, caching them.
			for _, v := range vs {
				checks, _ := Recorded(v)
				b := v.Blobs[len(v.Blobs)-1]
				if err := s.Ensure(ctx, d, b, checks[b]); err != nil {
					t.Fatal(err)
				}
			}
			for _, v := range vs[:len(vs)-1] {
				if _, err := s.Version(ctx, d, v); err != nil {
					t.Fatal(err)
				}
			}
			if tt.damage != nil {
				tt.damage(t, root, vs)
			}
			last := vs[len(vs)-1]
			got, err := s.Version(ctx, d, last)
			if err != nil {
				t.Fatal(err)
			}
			// The reference: every blob's statistics from its rows,
			// folded in blob order.
			var want *model.Stats
			for _, b := range last.Blobs {
				bs, err := model.ComputeStats(ctx, d, d.ScanBlobs(ctx, bucket, []string{b}, nil))
				if err != nil {
					t.Fatal(err)
				}
				if want == nil {
					want = bs
				} else if want, err = model.Merge(want, bs); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got.Marshal(), want.Marshal()) {
				t.Fatal("version statistics differ from the fold of the blobs' statistics computed from the rows")
			}
			if n := got.Train.N + got.Test.N; n != 1800 {
				t.Fatalf("statistics of %d rows, want 1800", n)
			}
			if m := count(t, rebuilt, d.Name, reasonMissing); m != tt.missing {
				t.Errorf("rebuilt (missing) = %v, want %v", m, tt.missing)
			}
			if c := count(t, rebuilt, d.Name, reasonCorrupt); c != tt.corrupt {
				t.Errorf("rebuilt (corrupt) = %v, want %v", c, tt.corrupt)
			}
			// Whatever was damaged is readable again.
			for _, b := range last.Blobs {
				if ok, err := s.Has(ctx, d, b); err != nil || !ok {
					t.Fatalf("blob %s: statistics readable = %v, %v after the read", b, ok, err)
				}
			}
			again, err := s.Version(ctx, d, last)
			if err != nil || !bytes.Equal(again.Marshal(), want.Marshal()) {
				t.Fatalf("cached version statistics differ (%v)", err)
			}
		})
	}
}

func TestVersionWithoutBlobs(t *testing.T) {
	bucket, err := local.New(t.TempDir(), "test")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newStore(t, bucket)
	d := workertest.Shipped(t, "housing")
	if _, err := s.Version(context.Background(), d, registry.Version{Dataset: d.Name, Number: 1}); !errors.Is(err, model.ErrNoRows) {
		t.Fatalf("err = %v, want ErrNoRows", err)
	}
}

func path(root, name string) string { return root + "/" + name }

func remove(t *testing.T, root, name string) {
	t.Helper()
	if err := os.Remove(path(root, name)); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, root, name string) {
	t.Helper()
	fi, err := os.Stat(path(root, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path(root, name), fi.Size()/2); err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, root, name string) {
	t.Helper()
	b, err := os.ReadFile(path(root, name))
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(path(root, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, c *prometheus.CounterVec, labels ...string) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.WithLabelValues(labels...).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// Has reports whether a rows blob has a readable statistics file.
func (s *Store) Has(ctx context.Context, def *dataset.Definition, rowsBlob string) (bool, error) {
	key, err := model.StatsKey(def)
	if err != nil {
		return false, err
	}
	_, reason, err := s.read(ctx, def, BlobName(rowsBlob, key))
	return err == nil && reason == "", err
}
