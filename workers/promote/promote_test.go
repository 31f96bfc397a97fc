package promote_test

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
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/store"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/workers"
	"github.com/refit-ml/refit/workers/preprocess"
	"github.com/refit-ml/refit/workers/promote"
	"github.com/refit-ml/refit/workers/train"
	"github.com/refit-ml/refit/workers/version"
	"github.com/refit-ml/refit/workers/workertest"
)

var errBoom = errors.New("boom")

// trained runs preprocess, version and train on 300 generated rows and
// returns the model.trained events of version 1, in the order published.
func trained(t *testing.T, e *workertest.Env) []*events.ModelTrained {
	t.Helper()
	ctx := context.Background()
	pre, err := preprocess.New(preprocess.Config{Deps: e.Deps(t)})
	require.NoError(t, err)
	ver, err := version.New(e.Deps(t))
	require.NoError(t, err)
	tr, err := train.New(train.Config{Deps: e.Deps(t)})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, synth.Housing{Seed: 1}.Write(&buf, 300))
	require.NoError(t, pre.HandleObject(ctx, e.Put(t, "a.csv", buf.Bytes())))
	var out []*events.ModelTrained
	for evs := e.Publisher.Take(); len(evs) > 0; evs = e.Publisher.Take() {
		for _, ev := range evs {
			switch ev := ev.(type) {
			case *events.RowsStaged:
				require.NoError(t, ver.HandleRowsStaged(ctx, ev))
			case *events.DatasetVersioned:
				require.NoError(t, tr.HandleVersioned(ctx, ev))
			case *events.ModelTrained:
				out = append(out, ev)
			}
		}
	}
	require.Len(t, out, 2)
	return out
}

