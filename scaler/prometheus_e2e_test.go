package scaler_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/refit-ml/refit/internal/promapi"
	"github.com/refit-ml/refit/scaler"
)

const prometheusBin = "/usr/bin/prometheus"

// A day compressed into period: a quiet night and an afternoon peak.
const (
	period  = 30 * time.Second
	base    = 10.0
	amp     = 90.0
	horizon = 6 * time.Second
)

func load(since time.Duration) float64 {
	c := (1 - math.Cos(2*math.Pi*since.Seconds()/period.Seconds())) / 2
	return base + amp*c*c
}

// TestPredictsAheadOfRealPrometheus: a load generator drives a daily-shaped
// request rate at a small /metrics target, a real Prometheus scrapes it
// every second, and KEDA's generated client asks the scaler: its answer
// must cross the midpoint of each rising edge at least horizon/2 before the
// load itself does, while the reactive query (what KEDA's prometheus
// trigger sees) crosses after it.
func TestPredictsAheadOfRealPrometheus(t *testing.T) {
	if _, err := os.Stat(prometheusBin); err != nil {
		if os.Getenv("REFIT_REQUIRE_PROMETHEUS") != "" {
			t.Fatalf("REFIT_REQUIRE_PROMETHEUS is set but %s is absent", prometheusBin)
		}
		t.Skipf("%s not installed (apt-get install prometheus)", prometheusBin)
	}
	if testing.Short() {
		t.Skip("about 2 minutes with a real Prometheus; not with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 170*time.Second)
	defer cancel()

	// The scraped target: prediction_requests_total as the gateway names it.
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "prediction_requests_total"}, []string{"dataset", "code"})
	reg.MustRegister(requests)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /predict", func(w http.ResponseWriter, r *http.Request) {
		requests.WithLabelValues("reviews", "2xx").Inc()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	target := listen(t)
	go func() { _ = http.Serve(target, mux) }()

	promURL := startPrometheus(ctx, t, target.Addr().String())

	// The load: the requests due by now under load(), every 10 ms, bounded
	// in count and in time.
	start := time.Now()
	var sent atomic.Int64
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	go func() {
		const maxRequests = 30000
		cl := &http.Client{Timeout: time.Second}
		var due float64
		last := start
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for sent.Load() < maxRequests {
			select {
			case <-loadCtx.Done():
				return
			case now := <-tick.C:
				due += load(now.Sub(start)) * now.Sub(last).Seconds()
				last = now
				for float64(sent.Load()) < due {
					res, err := cl.Post("http://"+target.Addr().String()+"/predict", "text/plain", nil)
					if err == nil {
						res.Body.Close()
					}
					sent.Add(1)
				}
			}
		}
	}()

	// The scaler, served over gRPC, reading the real Prometheus.
	prom, err := promapi.New(promapi.Config{URL: promURL, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := scaler.New(scaler.Config{Prometheus: prom, Refresh: -1})
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	gl := listen(t)
	go func() { _ = g.Serve(gl) }()
	defer g.Stop()
	conn, err := grpc.NewClient(gl.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	keda := externalscaler.NewExternalScalerClient(conn)
	const query = `sum(rate(prediction_requests_total{dataset="reviews"}[4s]))`
	ref := &externalscaler.ScaledObjectRef{Name: "gateway", Namespace: "refit-web", ScalerMetadata: map[string]string{
		"query": query, "horizon": horizon.String(), "history": "90s", "step": "1s",
		"seasons": period.String(), "harmonics": "4", "target": "50", "activationTarget": "1",
	}}

	// Two rising edges after the model has seen more than one cycle:
	// cycles 2 and 3 (the load crosses the midpoint at ~9.5 s into each).
	mid := base + amp/2
	truthCross := func(cycle int) time.Duration {
		c := math.Sqrt((mid - base) / amp) // (1-cos)/2 at the crossing
		return time.Duration(cycle)*period + time.Duration(math.Acos(1-2*c)/(2*math.Pi)*float64(period))
	}
	for cycle := 2; cycle <= 3; cycle++ {
		from, to := start.Add(time.Duration(cycle)*period), start.Add(time.Duration(cycle)*period+period/2)
		if d := time.Until(from); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
		}
		var scalerAt, reactiveAt time.Duration
		var lastForecast, lastReactive float64
		for time.Now().Before(to) && (scalerAt == 0 || reactiveAt == 0) {
			now := time.Now()
			res, err := keda.GetMetrics(ctx, &externalscaler.GetMetricsRequest{ScaledObjectRef: ref, MetricName: "s1-forecast"})
			if err != nil {
				t.Fatalf("GetMetrics: %v", err)
			}
			lastForecast = res.GetMetricValues()[0].GetMetricValueFloat()
			if scalerAt == 0 && lastForecast >= mid {
				scalerAt = now.Sub(start)
			}
			vs, err := prom.Query(ctx, query, now)
			if err != nil {
				t.Fatalf("reactive query: %v", err)
			}
			if len(vs) == 1 {
				lastReactive = vs[0].Samples[0].V
				if reactiveAt == 0 && lastReactive >= mid {
					reactiveAt = time.Since(start)
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		truth := truthCross(cycle)
		t.Logf("cycle %d: the load crosses %.0f req/s at %.1fs; the scaler's forecast at %.1fs (%.1fs ahead), the reactive query at %.1fs (%.1fs behind)",
			cycle, mid, truth.Seconds(), scalerAt.Seconds(), (truth - scalerAt).Seconds(), reactiveAt.Seconds(), (reactiveAt - truth).Seconds())
		if scalerAt == 0 || reactiveAt == 0 {
			t.Fatalf("cycle %d: no crossing (last forecast %.1f, last reactive %.1f)", cycle, lastForecast, lastReactive)
		}
		if truth-scalerAt < horizon/2 {
			t.Errorf("cycle %d: the forecast rose %.1fs ahead of the load, want at least %s", cycle, (truth - scalerAt).Seconds(), horizon/2)
		}
		if reactiveAt <= truth {
			t.Errorf("cycle %d: the reactive query did not lag (%.1fs vs %.1fs)", cycle, reactiveAt.Seconds(), truth.Seconds())
		}
	}
	stopLoad()
	t.Logf("%d requests sent in %s", sent.Load(), time.Since(start).Round(time.Second))
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// startPrometheus runs the real Prometheus scraping target every second and
// returns its URL once it is ready.
func startPrometheus(ctx context.Context, t *testing.T, target string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: gateway\n    static_configs:\n      - targets: [%q]\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.CommandContext(ctx, prometheusBin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	})
	url := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(url + "/-/ready"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return url
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("prometheus at %s not ready in 30s", url)
	return ""
}
