package version_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/store"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/workers/preprocess"
	"github.com/refit-ml/refit/workers/version"
	"github.com/refit-ml/refit/workers/workertest"
)

var errBoom = errors.New("boom")

// stage uploads and stages files of the given row counts; it returns the
// rows.staged events.
func stage(t *testing.T, e *workertest.Env, rows ...int) []*events.RowsStaged {
	t.Helper()
	pre, err := preprocess.New(preprocess.Config{Deps: e.Deps(t)})
	require.NoError(t, err)
	var out []*events.RowsStaged
	for i, n := range rows {
		var buf bytes.Buffer
		require.NoError(t, synth.Housing{Seed: int64(i + 1)}.Write(&buf, n))
		name := string(rune('a'+i)) + ".csv"
		require.NoError(t, pre.HandleObject(context.Background(), e.Put(t, name, buf.Bytes())))
	}
	for _, ev := range e.Publisher.Take() {
		out = append(out, ev.(*events.RowsStaged))
	}
	return out
}

func TestHandleRowsStaged(t *testing.T) {
	type want struct {
		permanent bool
		err       error
		versions  []int // rows of each version, its parent's included
		published int   // dataset.versioned events
	}
	for _, tt := range []struct {
		name  string
		rows  []int
		setup func(t *testing.T, e *workertest.Env, w *version.Worker, staged []*events.RowsStaged)
		event func(staged []*events.RowsStaged) *events.RowsStaged
		want  want
	}{
		{name: "a batch not full yet waits", rows: []int{100},
			want: want{}},
		{name: "a full batch is cut", rows: []int{100, 60},
			want: want{versions: []int{160}, published: 1}},
		{name: "two batches at once are two versions", rows: []int{150, 150},
			want: want{versions: []int{150, 300}, published: 2}},
		{name: "a source already in a version is a duplicate event", rows: []int{100, 60},
			setup: func(t *testing.T, e *workertest.Env, w *version.Worker, staged []*events.RowsStaged) {
				require.NoError(t, w.HandleRowsStaged(context.Background(), staged[1]))
				e.Publisher.Take()
				e.Docs.ListFn = func(ctx context.Context, col, prefix string) ([]store.Doc, error) {
					if col == "ingests" {
						return nil, errors.New("the ledger need not be read")
					}
					return e.Docs.Docs.List(ctx, col, prefix)
				}
			},
			want: want{versions: []int{160}}},
		{name: "an unknown dataset is permanent", rows: []int{10},
			event: func(staged []*events.RowsStaged) *events.RowsStaged {
				ev := *staged[0]
				ev.Dataset = "flats"
				return &ev
			},
			want: want{permanent: true}},
		{name: "a staged chunk missing from the bucket is retried, nothing cut", rows: []int{100, 60},
			setup: func(t *testing.T, e *workertest.Env, _ *version.Worker, _ []*events.RowsStaged) {
				e.Bucket.OpenFn = func(ctx context.Context, name string) (io.ReadCloser, error) {
					if strings.HasPrefix(name, "staged/") {
						return nil, blob.ErrNotExist
					}
					return e.Local.Open(ctx, name)
				}
			},
			want: want{err: blob.ErrNotExist}},
		{name: "losing the race for the number starts over on the winner's version", rows: []int{100, 60},
			setup: func(t *testing.T, e *workertest.Env, _ *version.Worker, _ []*events.RowsStaged) {
				e.Docs.InsertFn = func(ctx context.Context, col, key string, body json.RawMessage) error {
					if col != "versions" {
						return e.Docs.Docs.Insert(ctx, col, key, body)
					}
					// A racing worker inserts the same version first.
					require.NoError(t, e.Docs.Docs.Insert(ctx, col, key, body))
					return store.ErrDuplicate
				}
			},
			want: want{versions: []int{160}}},
		{name: "a store error is retried", rows: []int{100, 60},
			setup: func(t *testing.T, e *workertest.Env, _ *version.Worker, _ []*events.RowsStaged) {
				e.Docs.InsertFn = func(context.Context, string, string, json.RawMessage) error { return errBoom }
			},
			want: want{err: errBoom}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := workertest.New(t, 150)
			staged := stage(t, e, tt.rows...)
			w, err := version.New(e.Deps(t))
			require.NoError(t, err)
			if tt.setup != nil {
				tt.setup(t, e, w, staged)
			}
			ev := staged[len(staged)-1]
			if tt.event != nil {
				ev = tt.event(staged)
			}
			err = w.HandleRowsStaged(context.Background(), ev)
			switch {
			case tt.want.permanent:
				require.True(t, bus.IsPermanent(err), "%v", err)
			case tt.want.err != nil:
				require.ErrorIs(t, err, tt.want.err)
				require.False(t, bus.IsPermanent(err), "%v", err)
			default:
				require.NoError(t, err)
			}
			e.Docs.InsertFn, e.Docs.ListFn, e.Bucket.OpenFn = nil, nil, nil
			versions, err := e.Registry.Versions(context.Background(), "housing")
			require.NoError(t, err)
			var rows []int
			for i, v := range versions {
				require.Equal(t, i+1, v.Number)
				rows = append(rows, v.Rows)
			}
			require.Equal(t, tt.want.versions, rows)
			var published int
			for _, p := range e.Publisher.Events() {
				if _, ok := p.(*events.BlobWritten); ok {
					continue // stats_test.go
				}
				dv, ok := p.(*events.DatasetVersioned)
				require.True(t, ok, "%T", p)
				require.Equal(t, "housing", dv.Dataset)
				published++
			}
			require.Equal(t, tt.want.published, published)
		})
	}
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	e := workertest.New(t, 150)
	d := e.Deps(t)
	d.Bucket = nil
	_, err := version.New(d)
	require.EqualError(t, err, "version: workers: Deps.Bucket is nil")
}
