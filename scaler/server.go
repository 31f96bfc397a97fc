// Package scaler is a KEDA External Scaler (externalscaler.proto) that
// answers the value a Prometheus query is forecast to reach a horizon
// ahead, so the HPA adds replicas before the load arrives. Its model is
// internal/forecast, refitted from the query's history on every answer.
package scaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/refit-ml/refit/internal/forecast"
	"github.com/refit-ml/refit/internal/promapi"
)

// Querier reads a range of a query from Prometheus (promapi.Client).
type Querier interface {
	QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]promapi.Series, error)
}

// Config of a Server; zero durations take the defaults.
type Config struct {
	Prometheus Querier
	Logger     *slog.Logger
	Metrics    prometheus.Registerer
	Now        func() time.Time
	// StaleFor bounds how long the last good forecast is answered while
	// Prometheus is down; after it, Unavailable (KEDA's fallback takes over).
	StaleFor time.Duration
	// Refresh: a forecast younger than this is answered without a refit
	// (KEDA calls IsActive, GetMetrics and the HPA in quick succession).
	Refresh time.Duration
	// StreamInterval between two answers of StreamIsActive.
	StreamInterval time.Duration
}

// Defaults.
const (
	DefaultStaleFor       = 10 * time.Minute
	DefaultRefresh        = 10 * time.Second
	DefaultStreamInterval = 15 * time.Second
	maxPending            = 4096
)

// Server implements externalscaler.ExternalScalerServer.
type Server struct {
	externalscaler.UnimplementedExternalScalerServer
	cfg     Config
	log     *slog.Logger
	metrics *metrics

	mu    sync.Mutex
	state map[string]*objectState
	swept time.Time // last sweep of states no longer asked for
}

// objectState is what the server remembers of one scaled object's query.
type objectState struct {
	key     string            // namespace/name, the metrics' label
	good    forecast.Result   // last good forecast
	pending []forecast.Result // forecasts not yet due, oldest first, for the error metric
	fitted  time.Time         // when good was computed
}

var _ externalscaler.ExternalScalerServer = (*Server)(nil)

