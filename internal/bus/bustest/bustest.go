// Package bustest is the conformance suite every bus.Bus passes: delivery,
// retry, dead letters with their reason, fan-out across consumer groups.
package bustest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/bus"
)

// Features says what a bus can do beyond the basics.
type Features struct {
	// SharedGroups: two subscribers in one group split the messages.
	SharedGroups bool
	// Prepare runs before a test subscribes (e.g. creates topics on a
	// real Pub/Sub, where publishing to a missing topic fails).
	Prepare func(t *testing.T, b bus.Bus, topics ...string)
}

// Run runs the suite. newBus must return a fresh, isolated bus.
func Run(t *testing.T, newBus func(t *testing.T) bus.Bus, f Features) {
	t.Run("DeliversTypedEvents", func(t *testing.T) { testDelivers(t, newBus(t), f) })
	t.Run("RetriesThenSucceeds", func(t *testing.T) { testRetries(t, newBus(t), f) })
	t.Run("DeadLettersPermanentAtOnce", func(t *testing.T) { testPermanent(t, newBus(t), f) })
	t.Run("DeadLettersPanics", func(t *testing.T) { testPanic(t, newBus(t), f) })
	t.Run("FanOutAcrossGroups", func(t *testing.T) { testFanOut(t, newBus(t), f) })
	if f.SharedGroups {
		t.Run("GroupMembersShare", func(t *testing.T) { testShared(t, newBus(t), f) })
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type harness struct {
	t      *testing.T
	b      bus.Bus
	router *message.Router
	pub    *bus.EventPublisher
}

func start(t *testing.T, b bus.Bus, f Features, setup func(h *harness)) *harness {
	t.Helper()
	if f.Prepare != nil {
		f.Prepare(t, b, events.TopicRowsStaged, events.TopicDeadLetter)
	}
	r, err := bus.NewRouter(bus.RouterConfig{Retries: 3, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, CloseTimeout: 5 * time.Second},
		b, bus.NewMetrics(prometheus.NewRegistry()), quiet())
	require.NoError(t, err)
	h := &harness{t: t, b: b, router: r, pub: bus.NewEventPublisher(b, "refit/test")}
	setup(h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		_ = b.Close()
	})
	select {
	case <-r.Running():
	case <-time.After(30 * time.Second):
		t.Fatal("router did not start")
	}
	return h
}

func (h *harness) handle(name, group string, fn func(ctx context.Context, e *events.RowsStaged) error) {
	sub, err := h.b.Subscriber(group)
	require.NoError(h.t, err)
	h.router.AddConsumerHandler(name, h.b.Topic(events.TopicRowsStaged), sub, bus.Handle(fn))
}

// deadLetters collects what reaches the dead-letter topic.
func (h *harness) deadLetters() <-chan *message.Message {
	out := make(chan *message.Message, 16)
	sub, err := h.b.Subscriber("dead-letter-test")
	require.NoError(h.t, err)
	h.router.AddConsumerHandler("dead-letter-test", h.b.Topic(events.TopicDeadLetter), sub, func(msg *message.Message) error {
		out <- msg
		return nil
	})
	return out
}

func staged(id string) *events.RowsStaged {
	return &events.RowsStaged{Meta: events.Meta{ID: id, Dataset: "housing", Time: time.Now(), CorrelationID: "corr-" + id},
		IngestID: "0123456789abcdef", Source: "correction/" + id, Accepted: 1}
}

func wait[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatal("timed out waiting for a message")
		var zero T
		return zero
	}
}

func testDelivers(t *testing.T, b bus.Bus, f Features) {
	got := make(chan *events.RowsStaged, 8)
	h := start(t, b, f, func(h *harness) {
		h.handle("deliver", "g1", func(ctx context.Context, e *events.RowsStaged) error {
			got <- e
			return nil
		})
	})
	for i := range 3 {
		require.NoError(t, h.pub.Publish(context.Background(), staged(fmt.Sprint("e", i))))
	}
	seen := map[string]bool{}
	for range 3 {
		e := wait(t, got)
		require.Equal(t, "housing", e.Dataset)
		require.Equal(t, 1, e.Accepted)
		require.Equal(t, "corr-"+e.ID, e.CorrelationID)
		seen[e.ID] = true
	}
	require.Len(t, seen, 3)
}

