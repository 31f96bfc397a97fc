package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/events"
)

// RouterConfig tunes the middleware every handler runs under.
type RouterConfig struct {
	// Retries after the first attempt before a message is dead-lettered.
	Retries        int
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	CloseTimeout   time.Duration
}

func (c *RouterConfig) setDefaults() {
	if c.Retries == 0 {
		c.Retries = 5
	}
	if c.InitialBackoff == 0 {
		c.InitialBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = 30 * time.Second
	}
}

// Validate reports a configuration that cannot work.
func (c RouterConfig) Validate() error {
	if c.Retries < 0 || c.InitialBackoff < 0 || c.MaxBackoff < c.InitialBackoff {
		return errors.New("bus: retries and backoffs must be non-negative and max backoff >= initial backoff")
	}
	return nil
}

// Metrics counts what the handlers do.
type Metrics struct {
	handled      *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	deadLettered *prometheus.CounterVec
}

// NewMetrics registers the handler metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refit_events_handled_total", Help: "Events handled, by handler and outcome (ok, error).",
		}, []string{"handler", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "refit_event_handling_seconds", Help: "Time spent handling one event (each attempt).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"handler"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refit_events_dead_lettered_total", Help: "Events sent to the dead-letter topic, by handler.",
		}, []string{"handler"}),
	}
	reg.MustRegister(m.handled, m.duration, m.deadLettered)
	return m
}

// NewRouter builds a Watermill router whose handlers all run under the same
// middleware, outermost first: correlation ID, dead letter, retry,
// recoverer, metrics. Permanent errors skip the retries.
func NewRouter(cfg RouterConfig, b Bus, m *Metrics, logger *slog.Logger) (*message.Router, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.CloseTimeout}, watermill.NewSlogLogger(logger))
	if err != nil {
		return nil, err
	}
	poison, err := middleware.PoisonQueue(b.Publisher(), b.Topic(events.TopicDeadLetter))
	if err != nil {
		return nil, err
	}
	retry := middleware.Retry{
		MaxRetries:      cfg.Retries,
		InitialInterval: cfg.InitialBackoff,
		MaxInterval:     cfg.MaxBackoff,
		Multiplier:      2,
		ShouldRetry:     func(p middleware.RetryParams) bool { return !IsPermanent(p.Err) },
		OnRetryHook:     nil,
	}
	r.AddMiddleware(
		middleware.CorrelationID,
		deadLetterLogging(logger, m),
		poison,
		retry.Middleware,
		recoverer,
		instrument(m, logger),
	)
	return r, nil
}

// recoverer turns a panic into a permanent error: the same message would
// panic again.
func recoverer(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) (out []*message.Message, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = Permanent(fmt.Errorf("panic: %v\n%s", p, debug.Stack()))
			}
		}()
		return h(msg)
	}
}

func instrument(m *Metrics, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			name := message.HandlerNameFromCtx(msg.Context())
			start := time.Now()
			out, err := h(msg)
			m.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
			outcome := "ok"
			if err != nil {
				outcome = "error"
				logger.Warn("handler failed", "handler", name, "message", msg.UUID,
					"correlation_id", middleware.MessageCorrelationID(msg), "permanent", IsPermanent(err), "err", err)
			}
			m.handled.WithLabelValues(name, outcome).Inc()
			return out, err
		}
	}
}

// deadLetterLogging sits outside the poison queue: an error reaching it
// means the message could not even be dead-lettered and will be redelivered.
// It counts messages the poison queue took (they come back without error
// but with the reason set).
func deadLetterLogging(logger *slog.Logger, m *Metrics) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if reason := msg.Metadata.Get(middleware.ReasonForPoisonedKey); reason != "" && err == nil {
				name := message.HandlerNameFromCtx(msg.Context())
				m.deadLettered.WithLabelValues(name).Inc()
				logger.Error("event dead-lettered", "handler", name, "message", msg.UUID,
					"correlation_id", middleware.MessageCorrelationID(msg), "reason", reason)
			}
			return out, err
		}
	}
}
