package preprocess_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"github.com/refit-ml/refit/workers/workertest"
)

func houses(t *testing.T, seed int64, rows int) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, synth.Housing{Seed: seed}.Write(&buf, rows))
	return buf.Bytes()
}

var errBoom = errors.New("boom")

func TestHandleObject(t *testing.T) {
	type result struct {
		permanent bool
		err       error  // errors.Is target, when not permanent
		ingest    string // "" no ledger entry; else "accepted/rejected reason"
		published int    // rows.staged events
	}
	for _, tt := range []struct {
		name  string
		event func(e *workertest.Env) *events.ObjectFinalized
		setup func(t *testing.T, e *workertest.Env, w *preprocess.Worker, ev *events.ObjectFinalized)
		want  result
	}{
		{name: "an upload is staged",
			event: func(e *workertest.Env) *events.ObjectFinalized { return e.Put(t, "a.csv", houses(t, 1, 20)) },
			want:  result{ingest: "20/0 ", published: 1}},
		{name: "a delete is ignored",
			event: func(e *workertest.Env) *events.ObjectFinalized {
				ev := e.Put(t, "a.csv", houses(t, 1, 20))
				ev.EventType = "OBJECT_DELETE"
				return ev
			},
			want: result{}},
		{name: "an object outside incoming/ is ignored",
			event: func(e *workertest.Env) *events.ObjectFinalized {
				return events.NewObjectFinalized("test-bucket", "models/housing/x.json", 1, 1, e.Clock.Now())
			},
			want: result{}},
		{name: "an unknown dataset is permanent",
			event: func(e *workertest.Env) *events.ObjectFinalized {
				return events.NewObjectFinalized("test-bucket", "incoming/flats/a.csv", 1, 1, e.Clock.Now())
			},
			want: result{permanent: true}},
		{name: "a duplicate event re-announces and reads nothing",
			event: func(e *workertest.Env) *events.ObjectFinalized { return e.Put(t, "a.csv", houses(t, 1, 20)) },
			setup: func(t *testing.T, e *workertest.Env, w *preprocess.Worker, ev *events.ObjectFinalized) {
				require.NoError(t, w.HandleObject(context.Background(), ev))
				e.Publisher.Take()
				e.Bucket.OpenFn = func(context.Context, string) (io.ReadCloser, error) { return nil, errors.New("read twice") }
			},
			want: result{ingest: "20/0 ", published: 1}},
		{name: "an object gone before ingest is dropped",
			event: func(e *workertest.Env) *events.ObjectFinalized { return e.Put(t, "a.csv", houses(t, 1, 20)) },
			setup: func(t *testing.T, e *workertest.Env, _ *preprocess.Worker, _ *events.ObjectFinalized) {
				e.Bucket.StatFn = func(context.Context, string) (blob.Object, error) { return blob.Object{}, blob.ErrNotExist }
			},
			want: result{}},
		{name: "an overwritten generation is left to its own event",
			event: func(e *workertest.Env) *events.ObjectFinalized {
				ev := e.Put(t, "a.csv", houses(t, 1, 20))
				e.Put(t, "a.csv", houses(t, 2, 20))
				return ev
			},
			want: result{}},
		{name: "a bucket error is retried",
			event: func(e *workertest.Env) *events.ObjectFinalized { return e.Put(t, "a.csv", houses(t, 1, 20)) },
			setup: func(t *testing.T, e *workertest.Env, _ *preprocess.Worker, _ *events.ObjectFinalized) {
				e.Bucket.StatFn = func(context.Context, string) (blob.Object, error) { return blob.Object{}, errBoom }
			},
			want: result{err: errBoom}},
		{name: "a file without a usable header is rejected whole",
			event: func(e *workertest.Env) *events.ObjectFinalized {
				return e.Put(t, "a.csv", []byte("nonsense,columns\n1,2\n"))
			},
			want: result{ingest: "0/1 missing", published: 1}},
		{name: "a header-only file is rejected with its reason",
			event: func(e *workertest.Env) *events.ObjectFinalized {
				header, _, _ := bytes.Cut(houses(t, 1, 1), []byte("\n"))
				return e.Put(t, "a.csv", append(header, '\n'))
			},
			want: result{ingest: "0/0 the file holds only a header line and no rows", published: 1}},
		{name: "a failed chunk write records nothing",
			event: func(e *workertest.Env) *events.ObjectFinalized { return e.Put(t, "a.csv", houses(t, 1, 20)) },
			setup: func(t *testing.T, e *workertest.Env, _ *preprocess.Worker, _ *events.ObjectFinalized) {
				e.Bucket.WriteFn = func(context.Context, string, blob.Mode, func(io.Writer) error) (blob.Object, error) {
					return blob.Object{}, errBoom
				}
			},
			want: result{err: errBoom}},
		{name: "losing the race to the ledger announces the winner's entry",
			event: func(e *workertest.Env) *events.ObjectFinalized { return e.Put(t, "a.csv", houses(t, 1, 20)) },
			setup: func(t *testing.T, e *workertest.Env, _ *preprocess.Worker, _ *events.ObjectFinalized) {
				e.Docs.InsertFn = func(ctx context.Context, col, key string, body json.RawMessage) error {
					// Another worker commits the same entry first.
					require.NoError(t, e.Docs.Docs.Insert(ctx, col, key, body))
					return store.ErrDuplicate
				}
			},
			want: result{ingest: "20/0 ", published: 1}},
		{name: "a ledger error is retried",
			event: func(e *workertest.Env) *events.ObjectFinalized { return e.Put(t, "a.csv", houses(t, 1, 20)) },
			setup: func(t *testing.T, e *workertest.Env, _ *preprocess.Worker, _ *events.ObjectFinalized) {
				e.Docs.InsertFn = func(context.Context, string, string, json.RawMessage) error { return errBoom }
			},
			want: result{err: errBoom}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := workertest.New(t, 150)
			w, err := preprocess.New(preprocess.Config{Deps: e.Deps(t)})
			require.NoError(t, err)
			ev := tt.event(e)
			if tt.setup != nil {
				tt.setup(t, e, w, ev)
			}
			err = w.HandleObject(context.Background(), ev)
			switch {
			case tt.want.permanent:
				require.True(t, bus.IsPermanent(err), "%v", err)
			case tt.want.err != nil:
				require.ErrorIs(t, err, tt.want.err)
				require.False(t, bus.IsPermanent(err), "%v", err)
			default:
				require.NoError(t, err)
			}
			e.Docs.InsertFn, e.Bucket.OpenFn, e.Bucket.StatFn = nil, nil, nil
			ingests, err := e.Registry.Ingests(context.Background(), "housing")
			require.NoError(t, err)
			if tt.want.ingest == "" {
				require.Empty(t, ingests)
			} else {
				require.Len(t, ingests, 1)
				in := ingests[0]
				require.Contains(t, ledger(in), tt.want.ingest)
				require.Equal(t, ev.Updated.UTC(), in.SourceTime.UTC(), "the upload time is the event's")
			}
			published := e.Publisher.Events()
			require.Len(t, published, tt.want.published)
			for _, p := range published {
				rs := p.(*events.RowsStaged)
				require.Equal(t, ingests[0].ID, rs.IngestID)
				require.Equal(t, ingests[0].Accepted, rs.Accepted)
			}
		})
	}
}

