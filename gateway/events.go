package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/registry"
)

// StreamEvent is one event as GET /v1/events sends it.
type StreamEvent struct {
	ID      string // the event ID (SSE id:)
	Type    string // the CloudEvents type (SSE event:)
	Dataset string
	Data    []byte // the event's JSON (SSE data:), one line
}

// hubBuffer events wait for a slow subscriber before it is dropped.
const hubBuffer = 64

// Hub fans events out to the stream's subscribers. A subscriber that
// falls hubBuffer events behind is dropped (its channel closes) rather
// than slowing everyone down: it reconnects and reads the history to
// catch up.
type Hub struct {
	mu     sync.Mutex
	subs   map[*subscription]struct{}
	closed bool
	// newest promotion sequence and version number seen per dataset:
	// events are hints and repeat (reconcile re-announces the champion),
	// but the stream shows each one once.
	newest map[string]int64
}

type subscription struct {
	dataset string // "" for every dataset
	ch      chan StreamEvent
}

// NewHub makes a hub with no subscribers.
func NewHub() *Hub {
	return &Hub{subs: map[*subscription]struct{}{}, newest: map[string]int64{}}
}

// isNew records n for key and reports whether it is above what was seen.
func (h *Hub) isNew(key string, n int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n <= h.newest[key] {
		return false
	}
	h.newest[key] = n
	return true
}

// Subscribe returns the events of a dataset ("" for all) and the function
// that ends the subscription. The channel closes when the subscription
// ends, the subscriber falls behind, or the hub closes.
func (h *Hub) Subscribe(dataset string) (<-chan StreamEvent, func()) {
	sub := &subscription{dataset: dataset, ch: make(chan StreamEvent, hubBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(sub.ch)
		return sub.ch, func() {}
	}
	h.subs[sub] = struct{}{}
	return sub.ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.drop(sub)
	}
}

// drop ends a subscription; h.mu is held.
func (h *Hub) drop(sub *subscription) {
	if _, ok := h.subs[sub]; ok {
		delete(h.subs, sub)
		close(sub.ch)
	}
}

// Publish sends an event to its dataset's subscribers without waiting.
func (h *Hub) Publish(e events.Event) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("stream %s: %w", e.Topic(), err)
	}
	m := events.MetaOf(e)
	se := StreamEvent{ID: m.ID, Type: e.Type(), Dataset: m.Dataset, Data: data}
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		if sub.dataset != "" && sub.dataset != se.Dataset {
			continue
		}
		select {
		case sub.ch <- se:
		default:
			h.drop(sub) // too far behind
		}
	}
	return nil
}

// HandlePromoted streams model.promoted.
func (h *Hub) HandlePromoted(_ context.Context, e *events.ModelPromoted) error {
	if !h.isNew("promoted/"+e.Dataset, e.Sequence) {
		return nil
	}
	return h.Publish(e)
}

// HandleVersioned streams dataset.versioned.
func (h *Hub) HandleVersioned(_ context.Context, e *events.DatasetVersioned) error {
	if !h.isNew("versioned/"+e.Dataset, int64(e.Version)) {
		return nil
	}
	return h.Publish(e)
}

// Close ends every subscription, so open streams finish and a server can
// shut down.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for sub := range h.subs {
		h.drop(sub)
	}
}

// Subscribers counts the open subscriptions.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// handleEvents is GET /v1/events?dataset=D: Server-Sent Events with id:
// the event ID, event: the CloudEvents type, data: the event's JSON, and a
// comment line every Heartbeat. A comment is sent at once, so a client
// knows when it is subscribed.
func (s *Server) handleEvents() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ds := r.URL.Query().Get("dataset")
		if ds != "" {
			if _, ok := s.datasets.Get(ds); !ok {
				s.fail(w, r, s.unknownDataset(ds))
				return
			}
		}
		ch, unsubscribe := s.hub.Subscribe(ds)
		defer unsubscribe()
		s.metrics.streamClients.Inc()
		defer s.metrics.streamClients.Dec()

		rc := http.NewResponseController(w)
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
		w.WriteHeader(http.StatusOK)
		if _, err := fmt.Fprint(w, ": subscribed\n\n"); err != nil || rc.Flush() != nil {
			return
		}
		tick := time.NewTicker(s.cfg.Heartbeat)
		defer tick.Stop()
		for {
			var err error
			select {
			case <-r.Context().Done():
				return // the client went
			case e, ok := <-ch:
				if !ok {
					return // dropped as too slow, or shutting down
				}
				_, err = fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", e.ID, e.Type, e.Data)
			case <-tick.C:
				_, err = fmt.Fprint(w, ": heartbeat\n\n")
			}
			if err != nil || rc.Flush() != nil {
				return
			}
		}
	})
}

// handleDeliveries shows the webhook delivery log (admin: it names the
// endpoints), optionally for one event: ?event_id=housing/promotion/3.
func (s *Server) handleDeliveries() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log, err := s.reg.WebhookDeliveries(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if id := r.URL.Query().Get("event_id"); id != "" {
			log = slices.DeleteFunc(log, func(d registry.WebhookDelivery) bool { return d.EventID != id })
		}
		slices.SortStableFunc(log, func(a, b registry.WebhookDelivery) int {
			return cmp.Or(a.At.Compare(b.At), strings.Compare(a.DeliveryID, b.DeliveryID))
		})
		writeJSON(w, http.StatusOK, map[string]any{"deliveries": log})
	})
}
