package version_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/workers/stats"
	"github.com/refit-ml/refit/workers/version"
	"github.com/refit-ml/refit/workers/workertest"
)

// TestCutWritesBlobStatistics: the statistics the cut computes while
// writing a blob are those of the blob's rows read back.
func TestCutWritesBlobStatistics(t *testing.T) {
	ctx := context.Background()
	e := workertest.New(t, 150)
	staged := stage(t, e, 200, 180)
	w, err := version.New(e.Deps(t))
	require.NoError(t, err)
	readBack := 0
	e.Bucket.OpenFn = func(ctx context.Context, name string) (io.ReadCloser, error) {
		if strings.HasPrefix(name, "datasets/housing/rows/") && strings.HasSuffix(name, ".csv") {
			readBack++
		}
		return e.Local.Open(ctx, name)
	}
	for _, ev := range staged {
		require.NoError(t, w.HandleRowsStaged(ctx, ev))
	}
	e.Bucket.OpenFn = nil
	require.Zero(t, readBack, "rows blobs read back by the cut")
	vs, err := e.Registry.Versions(ctx, "housing")
	require.NoError(t, err)
	require.Len(t, vs, 2)
	key, err := model.StatsKey(e.Def)
	require.NoError(t, err)
	for _, b := range vs[len(vs)-1].Blobs {
		rc, err := e.Local.Open(ctx, stats.BlobName(b, key))
		require.NoError(t, err, "the cut wrote the statistics of %s", b)
		got, err := io.ReadAll(rc)
		rc.Close()
		require.NoError(t, err)
		want, err := model.ComputeStats(ctx, e.Def, e.Def.ScanBlobs(ctx, e.Local, []string{b}, nil))
		require.NoError(t, err)
		require.True(t, bytes.Equal(want.Marshal(), got), "statistics of %s differ from its rows'", b)
	}
}
