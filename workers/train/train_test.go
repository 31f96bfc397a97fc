package train_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/workers"
	"github.com/refit-ml/refit/workers/preprocess"
	"github.com/refit-ml/refit/workers/train"
	"github.com/refit-ml/refit/workers/version"
	"github.com/refit-ml/refit/workers/workertest"
)

var errBoom = errors.New("boom")

// cut stages 300 generated rows and cuts version 1; it returns its event.
func cut(t *testing.T, e *workertest.Env) *events.DatasetVersioned {
	t.Helper()
	ctx := context.Background()
	pre, err := preprocess.New(preprocess.Config{Deps: e.Deps(t)})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, synth.Housing{Seed: 1}.Write(&buf, 300))
	require.NoError(t, pre.HandleObject(ctx, e.Put(t, "a.csv", buf.Bytes())))
	ver, err := version.New(e.Deps(t))
	require.NoError(t, err)
	for _, ev := range e.Publisher.Take() {
		require.NoError(t, ver.HandleRowsStaged(ctx, ev.(*events.RowsStaged)))
	}
	evs := e.Publisher.Take()
	require.Len(t, evs, 2)
	require.IsType(t, &events.BlobWritten{}, evs[0]) // left unhandled: the fit computes the statistics
	return evs[1].(*events.DatasetVersioned)
}

func TestHandleVersioned(t *testing.T) {
	type want struct {
		permanent bool
		err       error
		runs      int // recorded
		trained   int // model.trained events
		failed    int // recorded training failures
	}
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, e *workertest.Env, w *train.Worker, ev *events.DatasetVersioned)
		event func(ev *events.DatasetVersioned) *events.DatasetVersioned
		want  want
	}{
		{name: "every spec of the version is trained", want: want{runs: 2, trained: 2}},
		{name: "a duplicate event re-announces and reads nothing",
			setup: func(t *testing.T, e *workertest.Env, w *train.Worker, ev *events.DatasetVersioned) {
				require.NoError(t, w.HandleVersioned(context.Background(), ev))
				e.Publisher.Take()
				e.Bucket.OpenFn = func(context.Context, string) (io.ReadCloser, error) { return nil, errors.New("trained twice") }
			},
			want: want{runs: 2, trained: 2}},
		{name: "an unknown dataset is permanent",
			event: func(ev *events.DatasetVersioned) *events.DatasetVersioned {
				c := *ev
				c.Dataset = "flats"
				return &c
			},
			want: want{permanent: true}},
		{name: "a version missing from the store is permanent",
			event: func(ev *events.DatasetVersioned) *events.DatasetVersioned {
				c := *ev
				c.Version = 7
				return &c
			},
			want: want{permanent: true}},
		{name: "losing the race to record a run announces the winner's",
			setup: func(t *testing.T, e *workertest.Env, _ *train.Worker, _ *events.DatasetVersioned) {
				e.Docs.InsertFn = func(ctx context.Context, col, key string, body json.RawMessage) error {
					require.NoError(t, e.Docs.Docs.Insert(ctx, col, key, body))
					if col == "runs" {
						return store.ErrDuplicate
					}
					return nil
				}
			},
			want: want{runs: 2, trained: 2}},
		{name: "an artifact already written (a racing worker) is checked and kept",
			setup: func(t *testing.T, e *workertest.Env, _ *train.Worker, ev *events.DatasetVersioned) {
				// A first worker trains and writes the artifacts, then dies
				// before recording its runs.
				other, err := train.New(train.Config{Deps: e.Deps(t)})
				require.NoError(t, err)
				e.Docs.InsertFn = func(context.Context, string, string, json.RawMessage) error { return errBoom }
				require.ErrorIs(t, other.HandleVersioned(context.Background(), ev), errBoom)
				e.Docs.InsertFn = nil
				e.Publisher.Take()
			},
			want: want{runs: 2, trained: 2}},
		{name: "a store error is retried, not permanent",
			setup: func(t *testing.T, e *workertest.Env, _ *train.Worker, _ *events.DatasetVersioned) {
				e.Docs.InsertFn = func(context.Context, string, string, json.RawMessage) error { return errBoom }
			},
			want: want{err: errBoom}},
		{name: "an artifact write error is retried",
			setup: func(t *testing.T, e *workertest.Env, _ *train.Worker, _ *events.DatasetVersioned) {
				e.Bucket.WriteFn = func(ctx context.Context, name string, mode blob.Mode, fill func(io.Writer) error) (blob.Object, error) {
					if strings.HasPrefix(name, "models/") {
						return blob.Object{}, errBoom
					}
					return e.Local.Write(ctx, name, mode, fill)
				}
			},
			want: want{err: errBoom}},
		{name: "a version with no rows fails permanently and records each spec's failure",
			setup: func(t *testing.T, e *workertest.Env, _ *train.Worker, ev *events.DatasetVersioned) {
				v, err := e.Registry.Version(context.Background(), "housing", ev.Version)
				require.NoError(t, err)
				v.Number, v.Hash, v.Blobs = 2, "empty", nil
				require.NoError(t, e.Registry.AddVersion(context.Background(), v))
			},
			event: func(ev *events.DatasetVersioned) *events.DatasetVersioned {
				c := *ev
				c.Version = 2
				return &c
			},
			want: want{permanent: true, failed: 2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := workertest.New(t, 150)
			ev := cut(t, e)
			w, err := train.New(train.Config{Deps: e.Deps(t), CodeVersion: "test"})
			require.NoError(t, err)
			if tt.setup != nil {
				tt.setup(t, e, w, ev)
			}
			if tt.event != nil {
				ev = tt.event(ev)
			}
			err = w.HandleVersioned(context.Background(), ev)
			switch {
			case tt.want.permanent:
				require.True(t, bus.IsPermanent(err), "%v", err)
			case tt.want.err != nil:
				require.ErrorIs(t, err, tt.want.err)
				require.False(t, bus.IsPermanent(err), "%v", err)
			default:
				require.NoError(t, err)
			}
			e.Docs.InsertFn, e.Bucket.OpenFn, e.Bucket.WriteFn = nil, nil, nil
			ctx := context.Background()
			runs, err := e.Registry.Runs(ctx, "housing")
			require.NoError(t, err)
			require.Len(t, runs, tt.want.runs)
			for _, r := range runs {
				require.Equal(t, registry.RunID(r.SpecHash, r.VersionHash), r.ID)
				_, err := e.Local.Stat(ctx, r.Artifact)
				require.NoError(t, err, "the run's artifact exists")
				require.False(t, r.CreatedAt.IsZero())
			}
			var trained int
			for _, p := range e.Publisher.Events() {
				mt := p.(*events.ModelTrained)
				require.True(t, slices.ContainsFunc(runs, func(r registry.Run) bool { return r.ID == mt.RunID }), mt.RunID)
				trained++
			}
			require.Equal(t, tt.want.trained, trained)
			failed, err := e.Local.List(ctx, "failed/housing/")
			require.NoError(t, err)
			require.Len(t, failed, tt.want.failed)
		})
	}
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	_, err := train.New(train.Config{Deps: workers.Deps{}})
	require.EqualError(t, err, "train: workers: Deps.Datasets is nil")
}