func ledger(in registry.Ingest) string {
	return fmt.Sprintf("%d/%d %s", in.Accepted, in.Rejected, in.Reason)
}

func TestHandleCorrection(t *testing.T) {
	fields := map[string]string{"bedrooms": "3", "bathrooms": "2", "sqft_living": "1800", "sqft_lot": "5000", "floors": "1",
		"waterfront": "0", "view": "0", "condition": "3", "sqft_above": "1800", "sqft_basement": "0", "yr_built": "1990",
		"yr_renovated": "0", "street": "1 Main St", "city": "Seattle", "statezip": "WA 98103", "country": "USA"}
	for _, tt := range []struct {
		name      string
		stored    *registry.Correction
		permanent bool
		ledger    string
	}{
		{name: "a correction is staged as one row",
			stored: &registry.Correction{ID: "c1", Dataset: "housing", Fields: fields, Label: "612000"}, ledger: "1/0 "},
		{name: "a bad label is quarantined with its reason",
			stored: &registry.Correction{ID: "c1", Dataset: "housing", Fields: fields, Label: "-5"}, ledger: "0/1 no valid rows"},
		{name: "a correction missing from the store is permanent", permanent: true},
		{name: "a correction of an unknown dataset is permanent",
			stored: &registry.Correction{ID: "c1", Dataset: "flats", Fields: fields, Label: "1"}, permanent: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := workertest.New(t, 150)
			w, err := preprocess.New(preprocess.Config{Deps: e.Deps(t)})
			require.NoError(t, err)
			ds := "housing"
			if tt.stored != nil {
				tt.stored.ReceivedAt = e.Clock.Now()
				require.NoError(t, e.Registry.AddCorrection(context.Background(), *tt.stored))
				ds = tt.stored.Dataset
			}
			ev := &events.CorrectionSubmitted{Meta: events.Meta{ID: "correction/c1", Dataset: ds}, CorrectionID: "c1"}
			err = w.HandleCorrection(context.Background(), ev)
			if tt.permanent {
				require.True(t, bus.IsPermanent(err), "%v", err)
				require.Empty(t, e.Publisher.Events())
				return
			}
			require.NoError(t, err)
			// Twice: the same ledger entry, announced again.
			require.NoError(t, w.HandleCorrection(context.Background(), ev))
			ingests, err := e.Registry.Ingests(context.Background(), "housing")
			require.NoError(t, err)
			require.Len(t, ingests, 1)
			require.Equal(t, tt.ledger, ledger(ingests[0]))
			require.Equal(t, "correction/c1", ingests[0].Source.Key())
			require.Len(t, e.Publisher.Events(), 2)
		})
	}
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	_, err := preprocess.New(preprocess.Config{Deps: workers.Deps{}})
	require.EqualError(t, err, "preprocess: workers: Deps.Datasets is nil")
}
