package gateway

import (
	crand "crypto/rand"
	"encoding/hex"
	"maps"
	"math/rand/v2"
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
	id     predictionID
	sch    *instanceSchema
	text   string        // shared by the instances of a request
	fields []storedField // instance values as a CSV would hold them
	value  float64
	at     time.Time
}

// storedField is one value of an instance: text[start:end] for column
// sch.cols[col]. Offsets rather than strings, so that the garbage
// collector has no pointers to follow in what the store keeps.
type storedField struct {
	col, start, end int32
}

// predictionID is a random (version 4) UUID. Kept as bytes, it costs no
// allocation to make, store or write.
type predictionID [16]byte

func (id predictionID) appendText(b []byte) []byte {
	b = hex.AppendEncode(b, id[0:4])
	b = hex.AppendEncode(append(b, '-'), id[4:6])
	b = hex.AppendEncode(append(b, '-'), id[6:8])
	b = hex.AppendEncode(append(b, '-'), id[8:10])
	return hex.AppendEncode(append(b, '-'), id[10:16])
}

func (id predictionID) String() string { return string(id.appendText(make([]byte, 0, 36))) }

// parsePredictionID accepts an ID only in the form the gateway writes, so
// that one prediction has one ID.
func parsePredictionID(s string) (predictionID, bool) {
	u, err := uuid.Parse(s)
	if err != nil || predictionID(u).String() != s {
		return predictionID{}, false
	}
	return predictionID(u), true
}

// predictionStore is a bounded, in-memory, per-process store with a TTL.
// It is not shared between replicas: a correction by prediction ID must
// reach the replica that predicted, or send the instance as well.
type predictionStore struct {
	mu   sync.Mutex
	cap  int
	ttl  time.Duration
	now  func() time.Time
	ids  *rand.ChaCha8 // IDs: unguessable, without a system call each
	ring []storedPrediction
	head int // oldest entry in ring
	n    int // live entries
	byID map[predictionID]int
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
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails (crypto/rand)
	return &predictionStore{cap: capacity, ttl: ttl, now: now, ids: rand.NewChaCha8(seed), byID: map[predictionID]int{}}
}

// add keeps the instances of one request and appends their new IDs to
// ids. Instance i was predicted as values[i], and fields[ends[i-1]:ends[i]]
// are its values in text. The store keeps text and fields as they are.
func (ps *predictionStore) add(sch *instanceSchema, text string, fields []storedField, ends []int, values []float64, ids []predictionID) []predictionID {
	at := ps.now()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.expire(at)
	if ps.ring == nil {
		ps.ring = make([]storedPrediction, ps.cap)
	}
	from := 0
	for i, to := range ends {
		var id predictionID
		_, _ = ps.ids.Read(id[:]) // never fails
		id[6] = id[6]&0x0f | 0x40 // version 4
		id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
		if ps.n == ps.cap {
			ps.removeOldest()
		}
		j := (ps.head + ps.n) % ps.cap
		ps.ring[j] = storedPrediction{id: id, sch: sch, text: text, fields: fields[from:to:to], value: values[i], at: at}
		ps.n++
		ps.byID[id] = j
		ids = append(ids, id)
		from = to
	}
	return ids
}

// get returns the fields of a live prediction of the dataset, a map the
// caller owns; false if unknown, expired, evicted, or made for another
// dataset.
func (ps *predictionStore) get(dataset, id string) (map[string]string, bool) {
	key, ok := parsePredictionID(id)
	if !ok {
		return nil, false
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.expire(ps.now())
	i, ok := ps.byID[key]
	if !ok || ps.ring[i].sch.def.Name != dataset {
		return nil, false
	}
	p := ps.ring[i]
	fields := make(map[string]string, len(p.fields))
	for _, f := range p.fields {
		fields[p.sch.cols[f.col].Name] = p.text[f.start:f.end]
	}
	return fields, true
}

// expire drops entries older than the TTL; ps.mu is held. Entries are in
// insertion order, so it stops at the first live one.
func (ps *predictionStore) expire(now time.Time) {
	cutoff := now.Add(-ps.ttl)
	for ps.n > 0 && !ps.ring[ps.head].at.After(cutoff) {
		ps.removeOldest()
	}
}

func (ps *predictionStore) removeOldest() {
	delete(ps.byID, ps.ring[ps.head].id)
	ps.ring[ps.head] = storedPrediction{} // let the instance's text go
	ps.head = (ps.head + 1) % ps.cap
	ps.n--
}

// correctionFields resolves the instance of a correction: the stored one
// for a prediction ID, the client's otherwise. A client may send both (so
// a correction survives reaching another replica) but they must agree.
func (s *Server) correctionFields(ds string, req correctionRequest) (map[string]string, error) {
	var sent map[string]string
	if req.Instance.values != nil {
		var err error
		if sent, err = instanceValues(req.Instance.values); err != nil {
			return nil, err
		}
	}
	if req.PredictionID == "" {
		if sent == nil {
			return nil, badRequest("instance", "instance: required (or prediction_id of a recent prediction)")
		}
		return sent, nil
	}
	stored, ok := s.preds.get(ds, req.PredictionID)
	switch {
	case !ok && sent == nil:
		return nil, errorf(http.StatusNotFound,
			"prediction %q is unknown to this gateway (expired after %s, evicted, made by another replica, or of another dataset): send the instance with the correction",
			req.PredictionID, s.preds.ttl)
	case !ok:
		return sent, nil // another replica's, or expired: the instance stands on its own
	case sent != nil && !maps.Equal(sent, stored):
		return nil, badRequest("instance", "instance differs from the one predicted as %q: send the prediction_id alone, or the same instance", req.PredictionID)
	}
	return stored, nil
}
