package preprocess_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/workers/preprocess"
	"github.com/refit-ml/refit/workers/workertest"
)

// settableClock stands still until the test moves it.
type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *settableClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestRejectedUploadsExpire: the reconcile pass deletes an upload rejected
// whole once its rejection is older than IncomingRetention, by the
// worker's clock, and nothing else: not an upload with staged rows, not one
// recorded only now, not a newer generation under the same name; the
// ledger and the quarantine reports stay as they were.
func TestRejectedUploadsExpire(t *testing.T) {
	const week = 7 * 24 * time.Hour
	good := houses(t, 1, 20)
	header, _, _ := bytes.Cut(good, []byte("\n"))
	headerOnly := append(append([]byte{}, header...), '\n')
	mixed := append(append([]byte{}, houses(t, 2, 10)...), "not,a,row\n"...)
	badHeader := []byte("nonsense,columns\n1,2\n")

	for _, tt := range []struct {
		name      string
		retention time.Duration
		advance   time.Duration
		// before runs after the clock moved, before the reconcile pass.
		before func(t *testing.T, e *workertest.Env)
		want   []string // what incoming/housing/ holds after the pass
		ledger int      // entries after the pass
	}{
		{name: "younger than the retention, everything stays", retention: week, advance: week - time.Second,
			want: []string{"bad-header.csv", "good.csv", "header-only.csv", "late.csv", "mixed.csv"}, ledger: 5},
		{name: "past the retention, the uploads rejected whole go", retention: week, advance: week,
			want: []string{"good.csv", "late.csv", "mixed.csv"}, ledger: 5},
		{name: "a retention of 0 keeps every upload", retention: 0, advance: 365 * 24 * time.Hour,
			want: []string{"bad-header.csv", "good.csv", "header-only.csv", "late.csv", "mixed.csv"}, ledger: 5},
		{name: "a newer upload under a rejected one's name stays", retention: week, advance: 8 * 24 * time.Hour,
			before: func(t *testing.T, e *workertest.Env) { e.Put(t, "bad-header.csv", houses(t, 3, 5)) },
			want:   []string{"bad-header.csv", "good.csv", "late.csv", "mixed.csv"}, ledger: 6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := workertest.New(t, 150)
			clock := &settableClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
			deps := e.Deps(t)
			deps.Bucket, deps.Clock = e.Local, clock // the real folder can delete a generation
			w, err := preprocess.New(preprocess.Config{Deps: deps, IncomingRetention: tt.retention})
			require.NoError(t, err)

			for name, content := range map[string][]byte{"good.csv": good, "mixed.csv": mixed,
				"bad-header.csv": badHeader, "header-only.csv": headerOnly} {
				require.NoError(t, w.HandleObject(ctx, e.Put(t, name, content)))
			}
			e.Put(t, "late.csv", badHeader) // rejected too, but recorded only by the pass below
			before, err := e.Registry.Ingests(ctx, "housing")
			require.NoError(t, err)
			require.Len(t, before, 4)

			clock.advance(tt.advance)
			if tt.before != nil {
				tt.before(t, e)
			}
			require.NoError(t, w.Reconcile(ctx))
			require.NoError(t, w.Reconcile(ctx), "a second pass finds nothing more to do")

			require.Equal(t, tt.want, incoming(t, e.Local))
			after, err := e.Registry.Ingests(ctx, "housing")
			require.NoError(t, err)
			for _, in := range before {
				require.Contains(t, after, in, "the ledger keeps every entry as it was")
				if in.Quarantine != "" {
					_, err := e.Local.Stat(ctx, in.Quarantine)
					require.NoError(t, err, "the quarantine report of %s stays", in.Source.Object)
				}
			}
			require.Len(t, after, tt.ledger, "the pass records late.csv (and a newer upload); nothing else")
		})
	}
}

// TestReuploadAfterExpiry: the same bytes uploaded again under a deleted
// rejected upload's name are answered from the ledger (same generation,
// same rejection, nothing staged twice); new bytes are a new ingest.
func TestReuploadAfterExpiry(t *testing.T) {
	ctx := context.Background()
	e := workertest.New(t, 150)
	clock := &settableClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	deps := e.Deps(t)
	deps.Bucket, deps.Clock = e.Local, clock
	w, err := preprocess.New(preprocess.Config{Deps: deps, IncomingRetention: time.Hour})
	require.NoError(t, err)

	bad := []byte("nonsense,columns\n1,2\n")
	first := e.Put(t, "a.csv", bad)
	require.NoError(t, w.HandleObject(ctx, first))
	clock.advance(time.Hour)
	require.NoError(t, w.Reconcile(ctx))
	require.Empty(t, incoming(t, e.Local))
	e.Publisher.Take()

	again := e.Put(t, "a.csv", bad)
	require.Equal(t, first.Generation, again.Generation)
	require.NoError(t, w.HandleObject(ctx, again))
	ingests, err := e.Registry.Ingests(ctx, "housing")
	require.NoError(t, err)
	require.Len(t, ingests, 1, "the same bytes are the same ingest")
	published := e.Publisher.Take()
	require.Len(t, published, 1, "its outcome is announced again")
	require.Equal(t, ingests[0].ID, published[0].(*events.RowsStaged).IngestID)
	require.Zero(t, published[0].(*events.RowsStaged).Accepted)

	fixed := e.Put(t, "a.csv", houses(t, 1, 20))
	require.NoError(t, w.HandleObject(ctx, fixed))
	ingests, err = e.Registry.Ingests(ctx, "housing")
	require.NoError(t, err)
	require.Len(t, ingests, 2)
	clock.advance(30 * 24 * time.Hour)
	require.NoError(t, w.Reconcile(ctx))
	require.Equal(t, []string{"a.csv"}, incoming(t, e.Local), "an accepted upload is never deleted")
}

func TestRetentionNeedsABucketThatDeletes(t *testing.T) {
	e := workertest.New(t, 150)
	// workertest.Bucket hides the folder's DeleteGeneration.
	_, err := preprocess.New(preprocess.Config{Deps: e.Deps(t), IncomingRetention: time.Hour})
	require.ErrorContains(t, err, "IncomingRetention")
	_, err = preprocess.New(preprocess.Config{Deps: e.Deps(t), IncomingRetention: -time.Hour})
	require.ErrorContains(t, err, "negative")
}

func incoming(t *testing.T, b blob.Bucket) []string {
	t.Helper()
	objs, err := b.List(context.Background(), events.IncomingPrefix+"housing/")
	require.NoError(t, err)
	names := []string{}
	for _, o := range objs {
		names = append(names, o.Name[len(events.IncomingPrefix+"housing/"):])
	}
	return names
}
