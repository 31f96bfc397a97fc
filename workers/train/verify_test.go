package train

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/workers"
	"github.com/refit-ml/refit/workers/stats"
	"github.com/refit-ml/refit/workers/workertest"
)

// TestRowsBlobsAreVerifiedWhileRead damages a version's rows blob the
// ways disks and operators do and checks that no run is recorded on it and
// the failure is permanent, naming the blob: on the row path, and on the
// statistics path when the blob has no statistics yet (they are computed
// from the rows, through the same check, and none are written).
func TestRowsBlobsAreVerifiedWhileRead(t *testing.T) {
	for _, fromRows := range []bool{true, false} {
		t.Run(map[bool]string{true: "rows", false: "statistics"}[fromRows], func(t *testing.T) {
			testRowsBlobsVerified(t, fromRows)
		})
	}
}

func testRowsBlobsVerified(t *testing.T, fromRows bool) {
	// halve keeps the header and the first half of the rows, cut at a line
	// boundary: still valid staged CSV.
	halve := func(b []byte) []byte {
		lines := bytes.SplitAfter(b, []byte("\n"))
		return bytes.Join(lines[:len(lines)/2], nil)
	}
	legacy := func(v *registry.Version) {
		// As cut before blob hashes were recorded: one blob added by v.
		v.BlobRows, v.BlobHashes = nil, nil
		v.NewRows = v.Rows
	}
	for _, tt := range []struct {
		name    string
		blobs   int
		damage  func([]byte) []byte
		version func(*registry.Version)
		want    string // in the error; empty: trains
	}{
		{name: "intact", blobs: 2},
		{name: "truncated at a line boundary", blobs: 2, damage: halve, want: "rows, version 1 recorded 150"},
		{name: "one byte changed", blobs: 2, damage: func(b []byte) []byte {
			i := bytes.LastIndexByte(b, ',') - 1
			b[i] ^= 1
			return b
		}, want: "content hash"},
		{name: "a row appended", blobs: 2, damage: func(b []byte) []byte {
			lines := bytes.SplitAfter(b, []byte("\n"))
			return append(b, lines[1]...)
		}, want: "151 rows"},
		{name: "legacy version intact", blobs: 1, version: legacy},
		{name: "legacy version truncated", blobs: 1, version: legacy, damage: halve, want: "version 1 recorded 300"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			d := workertest.Shipped(t, "housing")
			catalog, err := dataset.NewCatalog(d)
			require.NoError(t, err)
			root := t.TempDir()
			bucket, err := local.New(root, "test")
			require.NoError(t, err)
			v := stageVersion(t, d, bucket, 300, 300/tt.blobs)
			require.Len(t, v.Blobs, tt.blobs)
			if tt.version != nil {
				tt.version(&v)
				// The hash chain of a version with one blob and no parent.
				b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(v.Blobs[0])))
				require.NoError(t, err)
				blobSum := sha256.Sum256(b)
				whole := sha256.Sum256([]byte(":" + hex.EncodeToString(blobSum[:])))
				v.Hash = hex.EncodeToString(whole[:])
			}
			if tt.damage != nil {
				path := filepath.Join(root, filepath.FromSlash(v.Blobs[len(v.Blobs)-1]))
				b, err := os.ReadFile(path)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(path, tt.damage(b), 0o644))
			}
			reg := registry.New(memory.New())
			require.NoError(t, reg.AddVersion(ctx, v))
			w, err := New(Config{Deps: workers.Deps{Datasets: catalog, Bucket: bucket, Registry: reg, Publisher: workertest.Discard{},
				Logger: slog.New(slog.DiscardHandler), Metrics: prometheus.NewRegistry()}, FitFromRows: fromRows})
			require.NoError(t, err)

			err = w.HandleVersioned(ctx, &events.DatasetVersioned{Meta: events.Meta{Dataset: d.Name}, Version: v.Number})
			runs, rerr := reg.Runs(ctx, d.Name)
			require.NoError(t, rerr)
			if tt.want == "" {
				require.NoError(t, err)
				require.Len(t, runs, len(d.Models))
				return
			}
			require.Error(t, err)
			require.True(t, bus.IsPermanent(err), "a corrupt blob fails the same way on retry: %v", err)
			var corrupt *CorruptBlobError
			require.True(t, errors.As(err, &corrupt), "%v", err)
			require.Equal(t, v.Blobs[len(v.Blobs)-1], corrupt.Blob)
			require.ErrorContains(t, err, tt.want)
			require.Empty(t, runs, "no run may be recorded on a corrupt blob")
			key, err := model.StatsKey(d)
			require.NoError(t, err)
			_, err = os.Stat(filepath.Join(root, filepath.FromSlash(stats.BlobName(corrupt.Blob, key))))
			require.True(t, os.IsNotExist(err), "statistics written from a corrupt blob (%v)", err)
		})
	}
}
