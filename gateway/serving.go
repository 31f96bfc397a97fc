package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
)

// Serving is the model answering predictions for one dataset.
type Serving struct {
	Promotion registry.Promotion
	Predictor *model.Predictor
	LoadedAt  time.Time

	// Per model rather than per request (see newServing).
	need []bool // per kept column: the model reads it and it is not optional
	info []byte // the "model" member of a predict answer
}

func newServing(p registry.Promotion, pred *model.Predictor, d *dataset.Definition) *Serving {
	s := &Serving{Promotion: p, Predictor: pred, LoadedAt: time.Now().UTC()}
	s.need = requiredColumns(d, pred)
	s.info = modelJSON(s)
	return s
}

// required says, per kept column of d, whether a predict instance must
// carry it.
func (s *Serving) required(d *dataset.Definition) []bool {
	if s.need != nil {
		return s.need
	}
	return requiredColumns(d, s.Predictor)
}

func requiredColumns(d *dataset.Definition, pred *model.Predictor) []bool {
	need := make([]bool, len(d.Kept()))
	reads := pred.Columns()
	for i, c := range d.Kept() {
		need[i] = !c.Optional && slices.Contains(reads, c.Name)
	}
	return need
}

// modelJSON is the "model" member of a predict answer.
func (s *Serving) modelJSON() []byte {
	if s.info != nil {
		return s.info
	}
	return modelJSON(s)
}

func modelJSON(s *Serving) []byte {
	b, err := json.Marshal(infoOf(s))
	if err != nil {
		panic(fmt.Sprintf("gateway: model info does not marshal: %v", err)) // strings, ints and a time: cannot happen
	}
	return b
}

// Models holds the current model of every dataset behind an atomic
// pointer: a swap is one store, so no request ever sees half a model.
type Models struct {
	datasets Datasets
	opener   dataset.Opener
	reg      *registry.Registry
	log      *slog.Logger
	current  map[string]*atomic.Pointer[Serving] // fixed keys: read without locks
	loaded   atomic.Bool

	loadTime *prometheus.GaugeVec
	sequence *prometheus.GaugeVec
}

// NewModels makes an empty holder for the catalog's datasets.
func NewModels(datasets Datasets, opener dataset.Opener, reg *registry.Registry, logger *slog.Logger, metrics prometheus.Registerer) *Models {
	m := &Models{
		datasets: datasets, opener: opener, reg: reg, log: logger.With("component", "models"),
		current: map[string]*atomic.Pointer[Serving]{},
		loadTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "model_load_time_seconds", Help: "Time the last model load took (read, verify, compile).",
		}, []string{"dataset"}),
		sequence: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refit_serving_promotion_sequence", Help: "Promotion sequence of the model being served.",
		}, []string{"dataset"}),
	}
	metrics.MustRegister(m.loadTime, m.sequence)
	for _, name := range datasets.Names() {
		m.current[name] = &atomic.Pointer[Serving]{}
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

// Ready reports whether the first load from the store has finished.
func (m *Models) Ready() bool { return m.loaded.Load() }

// Refresh loads each dataset's latest promotion from the store when it is
// newer than the one served: at start, and periodically in case an event
// was lost.
func (m *Models) Refresh(ctx context.Context) error {
	var errs []error
	for name := range m.current {
		p, err := m.reg.LatestPromotion(ctx, name)
		if registry.IsNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := m.install(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
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
	p, err := m.reg.LatestPromotion(ctx, e.Dataset)
	if err != nil {
		return fmt.Errorf("promotion %d of %s: %w", e.Sequence, e.Dataset, err)
	}
	return m.install(ctx, p)
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
	start := time.Now()
	art, err := model.Load(ctx, m.opener, p.Artifact, p.Checksum)
	if err != nil {
		return err
	}
	pred, err := art.Predictor(d)
	if err != nil {
		return err
	}
	next := newServing(p, pred, d)
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
