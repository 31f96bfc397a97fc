// Package serve is the last step of the flow: it keeps the promoted model
// of each dataset loaded, verified and compiled, and swaps in each new
// promotion with one atomic store. The gateway answers predictions with it.
package serve

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers"
)

// Datasets finds a dataset's definition.
type Datasets interface {
	Get(name string) (*dataset.Definition, bool)
	Names() []string
}

// Promotions reads the promotion history (registry.Registry).
type Promotions interface {
	LatestPromotion(ctx context.Context, ds string) (registry.Promotion, error)
	Promotions(ctx context.Context, ds string) ([]registry.Promotion, error)
}

// Info describes the model that made a prediction: the "model" member of
// a predict answer.
type Info struct {
	ID             string    `json:"id"`
	Spec           string    `json:"spec"`
	DatasetVersion int       `json:"dataset_version"`
	DatasetHash    string    `json:"dataset_hash"`
	Sequence       int64     `json:"sequence"`
	PromotedAt     time.Time `json:"promoted_at"`
	Checksum       string    `json:"checksum"`
}

// Predictor is what serving needs of a compiled model (model.Predictor).
type Predictor interface {
	Predict(r dataset.Row) float64
	Columns() []string
}

// Classifier is what a classification model answers beside Predict: the
// class of a row, with each class's probability written into probs
// (len(Classes())), in the order of Classes.
type Classifier interface {
	Classes() []string
	PredictClass(r dataset.Row, probs []float64) int
}

// Serving is the model answering predictions for one dataset.
type Serving struct {
	Promotion registry.Promotion
	Predictor Predictor
	// Classifier is the same model when it classifies; nil for regression.
	Classifier Classifier
	LoadedAt   time.Time

	// Per model rather than per request (see NewServing).
	need []bool // per kept column: the model reads it and it is not optional
	info []byte // Info, encoded
}

// NewServing resolves once what every prediction with pred needs; clock
// stamps LoadedAt (nil: the system clock).
func NewServing(p registry.Promotion, pred Predictor, d *dataset.Definition, clock workers.Clock) *Serving {
	s := &Serving{Promotion: p, Predictor: pred, LoadedAt: workers.Deps{Clock: clock}.Now()()}
	// A classifier must answer the dataset's classes, in its order, so a
	// probability is never reported under another class's name.
	if c, ok := pred.(Classifier); ok && d.Task == dataset.TaskClassification && slices.Equal(c.Classes(), d.Classes()) {
		s.Classifier = c
	}
	s.need = requiredColumns(d, pred)
	s.info = s.encodeInfo()
	return s
}

// Required says, per kept column of d, whether a predict instance must
// carry it.
func (s *Serving) Required(d *dataset.Definition) []bool {
	if s.need != nil {
		return s.need
	}
	return requiredColumns(d, s.Predictor)
}

func requiredColumns(d *dataset.Definition, pred Predictor) []bool {
	need := make([]bool, len(d.Kept()))
	reads := pred.Columns()
	for i, c := range d.Kept() {
		need[i] = !c.Optional && slices.Contains(reads, c.Name)
	}
	return need
}

// Info describes the model.
func (s *Serving) Info() Info {
	p := s.Promotion
	return Info{ID: p.RunID, Spec: p.Spec, DatasetVersion: p.Version, DatasetHash: p.VersionHash,
		Sequence: p.Sequence, PromotedAt: p.PromotedAt, Checksum: p.Checksum}
}

// InfoJSON is Info as JSON, encoded once per model.
func (s *Serving) InfoJSON() []byte {
	if s.info != nil {
		return s.info
	}
	return s.encodeInfo()
}

func (s *Serving) encodeInfo() []byte {
	b, err := json.Marshal(s.Info())
	if err != nil {
		panic(fmt.Sprintf("serve: model info does not marshal: %v", err)) // strings, ints and a time: cannot happen
	}
	return b
}

// Failure is a promotion newer than the served model that could not be
// loaded.
type Failure struct {
	Sequence int64     `json:"sequence"`
	RunID    string    `json:"run_id"`
	Error    string    `json:"error"`
	At       time.Time `json:"at"`
}

// State is how serving one dataset stands.
type State struct {
	Dataset string `json:"dataset"`
	// Sequence and RunID name the promotion served; 0 and empty when none.
	Sequence int64  `json:"sequence"`
	RunID    string `json:"run_id,omitempty"`
	// Failed are the newer promotions that did not load, newest first: the
	// dataset serves an older model (or none) until they are fixed.
	Failed []Failure `json:"failed,omitempty"`
}

