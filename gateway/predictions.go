package gateway

import (
	"container/list"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Defaults of the prediction store: enough for a console session or a
// batch client to correct what it was just shown, small enough to bound
// memory (10k instances of a few hundred bytes each).
const (
	defaultPredictionCap = 10_000
	defaultPredictionTTL = time.Hour
)

// storedPrediction is what the gateway predicted for, kept so a
// correction by prediction ID carries the instance the model saw rather
// than fields a client could swap.
type storedPrediction struct {
	id      string
	dataset string
	fields  map[string]string // instance values as a CSV would hold them
	value   float64
	at      time.Time
}

// predictionStore is a bounded, in-memory, per-process store with a TTL.
// It is not shared between replicas: a correction by prediction ID must
// reach the replica that predicted, or send the instance as well.
type predictionStore struct {
	mu    sync.Mutex
	cap   int
	ttl   time.Duration
	now   func() time.Time
	order *list.List // oldest first; values are *storedPrediction
	byID  map[string]*list.Element
}

func newPredictionStore(capacity int, ttl time.Duration, now func() time.Time) *predictionStore {
	if capacity <= 0 {
		capacity = defaultPredictionCap
	}
	if ttl <= 0 {
		ttl = defaultPredictionTTL
	}
	if now == nil {
		now = time.Now
	}
	return &predictionStore{cap: capacity, ttl: ttl, now: now, order: list.New(), byID: map[string]*list.Element{}}
}

// add keeps an instance and returns its new prediction ID.
func (ps *predictionStore) add(dataset string, fields map[string]string, value float64) string {
	p := &storedPrediction{id: uuid.NewString(), dataset: dataset, fields: fields, value: value, at: ps.now()}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.expire()
	for ps.order.Len() >= ps.cap {
		ps.remove(ps.order.Front())
	}
	ps.byID[p.id] = ps.order.PushBack(p)
	return p.id
}

// get returns a live prediction of the dataset; false if unknown, expired,
// evicted, or made for another dataset.
func (ps *predictionStore) get(dataset, id string) (storedPrediction, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.expire()
	e, ok := ps.byID[id]
	if !ok {
		return storedPrediction{}, false
	}
	p := e.Value.(*storedPrediction)
	if p.dataset != dataset {
		return storedPrediction{}, false
	}
	out := *p
	out.fields = maps.Clone(p.fields)
	return out, true
}

// expire drops entries older than the TTL; ps.mu is held. Entries are in
// insertion order, so it stops at the first live one.
func (ps *predictionStore) expire() {
	cutoff := ps.now().Add(-ps.ttl)
	for e := ps.order.Front(); e != nil; e = ps.order.Front() {
		if e.Value.(*storedPrediction).at.After(cutoff) {
			return
		}
		ps.remove(e)
	}
}

func (ps *predictionStore) remove(e *list.Element) {
	delete(ps.byID, e.Value.(*storedPrediction).id)
	ps.order.Remove(e)
}

func (ps *predictionStore) len() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.order.Len()
}

// correctionFields resolves the instance of a correction: the stored one
// for a prediction ID, the client's otherwise. A client may send both (so
// a correction survives reaching another replica) but they must agree.
func (s *Server) correctionFields(ds string, req correctionRequest) (map[string]string, error) {
	var sent map[string]string
	if req.Instance != nil {
		var err error
		if sent, err = instanceValues(req.Instance); err != nil {
			return nil, err
		}
	}
	if req.PredictionID == "" {
		if sent == nil {
			return nil, badRequest("instance", "instance: required (or prediction_id of a recent prediction)")
		}
		return sent, nil
	}
	p, ok := s.preds.get(ds, req.PredictionID)
	switch {
	case !ok && sent == nil:
		return nil, errorf(http.StatusNotFound,
			"prediction %q is unknown to this gateway (expired after %s, evicted, made by another replica, or of another dataset): send the instance with the correction",
			req.PredictionID, s.preds.ttl)
	case !ok:
		return sent, nil // another replica's, or expired: the instance stands on its own
	case sent != nil && !maps.Equal(sent, p.fields):
		return nil, badRequest("instance", "instance differs from the one predicted as %q: send the prediction_id alone, or the same instance", req.PredictionID)
	}
	return p.fields, nil
}

// keepPredictions stores the instances of a predict request and returns
// their IDs. The instances were validated already, so their values parse.
func (s *Server) keepPredictions(ds string, instances []map[string]any, values []float64) []string {
	ids := make([]string, len(instances))
	for i, inst := range instances {
		fields, _ := instanceValues(inst)
		ids[i] = s.preds.add(ds, fields, values[i])
	}
	return ids
}