func testRetries(t *testing.T, b bus.Bus, f Features) {
	var attempts atomic.Int32
	done := make(chan struct{}, 1)
	var dl <-chan *message.Message
	h := start(t, b, f, func(h *harness) {
		dl = h.deadLetters()
		h.handle("flaky", "g1", func(ctx context.Context, e *events.RowsStaged) error {
			if attempts.Add(1) < 3 {
				return errors.New("transient")
			}
			done <- struct{}{}
			return nil
		})
	})
	require.NoError(t, h.pub.Publish(context.Background(), staged("flaky")))
	wait(t, done)
	require.Equal(t, int32(3), attempts.Load())
	select {
	case m := <-dl:
		t.Fatalf("a message that succeeded on retry was dead-lettered: %s", m.Metadata.Get(middleware.ReasonForPoisonedKey))
	case <-time.After(200 * time.Millisecond):
	}
}

func testPermanent(t *testing.T, b bus.Bus, f Features) {
	var attempts atomic.Int32
	var dl <-chan *message.Message
	h := start(t, b, f, func(h *harness) {
		dl = h.deadLetters()
		h.handle("broken", "g1", func(ctx context.Context, e *events.RowsStaged) error {
			attempts.Add(1)
			return bus.Permanent(errors.New("row 3: bad header"))
		})
	})
	require.NoError(t, h.pub.Publish(context.Background(), staged("perm")))
	msg := wait(t, dl)
	require.Contains(t, msg.Metadata.Get(middleware.ReasonForPoisonedKey), "bad header")
	require.Equal(t, "broken", msg.Metadata.Get(middleware.PoisonedHandlerKey))
	require.Equal(t, "corr-perm", msg.Metadata.Get(events.AttrCorrelationID))
	require.Equal(t, int32(1), attempts.Load(), "a permanent error must not be retried")
}

func testPanic(t *testing.T, b bus.Bus, f Features) {
	var dl <-chan *message.Message
	h := start(t, b, f, func(h *harness) {
		dl = h.deadLetters()
		h.handle("panicky", "g1", func(ctx context.Context, e *events.RowsStaged) error { panic("boom") })
	})
	require.NoError(t, h.pub.Publish(context.Background(), staged("panic")))
	msg := wait(t, dl)
	require.Contains(t, msg.Metadata.Get(middleware.ReasonForPoisonedKey), "panic: boom")
}

func testFanOut(t *testing.T, b bus.Bus, f Features) {
	a, c := make(chan string, 4), make(chan string, 4)
	h := start(t, b, f, func(h *harness) {
		h.handle("gateway-a", "gateway-a", func(ctx context.Context, e *events.RowsStaged) error { a <- e.ID; return nil })
		h.handle("gateway-b", "gateway-b", func(ctx context.Context, e *events.RowsStaged) error { c <- e.ID; return nil })
	})
	require.NoError(t, h.pub.Publish(context.Background(), staged("fan")))
	require.Equal(t, "fan", wait(t, a))
	require.Equal(t, "fan", wait(t, c))
}

func testShared(t *testing.T, b bus.Bus, f Features) {
	var mu sync.Mutex
	seen := map[string]int{}
	all := make(chan struct{}, 64)
	h := start(t, b, f, func(h *harness) {
		for _, name := range []string{"member-1", "member-2"} {
			h.handle(name, "shared", func(ctx context.Context, e *events.RowsStaged) error {
				mu.Lock()
				seen[e.ID]++
				mu.Unlock()
				all <- struct{}{}
				return nil
			})
		}
	})
	const n = 20
	for i := range n {
		require.NoError(t, h.pub.Publish(context.Background(), staged(fmt.Sprint("s", i))))
	}
	for range n {
		wait(t, all)
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, n)
	for id, c := range seen {
		require.Equal(t, 1, c, "message %s handled by more than one member of the group", id)
	}
}
