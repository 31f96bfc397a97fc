package scaler

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/refit-ml/refit/internal/promapi"
)

// fakeProm answers QueryRange with a function.
type fakeProm struct {
	QueryRangeFn func(query string, start, end time.Time, step time.Duration) ([]promapi.Series, error)
	calls        atomic.Int32
}

func (f *fakeProm) QueryRange(_ context.Context, q string, start, end time.Time, step time.Duration) ([]promapi.Series, error) {
	f.calls.Add(1)
	return f.QueryRangeFn(q, start, end, step)
}

// rate is a daily-shaped request rate: low at night, a peak at 14:00.
func rate(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	return 100 + 80*math.Sin(2*math.Pi*(h-8)/24)
}

// seasonal samples f over [start, end] every step.
func seasonal(f func(time.Time) float64) func(string, time.Time, time.Time, time.Duration) ([]promapi.Series, error) {
	return func(_ string, start, end time.Time, step time.Duration) ([]promapi.Series, error) {
		var s promapi.Series
		for t := start; !t.After(end); t = t.Add(step) {
			s.Samples = append(s.Samples, promapi.Sample{T: t, V: f(t)})
		}
		return []promapi.Series{s}, nil
	}
}

var (
	// 10:00 on a rising edge: the rate is going up towards the 14:00 peak.
	morning = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	okMeta  = map[string]string{"query": "sum(rate(prediction_requests_total[1m]))", "horizon": "10m", "history": "3d", "step": "5m", "target": "50", "activationTarget": "1", "seasons": "1d", "scalerAddress": "ignored:9090"}
)

