package version_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/workers/version"
	"github.com/refit-ml/refit/workers/workertest"
)

// TestCutAnnouncesEachBlob: the cut computes no statistics (it reads no
// rows blob back and writes no statistics file); it announces each rows
// blob it writes, before the version, with what the version records of it,
// so a train replica can compute and check the blob's statistics.
func TestCutAnnouncesEachBlob(t *testing.T) {
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
	e.Bucket.WriteFn = func(ctx context.Context, name string, mode blob.Mode, fill func(io.Writer) error) (blob.Object, error) {
		require.False(t, strings.HasSuffix(name, ".stats"), "the cut wrote statistics: %s", name)
		return e.Local.Write(ctx, name, mode, fill)
	}
	for _, ev := range staged {
		require.NoError(t, w.HandleRowsStaged(ctx, ev))
	}
	e.Bucket.OpenFn, e.Bucket.WriteFn = nil, nil
	require.Zero(t, readBack, "rows blobs read back by the cut")
	vs, err := e.Registry.Versions(ctx, "housing")
	require.NoError(t, err)
	require.Len(t, vs, 2)

	var announced []*events.BlobWritten
	for _, p := range e.Publisher.Events() {
		switch ev := p.(type) {
		case *events.BlobWritten:
			announced = append(announced, ev)
		case *events.DatasetVersioned:
			require.Len(t, announced, ev.Version, "v%d announced before its blob", ev.Version)
		}
	}
	require.Len(t, announced, len(vs))
	for i, v := range vs {
		a := announced[i]
		pos := len(v.Blobs) - 1
		require.Equal(t, events.BlobWritten{
			Meta:    events.Meta{ID: v.Blobs[pos], Dataset: "housing", Time: v.CreatedAt, CorrelationID: a.CorrelationID},
			Version: v.Number, Blob: v.Blobs[pos], Position: pos, Rows: v.BlobRows[pos], Hash: v.BlobHashes[pos],
		}, *a)
		require.Equal(t, v.NewRows, a.Rows)
		rc, err := e.Local.Open(ctx, a.Blob)
		require.NoError(t, err)
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		require.NoError(t, err)
		require.Equal(t, hex.EncodeToString(h.Sum(nil)), a.Hash)
	}
}

// TestCutSurvivesALostAnnouncement: blob.written is a hint; failing to
// publish it does not fail the cut (the fit computes the statistics).
func TestCutSurvivesALostAnnouncement(t *testing.T) {
	ctx := context.Background()
	e := workertest.New(t, 150)
	staged := stage(t, e, 200)
	w, err := version.New(e.Deps(t))
	require.NoError(t, err)
	e.Publisher.PublishFn = func(_ context.Context, ev events.Event) error {
		if _, ok := ev.(*events.BlobWritten); ok {
			return errors.New("bus down for blob.written")
		}
		return nil
	}
	require.NoError(t, w.HandleRowsStaged(ctx, staged[0]))
	vs, err := e.Registry.Versions(ctx, "housing")
	require.NoError(t, err)
	require.Len(t, vs, 1)
	evs := e.Publisher.Events()
	require.Len(t, evs, 1)
	require.IsType(t, &events.DatasetVersioned{}, evs[0])
}
