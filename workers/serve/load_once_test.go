package serve_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/workers/serve"
)

// slowOpener counts the artifact reads in flight and holds each until
// release is closed: a large artifact decoding.
type slowOpener struct {
	dataset.Opener
	release           chan struct{}
	inFlight, maxSeen atomic.Int32
	opens             atomic.Int32
}

func (o *slowOpener) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if strings.HasPrefix(name, "models/") {
		o.opens.Add(1)
		n := o.inFlight.Add(1)
		for {
			m := o.maxSeen.Load()
			if n <= m || o.maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		<-o.release
		defer o.inFlight.Add(-1)
	}
	return o.Opener.Open(ctx, name)
}

// Events that arrive while a model loads (promote re-announces each
// champion every reconcile pass) wait for that load and find the model
// served: the artifact is read once, not once per event.
func TestEventsDuringASlowLoadReadTheArtifactOnce(t *testing.T) {
	f := newFixture(t)
	f.promote(t, "housing", 200, 1, false)
	o := &slowOpener{Opener: f.bucket, release: make(chan struct{})}
	m := serve.NewModels(f.catalog, o, f.reg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			errs <- m.HandlePromoted(context.Background(), &events.ModelPromoted{Meta: events.Meta{ID: "1", Dataset: "housing"}, Sequence: 1})
		})
	}
	require.Eventually(t, func() bool { return o.inFlight.Load() == 1 }, 10*time.Second, time.Millisecond, "one load starts")
	close(o.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, int32(1), o.maxSeen.Load(), "never two loads of a dataset at once")
	require.Equal(t, int32(1), o.opens.Load(), "the events that waited found the model served")
	require.Equal(t, int64(1), m.Current("housing").Promotion.Sequence)
}

// A load waiting for another gives up with its context.
func TestAWaitingLoadEndsWithItsContext(t *testing.T) {
	f := newFixture(t)
	f.promote(t, "housing", 200, 1, false)
	o := &slowOpener{Opener: f.bucket, release: make(chan struct{})}
	m := serve.NewModels(f.catalog, o, f.reg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	done := make(chan error, 1)
	go func() {
		done <- m.HandlePromoted(context.Background(), &events.ModelPromoted{Meta: events.Meta{ID: "1", Dataset: "housing"}, Sequence: 1})
	}()
	require.Eventually(t, func() bool { return o.inFlight.Load() == 1 }, 10*time.Second, time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, m.HandlePromoted(ctx, &events.ModelPromoted{Meta: events.Meta{ID: "1", Dataset: "housing"}, Sequence: 1}), context.Canceled)
	close(o.release)
	require.NoError(t, <-done)
}
