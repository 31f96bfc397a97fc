package promote_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/workers/preprocess"
	"github.com/refit-ml/refit/workers/promote"
	"github.com/refit-ml/refit/workers/train"
	"github.com/refit-ml/refit/workers/version"
	"github.com/refit-ml/refit/workers/workertest"
)

// steps runs preprocess, version and train by hand, so a test chooses when
// each version is trained.
type steps struct {
	pre *preprocess.Worker
	ver *version.Worker
	tr  *train.Worker
	e   *workertest.Env
}

func newSteps(t *testing.T, e *workertest.Env) *steps {
	pre, err := preprocess.New(preprocess.Config{Deps: e.Deps(t)})
	require.NoError(t, err)
	ver, err := version.New(e.Deps(t))
	require.NoError(t, err)
	tr, err := train.New(train.Config{Deps: e.Deps(t)})
	require.NoError(t, err)
	return &steps{pre, ver, tr, e}
}

// upload stages and versions 300 generated rows; it returns the
// dataset.versioned events, not yet trained.
func (s *steps) upload(t *testing.T, seed int64) []*events.DatasetVersioned {
	t.Helper()
	ctx := context.Background()
	var buf bytes.Buffer
	require.NoError(t, synth.Housing{Seed: seed}.Write(&buf, 300))
	require.NoError(t, s.pre.HandleObject(ctx, s.e.Put(t, fmt.Sprintf("upload-%d.csv", seed), buf.Bytes())))
	var out []*events.DatasetVersioned
	for evs := s.e.Publisher.Take(); len(evs) > 0; evs = s.e.Publisher.Take() {
		for _, ev := range evs {
			switch ev := ev.(type) {
			case *events.RowsStaged:
				require.NoError(t, s.ver.HandleRowsStaged(ctx, ev))
			case *events.DatasetVersioned:
				out = append(out, ev)
			}
		}
	}
	return out
}

// train trains the versions and returns their model.trained events.
func (s *steps) train(t *testing.T, versioned []*events.DatasetVersioned) []*events.ModelTrained {
	t.Helper()
	var out []*events.ModelTrained
	for _, ev := range versioned {
		require.NoError(t, s.tr.HandleVersioned(context.Background(), ev))
	}
	for _, ev := range s.e.Publisher.Take() {
		if ev, ok := ev.(*events.ModelTrained); ok {
			out = append(out, ev)
		}
	}
	return out
}

type decided struct {
	Run, Status, Champion string
	Sequence              int64
}

func history(t *testing.T, e *workertest.Env) []decided {
	t.Helper()
	decs, err := e.Registry.Decisions(context.Background(), "housing")
	require.NoError(t, err)
	out := make([]decided, len(decs))
	for i, d := range decs {
		out[i] = decided{d.RunID, string(d.Status), d.ChampionRunID, d.Sequence}
	}
	return out
}

// A version whose training finishes after the next one's (its trainer was
// killed) is still decided before it: the history is the one of training
// in order, whatever order the events come in.
func TestVersionsAreDecidedInOrder(t *testing.T) {
	ctx := context.Background()
	deliver := func(t *testing.T, w *promote.Worker, evs []*events.ModelTrained) {
		t.Helper()
		for _, ev := range evs {
			require.NoError(t, w.HandleTrained(ctx, ev))
		}
	}

	inOrder := workertest.New(t, 300)
	s := newSteps(t, inOrder)
	w, err := promote.New(inOrder.Deps(t))
	require.NoError(t, err)
	for seed := range int64(3) {
		deliver(t, w, s.train(t, s.upload(t, seed+1)))
	}
	want := history(t, inOrder)
	require.Len(t, want, 6)

	late := workertest.New(t, 300)
	s = newSteps(t, late)
	w, err = promote.New(late.Deps(t))
	require.NoError(t, err)
	deliver(t, w, s.train(t, s.upload(t, 1)))
	v2 := s.upload(t, 2) // its trainer is killed
	deliver(t, w, s.train(t, s.upload(t, 3)))
	require.Len(t, history(t, late), 2, "version 3 waits for version 2")
	trained2 := s.train(t, v2)
	require.Len(t, trained2, 2, "one run per spec")
	deliver(t, w, trained2[:1])
	require.Equal(t, want, history(t, late), "version 2, then the waiting version 3")

	// Reconcile finds the same order when every event was lost.
	lost := workertest.New(t, 300)
	s = newSteps(t, lost)
	for seed := range int64(3) {
		s.train(t, s.upload(t, seed+1))
	}
	w, err = promote.New(lost.Deps(t))
	require.NoError(t, err)
	require.NoError(t, w.Reconcile(ctx))
	require.Equal(t, want, history(t, lost))
}