func with(kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range okMeta {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(m, kv[i])
		} else {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}

func TestGetMetrics(t *testing.T) {
	down := func(string, time.Time, time.Time, time.Duration) ([]promapi.Series, error) {
		return nil, fmt.Errorf("%w: dial tcp: connection refused", promapi.ErrUnavailable)
	}
	tests := []struct {
		name      string
		meta      map[string]string
		prom      func(string, time.Time, time.Time, time.Duration) ([]promapi.Series, error)
		wantCode  codes.Code
		wantInMsg string
		check     func(t *testing.T, v float64)
	}{
		{name: "seasonal: the forecast 10 min ahead, above the current value", meta: okMeta, prom: seasonal(rate),
			check: func(t *testing.T, v float64) {
				want := rate(morning.Add(10 * time.Minute))
				if math.Abs(v-want) > 0.5 || v <= rate(morning) {
					t.Fatalf("value %.3f, want %.3f (current %.3f)", v, want, rate(morning))
				}
			}},
		{name: "missing query", meta: with("query", ""), wantCode: codes.InvalidArgument, wantInMsg: "metadata query"},
		{name: "missing horizon", meta: with("horizon", ""), wantCode: codes.InvalidArgument, wantInMsg: "metadata horizon"},
		{name: "horizon 0", meta: with("horizon", "0"), wantCode: codes.InvalidArgument, wantInMsg: "metadata horizon"},
		{name: "horizon longer than the history", meta: with("horizon", "4d"), wantCode: codes.InvalidArgument, wantInMsg: "shorter than the history"},
		{name: "history not a duration", meta: with("history", "two weeks"), wantCode: codes.InvalidArgument, wantInMsg: "metadata history"},
		{name: "too many points", meta: with("history", "14d", "step", "15s"), wantCode: codes.InvalidArgument, wantInMsg: "metadata step"},
		{name: "missing target", meta: with("target", ""), wantCode: codes.InvalidArgument, wantInMsg: "metadata target"},
		{name: "negative target", meta: with("target", "-3"), wantCode: codes.InvalidArgument, wantInMsg: "metadata target"},
		{name: "activationTarget NaN", meta: with("activationTarget", "NaN"), wantCode: codes.InvalidArgument, wantInMsg: "metadata activationTarget"},
		{name: "season shorter than 4 steps", meta: with("seasons", "10m"), wantCode: codes.InvalidArgument, wantInMsg: "metadata seasons"},
		{name: "harmonics not a number", meta: with("harmonics", "x"), wantCode: codes.InvalidArgument, wantInMsg: "metadata harmonics"},
		{name: "query returning several series", meta: okMeta, wantCode: codes.InvalidArgument, wantInMsg: "returns 2 series",
			prom: func(string, time.Time, time.Time, time.Duration) ([]promapi.Series, error) {
				return []promapi.Series{{Labels: map[string]string{"pod": "a"}}, {Labels: map[string]string{"pod": "b"}}}, nil
			}},
		{name: "query Prometheus refuses", meta: okMeta, wantCode: codes.InvalidArgument, wantInMsg: "parse error",
			prom: func(string, time.Time, time.Time, time.Duration) ([]promapi.Series, error) {
				return nil, &promapi.BadQueryError{Type: "bad_data", Msg: "parse error at char 3"}
			}},
		{name: "empty history is 0", meta: okMeta,
			prom:  func(string, time.Time, time.Time, time.Duration) ([]promapi.Series, error) { return nil, nil },
			check: func(t *testing.T, v float64) { assertEq(t, v, 0) }},
		{name: "NaN values in the range are dropped", meta: okMeta,
			prom: seasonal(func(t time.Time) float64 {
				if t.Minute()%15 == 0 && !t.Equal(morning) {
					return math.NaN()
				}
				return rate(t)
			}),
			check: func(t *testing.T, v float64) {
				if want := rate(morning.Add(10 * time.Minute)); math.Abs(v-want) > 0.5 {
					t.Fatalf("value %.3f, want %.3f", v, want)
				}
			}},
		{name: "history shorter than the horizon: the current value", meta: okMeta,
			prom: func(string, time.Time, time.Time, time.Duration) ([]promapi.Series, error) {
				return []promapi.Series{{Samples: []promapi.Sample{{T: morning.Add(-5 * time.Minute), V: 3}, {T: morning, V: 4}}}}, nil
			},
			check: func(t *testing.T, v float64) { assertEq(t, v, 4) }},
		{name: "too little history for a season: the current value", meta: okMeta,
			prom: func(q string, _, end time.Time, step time.Duration) ([]promapi.Series, error) {
				return seasonal(rate)(q, end.Add(-6*time.Hour), end, step)
			},
			check: func(t *testing.T, v float64) { assertEq(t, v, rate(morning)) }},
		{name: "Prometheus down and nothing good yet", meta: okMeta, prom: down, wantCode: codes.Unavailable, wantInMsg: "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prom := &fakeProm{QueryRangeFn: tt.prom}
			if prom.QueryRangeFn == nil {
				prom.QueryRangeFn = func(string, time.Time, time.Time, time.Duration) ([]promapi.Series, error) {
					t.Fatal("Prometheus queried for bad metadata")
					return nil, nil
				}
			}
			s, err := New(Config{Prometheus: prom, Now: func() time.Time { return morning }})
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.GetMetrics(context.Background(), &externalscaler.GetMetricsRequest{
				ScaledObjectRef: &externalscaler.ScaledObjectRef{Name: "gateway", Namespace: "refit-web", ScalerMetadata: tt.meta},
				MetricName:      "s1-forecast",
			})
			if tt.wantCode != codes.OK {
				if status.Code(err) != tt.wantCode || !strings.Contains(err.Error(), tt.wantInMsg) {
					t.Fatalf("err %v, want %s containing %q", err, tt.wantCode, tt.wantInMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			mv := res.GetMetricValues()
			if len(mv) != 1 || mv[0].GetMetricName() != "s1-forecast" || mv[0].GetMetricValue() != int64(math.Ceil(mv[0].GetMetricValueFloat())) {
				t.Fatalf("response %v", res)
			}
			tt.check(t, mv[0].GetMetricValueFloat())
		})
	}
}

func assertEq(t *testing.T, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9 {
		t.Fatalf("value %v, want %v", got, want)
	}
}

// Prometheus going down: the last good forecast for StaleFor, then
// Unavailable; and a fit younger than Refresh is reused without a query.
func TestStaleAndRefresh(t *testing.T) {
	now := morning
	var up atomic.Bool
	up.Store(true)
	prom := &fakeProm{QueryRangeFn: func(q string, start, end time.Time, step time.Duration) ([]promapi.Series, error) {
		if !up.Load() {
			return nil, fmt.Errorf("%w: timeout", promapi.ErrUnavailable)
		}
		return seasonal(rate)(q, start, end, step)
	}}
	reg := prometheus.NewRegistry()
	s, err := New(Config{Prometheus: prom, Metrics: reg, Now: func() time.Time { return now }, StaleFor: 5 * time.Minute, Refresh: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ref := &externalscaler.ScaledObjectRef{Name: "gateway", Namespace: "refit-web", ScalerMetadata: okMeta}
	get := func() (float64, error) {
		res, err := s.GetMetrics(context.Background(), &externalscaler.GetMetricsRequest{ScaledObjectRef: ref})
		if err != nil {
			return 0, err
		}
		return res.GetMetricValues()[0].GetMetricValueFloat(), nil
	}
	first, err := get()
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Second)
	if v, err := get(); err != nil || v != first || prom.calls.Load() != 1 {
		t.Fatalf("within Refresh: %v %v, %d queries", v, err, prom.calls.Load())
	}
	up.Store(false)
	now = morning.Add(4 * time.Minute)
	if v, err := get(); err != nil || v != first {
		t.Fatalf("down for 4m (StaleFor 5m): %v %v, want the last good %v", v, err, first)
	}
	now = morning.Add(6 * time.Minute)
	if _, err := get(); status.Code(err) != codes.Unavailable {
		t.Fatalf("down beyond StaleFor: err %v, want Unavailable", err)
	}
	if got := testutil.ToFloat64(s.metrics.stale.WithLabelValues("refit-web/gateway")); got != 1 {
		t.Fatalf("stale answers %v, want 1", got)
	}
	// Back up 11 minutes after the first forecast: the one made at 10:00
	// for 10:10 is due, and its error is on the metrics.
	up.Store(true)
	now = morning.Add(11 * time.Minute)
	if _, err := get(); err != nil {
		t.Fatal(err)
	}
	due := testutil.ToFloat64(s.metrics.due.WithLabelValues("refit-web/gateway"))
	ape := testutil.ToFloat64(s.metrics.ape.WithLabelValues("refit-web/gateway"))
	actual := testutil.ToFloat64(s.metrics.actual.WithLabelValues("refit-web/gateway"))
	if math.Abs(due-first) > 1e-9 || math.Abs(ape-math.Abs(due-actual)/actual) > 1e-9 || ape > 0.02 {
		t.Fatalf("due %v (want %v), actual %v, ape %v", due, first, actual, ape)
	}
	if n, err := testutil.GatherAndCount(reg, "refit_scaler_fit_seconds", "refit_scaler_forecast", "refit_scaler_prometheus_errors_total"); err != nil || n != 3 {
		t.Fatalf("metrics: %d families, %v", n, err)
	}
}

// The protocol over a real gRPC connection with KEDA's generated client.
func TestOverGRPC(t *testing.T) {
	prom := &fakeProm{QueryRangeFn: seasonal(rate)}
	now := morning
	s, err := New(Config{Prometheus: prom, Now: func() time.Time { return now }, Refresh: -1, StreamInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	s.Register(g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	defer g.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := externalscaler.NewExternalScalerClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ref := &externalscaler.ScaledObjectRef{Name: "gateway", Namespace: "refit-web", ScalerMetadata: okMeta}

	spec, err := c.GetMetricSpec(ctx, ref)
	if err != nil || len(spec.GetMetricSpecs()) != 1 || spec.GetMetricSpecs()[0].GetTargetSizeFloat() != 50 || spec.GetMetricSpecs()[0].GetMetricName() != "forecast" {
		t.Fatalf("GetMetricSpec %v %v", spec, err)
	}
	if _, err := c.GetMetricSpec(ctx, &externalscaler.ScaledObjectRef{ScalerMetadata: with("target", "")}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("GetMetricSpec without target: %v", err)
	}
	act, err := c.IsActive(ctx, ref)
	if err != nil || !act.GetResult() {
		t.Fatalf("IsActive %v %v", act, err)
	}
	if act, err := c.IsActive(ctx, &externalscaler.ScaledObjectRef{Name: "g2", ScalerMetadata: with("activationTarget", "1000")}); err != nil || act.GetResult() {
		t.Fatalf("IsActive above the forecast: %v %v", act, err)
	}
	stream, err := c.StreamIsActive(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if r, err := stream.Recv(); err != nil || !r.GetResult() {
			t.Fatalf("stream answer %d: %v %v", i, r, err)
		}
	}
	bad, err := c.StreamIsActive(ctx, &externalscaler.ScaledObjectRef{ScalerMetadata: with("query", "")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("stream with bad metadata: %v", err)
	}
	if _, err := c.StreamMetricSpec(ctx, ref); err != nil {
		t.Fatal(err) // the call opens; Recv reports Unimplemented, which KEDA tolerates
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("timed out")
	}
}

// A ScaledObject no longer asked for (deleted, or its trigger edited) is
// forgotten after an hour, with its series on /metrics; one still asked
// for keeps its series even when another of its specs is forgotten.
func TestForgetsObjectsNoLongerAskedFor(t *testing.T) {
	now := morning
	s, err := New(Config{Prometheus: &fakeProm{QueryRangeFn: seasonal(rate)}, Now: func() time.Time { return now }, Refresh: -1})
	if err != nil {
		t.Fatal(err)
	}
	ask := func(name string, meta map[string]string) {
		t.Helper()
		ref := &externalscaler.ScaledObjectRef{Name: name, Namespace: "refit-web", ScalerMetadata: meta}
		if _, err := s.GetMetrics(context.Background(), &externalscaler.GetMetricsRequest{ScaledObjectRef: ref}); err != nil {
			t.Fatal(err)
		}
	}
	edited := with("horizon", "20m")
	ask("gateway", okMeta)
	ask("gateway", edited) // the trigger edited: a second spec for the same object
	ask("deleted", okMeta)
	for _, at := range []time.Duration{20 * time.Minute, 40 * time.Minute, 61 * time.Minute} {
		now = morning.Add(at)
		ask("gateway", okMeta)
	}
	s.mu.Lock()
	var kept []string
	for _, st := range s.state {
		kept = append(kept, st.key+" "+st.good.At.Sub(st.fitted).String())
	}
	s.mu.Unlock()
	if len(kept) != 1 || kept[0] != "refit-web/gateway 10m0s" {
		t.Fatalf("states kept: %q, want only refit-web/gateway's 10m spec", kept)
	}
	if n := testutil.CollectAndCount(s.metrics.forecast); n != 1 {
		t.Fatalf("%d forecast series, want the gateway's only", n)
	}
	if v := testutil.ToFloat64(s.metrics.forecast.WithLabelValues("refit-web/gateway")); v <= 0 {
		t.Fatalf("the gateway's forecast series: %v", v)
	}
}