// Models holds the current model of every dataset behind an atomic
// pointer: a swap is one store, so no request ever sees half a model.
type Models struct {
	datasets Datasets
	opener   dataset.Opener
	history  Promotions
	log      *slog.Logger
	clock    workers.Clock                       // stamps LoadedAt and Failure.At; nil: the system clock
	current  map[string]*atomic.Pointer[Serving] // fixed keys: read without locks
	// loading holds one token per dataset (fixed keys): one load at a time,
	// so that events arriving while a large artifact decodes (promote
	// re-announces each champion every reconcile pass) wait for it and
	// then find it served, instead of each decoding it again.
	loading map[string]chan struct{}
	loaded  atomic.Bool

	mu     sync.Mutex
	failed map[string][]Failure // by dataset

	loadTime *prometheus.GaugeVec
	sequence *prometheus.GaugeVec
	failures *prometheus.GaugeVec
}

// Option configures Models.
type Option func(*Models)

// WithClock stamps load times and failures with c instead of the system
// clock (nil: the system clock), as workers.Deps.Clock does for the other
// workers.
func WithClock(c workers.Clock) Option { return func(m *Models) { m.clock = c } }

// NewModels makes an empty holder for the catalog's datasets; opener reads
// the artifacts (the bucket).
func NewModels(datasets Datasets, opener dataset.Opener, history Promotions, logger *slog.Logger, metrics prometheus.Registerer, opts ...Option) *Models {
	m := &Models{
		datasets: datasets, opener: opener, history: history, log: logger.With("component", "serve"),
		current: map[string]*atomic.Pointer[Serving]{}, loading: map[string]chan struct{}{}, failed: map[string][]Failure{},
		loadTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "model_load_time_seconds", Help: "Time the last model load took (read, verify, compile).",
		}, []string{"dataset"}),
		sequence: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refit_serving_promotion_sequence", Help: "Promotion sequence of the model being served.",
		}, []string{"dataset"}),
		failures: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refit_serving_load_failures",
			Help: "Promotions newer than the served model whose artifact did not load (0: the newest promotion is served).",
		}, []string{"dataset"}),
	}
	for _, o := range opts {
		o(m)
	}
	metrics.MustRegister(m.loadTime, m.sequence, m.failures)
	for _, name := range datasets.Names() {
		m.current[name] = &atomic.Pointer[Serving]{}
		m.loading[name] = make(chan struct{}, 1)
		m.failures.WithLabelValues(name).Set(0)
	}
	return m
}

// Current returns a dataset's model, nil when none is promoted yet.
func (m *Models) Current(ds string) *Serving {
	p, ok := m.current[ds]
	if !ok {
		return nil
	}
	return p.Load()
}

// Ready reports whether a pass has read every dataset's promotion history.
// A dataset whose models do not load does not hold it back: States
// reports it.
func (m *Models) Ready() bool { return m.loaded.Load() }

// States tells, per dataset (in name order), what is served and what
// failed to load.
func (m *Models) States() []State {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]State, 0, len(m.current))
	for name := range m.current {
		st := State{Dataset: name, Failed: slices.Clone(m.failed[name])}
		if cur := m.Current(name); cur != nil {
			st.Sequence, st.RunID = cur.Promotion.Sequence, cur.Promotion.RunID
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b State) int { return cmp.Compare(a.Dataset, b.Dataset) })
	return out
}

// Refresh loads each dataset's newest loadable promotion when it is newer
// than the one served: at start, and periodically in case an event was
// lost or a broken artifact was repaired.
func (m *Models) Refresh(ctx context.Context) error {
	var errs []error
	read := true
	for name := range m.current {
		loadErr, readErr := m.load(ctx, name)
		read = read && readErr == nil
		errs = append(errs, loadErr, readErr)
	}
	if read {
		m.loaded.Store(true)
	}
	return errors.Join(errs...)
}

// HandlePromoted swaps in a newly promoted model. A stale or repeated event
// (a sequence not above the served one) changes nothing.
func (m *Models) HandlePromoted(ctx context.Context, e *events.ModelPromoted) error {
	if _, ok := m.current[e.Dataset]; !ok {
		return nil // a dataset this gateway does not serve
	}
	if cur := m.Current(e.Dataset); cur != nil && cur.Promotion.Sequence >= e.Sequence {
		return nil
	}
	// The store is the truth; the event only says where to look.
	if err := errors.Join(m.load(ctx, e.Dataset)); err != nil {
		return fmt.Errorf("promotion %d of %s: %w", e.Sequence, e.Dataset, err)
	}
	return nil
}