// New checks the configuration and returns a server.
func New(cfg Config) (*Server, error) {
	if cfg.Prometheus == nil {
		return nil, errors.New("scaler: no Prometheus client")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StaleFor <= 0 {
		cfg.StaleFor = DefaultStaleFor
	}
	if cfg.Refresh < 0 {
		cfg.Refresh = 0
	} else if cfg.Refresh == 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.StreamInterval <= 0 {
		cfg.StreamInterval = DefaultStreamInterval
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, log: cfg.Logger.With("component", "scaler"), metrics: m, state: map[string]*objectState{}}, nil
}

// Register adds the server to a gRPC server.
func (s *Server) Register(g *grpc.Server) { externalscaler.RegisterExternalScalerServer(g, s) }

// IsActive: the forecast is above activationTarget.
func (s *Server) IsActive(ctx context.Context, ref *externalscaler.ScaledObjectRef) (*externalscaler.IsActiveResponse, error) {
	v, spec, err := s.value(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &externalscaler.IsActiveResponse{Result: v > spec.ActivationTarget}, nil
}

// StreamIsActive answers IsActive every StreamInterval until KEDA hangs up
// (external-push). A bad metadata ends the stream; Prometheus being down
// beyond StaleFor skips answers until it is back.
func (s *Server) StreamIsActive(ref *externalscaler.ScaledObjectRef, stream grpc.ServerStreamingServer[externalscaler.IsActiveResponse]) error {
	ctx := stream.Context()
	t := time.NewTicker(s.cfg.StreamInterval)
	defer t.Stop()
	for {
		res, err := s.IsActive(ctx, ref)
		switch {
		case status.Code(err) == codes.InvalidArgument:
			return err
		case err != nil:
			s.log.Warn("stream: no answer this round", "scaledobject", key(ref), "err", err)
		default:
			if err := stream.Send(res); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// GetMetricSpec: the metric and its per-replica target.
func (s *Server) GetMetricSpec(_ context.Context, ref *externalscaler.ScaledObjectRef) (*externalscaler.GetMetricSpecResponse, error) {
	spec, err := ParseSpec(ref.GetScalerMetadata())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &externalscaler.GetMetricSpecResponse{MetricSpecs: []*externalscaler.MetricSpec{{
		MetricName:      spec.MetricName,
		TargetSize:      int64(math.Ceil(spec.Target)),
		TargetSizeFloat: spec.Target,
	}}}, nil
}

// GetMetrics: the forecast horizon ahead, never less than the current value.
func (s *Server) GetMetrics(ctx context.Context, req *externalscaler.GetMetricsRequest) (*externalscaler.GetMetricsResponse, error) {
	v, spec, err := s.value(ctx, req.GetScaledObjectRef())
	if err != nil {
		return nil, err
	}
	name := req.GetMetricName()
	if name == "" {
		name = spec.MetricName
	}
	return &externalscaler.GetMetricsResponse{MetricValues: []*externalscaler.MetricValue{{
		MetricName:       name,
		MetricValue:      int64(math.Ceil(v)),
		MetricValueFloat: v,
	}}}, nil
}

// value is the forecast for ref, as a gRPC error when there is none.
func (s *Server) value(ctx context.Context, ref *externalscaler.ScaledObjectRef) (float64, Spec, error) {
	spec, err := ParseSpec(ref.GetScalerMetadata())
	if err != nil {
		return 0, spec, status.Error(codes.InvalidArgument, err.Error())
	}
	r, err := s.forecast(ctx, key(ref), spec)
	if err != nil {
		return 0, spec, grpcError(err)
	}
	return r.Value, spec, nil
}

// grpcError maps errors to codes, in one place.
func grpcError(err error) error {
	var fe *FieldError
	var bq *promapi.BadQueryError
	switch {
	case errors.As(err, &fe):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.As(err, &bq):
		return status.Error(codes.InvalidArgument, "metadata query: "+err.Error())
	case errors.Is(err, promapi.ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	default:
		return status.Error(codes.Internal, err.Error())
	}
}

func key(ref *externalscaler.ScaledObjectRef) string {
	return ref.GetNamespace() + "/" + ref.GetName()
}

// forecast refits spec's query (or reuses a fit younger than Refresh) and,
// with Prometheus down, answers the last good forecast for StaleFor.
func (s *Server) forecast(ctx context.Context, k string, spec Spec) (forecast.Result, error) {
	now := s.cfg.Now()
	sk := k + "\x00" + spec.Query + "\x00" + spec.Horizon.String()
	s.mu.Lock()
	st := s.state[sk]
	if st != nil && now.Sub(st.fitted) < s.cfg.Refresh {
		r := st.good
		s.mu.Unlock()
		return r, nil
	}
	s.mu.Unlock()

	series, err := s.cfg.Prometheus.QueryRange(ctx, spec.Query, now.Add(-spec.History), now, spec.Step)
	if err != nil {
		s.metrics.promErrors.WithLabelValues(k).Inc()
		if !errors.Is(err, promapi.ErrUnavailable) {
			return forecast.Result{}, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if st != nil && now.Sub(st.fitted) <= s.cfg.StaleFor {
			s.metrics.stale.WithLabelValues(k).Inc()
			s.log.Warn("prometheus unavailable: answering the last good forecast", "scaledobject", k, "age", now.Sub(st.fitted).Round(time.Second), "err", err)
			return st.good, nil
		}
		return forecast.Result{}, err
	}
	if len(series) > 1 {
		return forecast.Result{}, &FieldError{"query", fmt.Sprintf("returns %d series (%s, ...); aggregate it into one, e.g. sum(...)", len(series), labels(series[0].Labels))}
	}
	var pts []forecast.Point
	if len(series) == 1 {
		pts = make([]forecast.Point, len(series[0].Samples))
		for i, p := range series[0].Samples {
			pts[i] = forecast.Point{T: p.T, V: p.V}
		}
	}
	start := time.Now()
	model := forecast.New(spec.Seasons...)
	model.Harmonics = spec.Harmonics
	r, err := model.Forecast(pts, spec.Horizon)
	s.metrics.fit.WithLabelValues(k).Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, forecast.ErrNoHistory):
		// Like KEDA's prometheus scaler (ignoreNullValues): a query that
		// matches nothing, or only NaN, is 0.
		s.log.Debug("no finite value in the history: answering 0", "scaledobject", k, "dropped", r.Dropped)
		r = forecast.Result{At: now.Add(spec.Horizon), Dropped: r.Dropped}
	case errors.Is(err, forecast.ErrShortHistory):
		s.log.Debug("history shorter than the horizon: answering the current value", "scaledobject", k)
	case err != nil:
		return forecast.Result{}, err
	}
	s.record(sk, k, now, r)
	return r, nil
}

// record keeps r as the last good forecast and updates the metrics: the
// forecast, the actual value, and the error of the forecast now due.
func (s *Server) record(sk, k string, now time.Time, r forecast.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state[sk]
	if st == nil {
		st = &objectState{key: k}
		s.state[sk] = st
	}
	st.good, st.fitted = r, now
	s.sweep(now)
	s.metrics.forecast.WithLabelValues(k).Set(r.Value)
	s.metrics.actual.WithLabelValues(k).Set(r.Current)
	s.metrics.seasons.WithLabelValues(k).Set(float64(r.Seasons))
	// The latest forecast whose time has come is compared with now.
	i := sort.Search(len(st.pending), func(i int) bool { return st.pending[i].At.After(now) })
	if i > 0 {
		due := st.pending[i-1]
		s.metrics.due.WithLabelValues(k).Set(due.Raw)
		if r.Current != 0 {
			s.metrics.ape.WithLabelValues(k).Set(math.Abs(due.Raw-r.Current) / math.Abs(r.Current))
		}
		st.pending = st.pending[i:]
	}
	if r.Seasons > 0 && len(st.pending) < maxPending {
		st.pending = append(st.pending, r)
	}
}

// sweep forgets the states not refitted for an hour (or 4 StaleFor, if
// longer): KEDA asks every pollingInterval, so such a state is a deleted
// ScaledObject or an edited query, which would otherwise stay in memory
// and on /metrics for good. It looks at most 4 times per that period;
// s.mu is held.
func (s *Server) sweep(now time.Time) {
	after := max(time.Hour, 4*s.cfg.StaleFor)
	if now.Sub(s.swept) < after/4 {
		return
	}
	s.swept = now
	live := map[string]bool{}
	var gone []string
	for sk, st := range s.state {
		if now.Sub(st.fitted) > after {
			delete(s.state, sk)
			gone = append(gone, st.key)
		} else {
			live[st.key] = true
		}
	}
	for _, k := range gone {
		if !live[k] {
			s.metrics.forget(k)
		}
	}
}

func labels(l map[string]string) string {
	parts := make([]string, 0, len(l))
	for k, v := range l {
		parts = append(parts, k+"="+fmt.Sprintf("%q", v))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}