func TestHandleTrained(t *testing.T) {
	type want struct {
		permanent  bool
		err        error
		decisions  int
		champion   string // spec
		promotions int
		announced  int // model.promoted events
	}
	onlyRuns := func(e *workertest.Env, hide string) func(ctx context.Context, col, prefix string) ([]store.Doc, error) {
		return func(ctx context.Context, col, prefix string) ([]store.Doc, error) {
			docs, err := e.Docs.Docs.List(ctx, col, prefix)
			if col != "runs" {
				return docs, err
			}
			var out []store.Doc
			for _, d := range docs {
				if !strings.Contains(string(d.Body), `"spec":"`+hide+`"`) {
					out = append(out, d)
				}
			}
			return out, err
		}
	}
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, e *workertest.Env, w *promote.Worker, evs []*events.ModelTrained)
		event func(evs []*events.ModelTrained) *events.ModelTrained
		want  want
	}{
		{name: "the version's specs are decided together, the better first",
			want: want{decisions: 2, champion: "linear-onehot", promotions: 1, announced: 1}},
		{name: "whichever run's event comes first",
			event: func(evs []*events.ModelTrained) *events.ModelTrained { return evs[1] },
			want:  want{decisions: 2, champion: "linear-onehot", promotions: 1, announced: 1}},
		{name: "a version waits for each of its specs",
			setup: func(t *testing.T, e *workertest.Env, _ *promote.Worker, _ []*events.ModelTrained) {
				e.Docs.ListFn = onlyRuns(e, "linear-hashed")
			},
			event: func(evs []*events.ModelTrained) *events.ModelTrained { return evs[0] },
			want:  want{}},
		{name: "a duplicate event re-announces the champion only",
			setup: func(t *testing.T, e *workertest.Env, w *promote.Worker, evs []*events.ModelTrained) {
				require.NoError(t, w.HandleTrained(context.Background(), evs[0]))
				e.Publisher.Take()
			},
			want: want{decisions: 2, champion: "linear-onehot", promotions: 1, announced: 1}},
		{name: "an unknown dataset is permanent",
			event: func(evs []*events.ModelTrained) *events.ModelTrained {
				c := *evs[0]
				c.Dataset = "flats"
				return &c
			},
			want: want{permanent: true}},
		{name: "a run missing from the store is permanent",
			event: func(evs []*events.ModelTrained) *events.ModelTrained {
				c := *evs[0]
				c.RunID = "nope"
				return &c
			},
			want: want{permanent: true}},
		{name: "losing the race for the sequence number finds the racer's promotion of the run",
			setup: func(t *testing.T, e *workertest.Env, _ *promote.Worker, _ []*events.ModelTrained) {
				// A racing replica promotes the same run first.
				e.Docs.InsertFn = racerFirst(t, e, "promotions", nil)
			},
			want: want{decisions: 2, champion: "linear-onehot", promotions: 1, announced: 1}},
		{name: "losing the race to record a decision is the winner's",
			setup: func(t *testing.T, e *workertest.Env, _ *promote.Worker, _ []*events.ModelTrained) {
				e.Docs.InsertFn = func(ctx context.Context, col, key string, body json.RawMessage) error {
					require.NoError(t, e.Docs.Docs.Insert(ctx, col, key, body))
					if col == "decisions" {
						return store.ErrDuplicate // the racer also announced it
					}
					return nil
				}
			},
			want: want{decisions: 2, champion: "linear-onehot", promotions: 1}},
		{name: "a concurrent promoter's verdict is carried out, not this one's",
			setup: func(t *testing.T, e *workertest.Env, _ *promote.Worker, _ []*events.ModelTrained) {
				// A replica that scored the better run against another
				// champion recorded a rejection first.
				e.Docs.InsertFn = racerFirst(t, e, "decision_intents", func(dec map[string]any) {
					dec["promoted"], dec["status"], dec["reason"] = false, "rejected", "the racer's verdict"
				})
			},
			want: want{decisions: 2, champion: "linear-hashed", promotions: 1, announced: 1}},
		{name: "a promotion appended before a crash is not appended again",
			setup: func(t *testing.T, e *workertest.Env, w *promote.Worker, evs []*events.ModelTrained) {
				e.Docs.InsertFn = func(ctx context.Context, col, key string, body json.RawMessage) error {
					if col == "decisions" {
						return errBoom // the process dies before recording its decision
					}
					return e.Docs.Docs.Insert(ctx, col, key, body)
				}
				require.ErrorIs(t, w.HandleTrained(context.Background(), evs[0]), errBoom)
				proms, err := e.Registry.Promotions(context.Background(), "housing")
				require.NoError(t, err)
				require.Len(t, proms, 1)
				e.Docs.InsertFn = nil
			},
			want: want{decisions: 2, champion: "linear-onehot", promotions: 1, announced: 1}},
		{name: "an artifact that does not match its checksum is permanent",
			setup: func(t *testing.T, e *workertest.Env, _ *promote.Worker, _ []*events.ModelTrained) {
				e.Bucket.OpenFn = func(ctx context.Context, name string) (io.ReadCloser, error) {
					if strings.HasPrefix(name, "models/") {
						return io.NopCloser(strings.NewReader(`{"not":"the model"}`)), nil
					}
					return e.Local.Open(ctx, name)
				}
			},
			want: want{permanent: true}},
		{name: "a store error is retried",
			setup: func(t *testing.T, e *workertest.Env, _ *promote.Worker, _ []*events.ModelTrained) {
				e.Docs.InsertFn = func(context.Context, string, string, json.RawMessage) error { return errBoom }
			},
			want: want{err: errBoom}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := workertest.New(t, 150)
			evs := trained(t, e)
			w, err := promote.New(e.Deps(t))
			require.NoError(t, err)
			if tt.setup != nil {
				tt.setup(t, e, w, evs)
			}
			ev := evs[0]
			if tt.event != nil {
				ev = tt.event(evs)
			}
			err = w.HandleTrained(context.Background(), ev)
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
			ctx := context.Background()
			decisions, err := e.Registry.Decisions(ctx, "housing")
			require.NoError(t, err)
			require.Len(t, decisions, tt.want.decisions)
			proms, err := e.Registry.Promotions(ctx, "housing")
			require.NoError(t, err)
			require.Len(t, proms, tt.want.promotions)
			if tt.want.champion != "" {
				require.Equal(t, tt.want.champion, proms[len(proms)-1].Spec)
				require.Contains(t, proms[0].Reason, "first model")
			}
			var announced int
			for _, p := range e.Publisher.Events() {
				mp := p.(*events.ModelPromoted)
				require.Equal(t, proms[len(proms)-1].Sequence, mp.Sequence)
				announced++
			}
			require.Equal(t, tt.want.announced, announced)
		})
	}
}

// racerFirst is an insert function under which a racing replica inserts
// the first document of col (changed by edit, when given) just before this
// worker, which then gets ErrDuplicate.
func racerFirst(t *testing.T, e *workertest.Env, col string, edit func(map[string]any)) func(context.Context, string, string, json.RawMessage) error {
	raced := false
	return func(ctx context.Context, c, key string, body json.RawMessage) error {
		if c != col || raced {
			return e.Docs.Docs.Insert(ctx, c, key, body)
		}
		raced = true
		if edit != nil {
			var doc map[string]any
			require.NoError(t, json.Unmarshal(body, &doc))
			edit(doc)
			var err error
			body, err = json.Marshal(doc)
			require.NoError(t, err)
		}
		require.NoError(t, e.Docs.Docs.Insert(ctx, c, key, body))
		return store.ErrDuplicate
	}
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	_, err := promote.New(workers.Deps{})
	require.EqualError(t, err, "promote: workers: Deps.Datasets is nil")
}