// maxFallback bounds how many older promotions one pass tries when the
// newest does not load (a bucket outage fails them all).
const maxFallback = 10

// load serves the newest promotion of ds above the served one whose model
// loads, walking back through the history past those that do not, and
// records them as the dataset's failures. loadErr joins those failures;
// readErr says the history itself could not be read.
func (m *Models) load(ctx context.Context, ds string) (loadErr, readErr error) {
	select {
	case m.loading[ds] <- struct{}{}:
		defer func() { <-m.loading[ds] }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	served := int64(0)
	if cur := m.Current(ds); cur != nil {
		served = cur.Promotion.Sequence
	}
	latest, err := m.history.LatestPromotion(ctx, ds)
	if registry.IsNotFound(err) || (err == nil && latest.Sequence <= served) {
		m.setFailed(ds, nil)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	err = m.install(ctx, latest)
	if err == nil {
		m.setFailed(ds, nil)
		return nil, nil
	}
	failed, errs := []Failure{m.failure(latest, err)}, []error{err}
	defer func() { m.setFailed(ds, failed) }()
	if ctx.Err() != nil {
		return err, nil
	}
	// Serve the newest older one that loads meanwhile: one broken artifact
	// must not leave the dataset without a model.
	history, err := m.history.Promotions(ctx, ds)
	if err != nil {
		return errors.Join(errs...), err
	}
	for i := len(history) - 1; i >= 0 && len(failed) <= maxFallback; i-- {
		p := history[i]
		if p.Sequence >= latest.Sequence {
			continue
		}
		if p.Sequence <= served || ctx.Err() != nil {
			break
		}
		err := m.install(ctx, p)
		if err == nil {
			m.log.Warn("serving an older model: newer ones do not load", "dataset", ds, "sequence", p.Sequence, "failed", len(failed))
			break
		}
		failed, errs = append(failed, m.failure(p, err)), append(errs, err)
	}
	return errors.Join(errs...), nil
}

func (m *Models) failure(p registry.Promotion, err error) Failure {
	return Failure{Sequence: p.Sequence, RunID: p.RunID, Error: err.Error(), At: workers.Deps{Clock: m.clock}.Now()()}
}

func (m *Models) setFailed(ds string, failed []Failure) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.Current(ds); cur != nil {
		// A newer model may have been swapped in meanwhile.
		failed = slices.DeleteFunc(failed, func(f Failure) bool { return f.Sequence <= cur.Promotion.Sequence })
	}
	if len(failed) == 0 {
		delete(m.failed, ds)
	} else {
		m.failed[ds] = failed
	}
	m.failures.WithLabelValues(ds).Set(float64(len(failed)))
}

func (m *Models) install(ctx context.Context, p registry.Promotion) error {
	slot := m.current[p.Dataset]
	if cur := slot.Load(); cur != nil && cur.Promotion.Sequence >= p.Sequence {
		return nil
	}
	d, ok := m.datasets.Get(p.Dataset)
	if !ok {
		return fmt.Errorf("unknown dataset %q", p.Dataset)
	}
	start := time.Now() // a duration, not a record: the monotonic system clock
	art, err := model.Load(ctx, m.opener, p.Artifact, p.Checksum)
	if err != nil {
		return fmt.Errorf("promotion #%d (run %s): %w", p.Sequence, p.RunID, err)
	}
	pred, err := art.Predictor(d)
	if err != nil {
		return fmt.Errorf("promotion #%d (run %s): %w", p.Sequence, p.RunID, err)
	}
	next := NewServing(p, pred, d, m.clock)
	if d.Task == dataset.TaskClassification && next.Classifier == nil {
		return fmt.Errorf("promotion #%d (run %s): the model does not predict %s's classes (%s)",
			p.Sequence, p.RunID, d.Name, strings.Join(d.Classes(), ", "))
	}
	for {
		cur := slot.Load()
		if cur != nil && cur.Promotion.Sequence >= p.Sequence {
			return nil // a newer one won meanwhile
		}
		if slot.CompareAndSwap(cur, next) {
			break
		}
	}
	m.loadTime.WithLabelValues(p.Dataset).Set(time.Since(start).Seconds())
	m.sequence.WithLabelValues(p.Dataset).Set(float64(p.Sequence))
	m.log.Info("serving model", "dataset", p.Dataset, "model", p.RunID, "spec", p.Spec, "sequence", p.Sequence, "version", p.Version)
	return nil
}

// RefreshEvery calls Refresh until ctx ends.
func (m *Models) RefreshEvery(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := m.Refresh(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("refresh models", "err", err)
			}
		}
	}
}
