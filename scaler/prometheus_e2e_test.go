package scaler_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/refit-ml/refit/internal/promapi"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/internal/testenv"
)

// A day compressed into period: a quiet night and an afternoon peak.
const (
	period  = 30 * time.Second
	base    = 10.0
	amp     = 90.0
	horizon = 8 * time.Second
	// staleFor bounds the last good answer once Prometheus stops.
	staleFor = 3 * time.Second
)

func load(since time.Duration) float64 {
	c := (1 - math.Cos(2*math.Pi*since.Seconds()/period.Seconds())) / 2
	return base + amp*c*c
}

// The gateway's own counter of served predictions (gateway/server.go):
// what the gke overlay's ScaledObject scales on, over a window fitted to
// the compressed day.
const query = `sum(rate(prediction_requests_total{dataset="housing",status="2xx"}[4s]))`

// TestPredictsAheadOfRealPrometheus: the refit binary, built here, serves a
// trained housing model (refit run); a load generator sends it predict
// requests at a daily-shaped rate; a real Prometheus scrapes the gateway's
// /metrics every second; refit serve --target=scaler reads that Prometheus
// and KEDA's generated client asks it. Its answer must cross the midpoint
// of each rising edge at least horizon/2 before the load itself does,
// while the reactive query (what KEDA's prometheus trigger sees) crosses
// after it.
func TestPredictsAheadOfRealPrometheus(t *testing.T) {
	prometheusBin := testenv.Need(t, "prometheus", "REFIT_REQUIRE_PROMETHEUS")
	if testing.Short() {
		t.Skip("about 3 minutes with the refit binary and a real Prometheus; not with -short")
	}
	bin := buildRefit(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	// The gateway and the workers, in one process, with a model promoted.
	gw := startRefit(t, bin, map[string]string{
		"REFIT_DATA_DIR": t.TempDir(), "REFIT_RECONCILE_INTERVAL": "1s", "REFIT_WATCH_INTERVAL": "50ms", "REFIT_MODEL_REFRESH": "1s",
	}, regexp.MustCompile(`refit listening on (http://\S+)`), "run")
	gateway := gw.match[1]
	body := promoteHousing(ctx, t, gateway)

	// The scaler, its Prometheus URL fixed before Prometheus starts, so
	// that Prometheus can scrape it too.
	promAddr := freeAddr(t)
	sc := startRefit(t, bin, map[string]string{
		"REFIT_PROMETHEUS_URL": "http://" + promAddr, "REFIT_PROMETHEUS_TIMEOUT": "2s", "REFIT_SCALER_ADDR": "127.0.0.1:0",
		"REFIT_SCALER_REFRESH": "1ms", "REFIT_SCALER_STALE_FOR": staleFor.String(),
	}, regexp.MustCompile(`grpc (\S+) and (http://\S+)`), "serve", "--target=scaler")
	for _, probe := range []string{"/healthz", "/readyz"} {
		if code := get(ctx, t, sc.match[2]+probe); code != http.StatusOK {
			t.Fatalf("scaler %s: %d", probe, code)
		}
	}
	promURL, stopPrometheus := startPrometheus(ctx, t, prometheusBin, promAddr, hostPort(gateway), hostPort(sc.match[2]))

	// The load: the requests due by now under load(), dispatched every
	// 10 ms to a few senders, bounded in count and in time.
	start := time.Now()
	var sent, failed, firstFailure atomic.Int64
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var senders sync.WaitGroup
	due := make(chan struct{}, 1000)
	cl := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for range 8 {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for range due {
				if status := post(loadCtx, cl, gateway+"/v1/models/housing:predict", body); status != http.StatusOK && loadCtx.Err() == nil {
					if failed.Add(1) == 1 {
						firstFailure.Store(int64(status))
					}
				}
			}
		}()
	}
	go func() {
		defer close(due)
		const maxRequests = 30000
		var owed float64
		last := start
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for sent.Load() < maxRequests {
			select {
			case <-loadCtx.Done():
				return
			case now := <-tick.C:
				owed += load(now.Sub(start)) * now.Sub(last).Seconds()
				last = now
				for float64(sent.Load()) < owed {
					select {
					case due <- struct{}{}:
						sent.Add(1)
					case <-loadCtx.Done():
						return
					}
				}
			}
		}
	}()

	prom, err := promapi.New(promapi.Config{URL: promURL, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(sc.match[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	keda := externalscaler.NewExternalScalerClient(conn)
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
	senders.Wait()
	t.Logf("%d predict requests sent in %s, %d failed (the first with status %d; 0: no answer)",
		sent.Load(), time.Since(start).Round(time.Second), failed.Load(), firstFailure.Load())
	if failed.Load()*100 > sent.Load() {
		t.Errorf("%d of %d predict requests failed", failed.Load(), sent.Load())
	}

	// Prometheus scraped the scaler's own metrics too: the forecast it
	// answered KEDA is there, by scaled object.
	vs, err := prom.Query(ctx, `refit_scaler_forecast{scaledobject="refit-web/gateway"}`, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Samples[0].V <= 0 {
		t.Errorf("refit_scaler_forecast as Prometheus scraped it: %+v", vs)
	}

	// Prometheus stops: the scaler answers its last good forecast for
	// REFIT_SCALER_STALE_FOR, then Unavailable, for KEDA's fallback.
	res, err := keda.GetMetrics(ctx, &externalscaler.GetMetricsRequest{ScaledObjectRef: ref})
	if err != nil {
		t.Fatal(err)
	}
	lastGood := res.GetMetricValues()[0].GetMetricValueFloat()
	stopPrometheus()
	stopped := time.Now()
	res, err = keda.GetMetrics(ctx, &externalscaler.GetMetricsRequest{ScaledObjectRef: ref})
	if err != nil || res.GetMetricValues()[0].GetMetricValueFloat() != lastGood {
		t.Fatalf("Prometheus down for %s (stale bound %s): %v %v, want the last good %v", time.Since(stopped).Round(time.Millisecond), staleFor, res, err, lastGood)
	}
	time.Sleep(time.Until(stopped.Add(staleFor + time.Second)))
	if _, err := keda.GetMetrics(ctx, &externalscaler.GetMetricsRequest{ScaledObjectRef: ref}); status.Code(err) != codes.Unavailable {
		t.Fatalf("Prometheus down beyond the stale bound: %v, want Unavailable", err)
	}
	t.Logf("Prometheus stopped: the last good forecast %.1f answered, then Unavailable after %s", lastGood, staleFor)
}

// buildRefit builds the refit binary once into the test's directory.
func buildRefit(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "refit")
	began := time.Now()
	out, err := exec.Command("go", testenv.BuildArgs("-o", bin, "github.com/refit-ml/refit/cmd/refit")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built refit in %s", time.Since(began).Round(100*time.Millisecond))
	return bin
}

// process is one refit OS process; match is its startup line's match.
type process struct {
	match []string
}

// startRefit runs bin with args and settings (none inherited from the
// developer's REFIT_* or emulator variables) and waits for the line want
// matches on its stdout. It is stopped with SIGINT at cleanup, and its
// output is logged if the test failed.
func startRefit(t *testing.T, bin string, settings map[string]string, want *regexp.Regexp, args ...string) *process {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "REFIT_") && !strings.HasSuffix(k, "_EMULATOR_HOST") {
			env = append(env, kv)
		}
	}
	env = append(env, "REFIT_HTTP_ADDR=127.0.0.1:0", "REFIT_LOG_LEVEL=warn")
	for k, v := range settings {
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var stderr syncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("refit %s stderr:\n%s", strings.Join(args, " "), stderr.String())
		}
	})
	matches := make(chan []string, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := want.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case matches <- m:
				default:
				}
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case m := <-matches:
		return &process{match: m}
	case <-exited:
		t.Fatalf("refit %s exited at start:\n%s", strings.Join(args, " "), stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("refit %s did not start in 60s:\n%s", strings.Join(args, " "), stderr.String())
	}
	return nil
}

// promoteHousing uploads a small generated housing CSV through the
// gateway's API, waits until the gateway serves the model trained on it,
// and returns a predict request body for one of its houses.
func promoteHousing(ctx context.Context, t *testing.T, gateway string) []byte {
	t.Helper()
	var csvBody bytes.Buffer
	if err := (synth.Housing{Seed: 15}).Write(&csvBody, 1000); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(csvBody.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	house := map[string]string{}
	for i, name := range recs[0] {
		if name != "price" {
			house[name] = recs[1][i]
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, gateway+"/v1/datasets/housing/uploads?name=scaler-e2e", bytes.NewReader(csvBody.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/csv")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", res.StatusCode, b)
	}
	body, err := json.Marshal(map[string]any{"instances": []map[string]string{house}})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for deadline := began.Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var m struct {
			Ready bool `json:"ready"`
		}
		if res, err := http.Get(gateway + "/v1/models/housing"); err == nil {
			_ = json.NewDecoder(res.Body).Decode(&m)
			res.Body.Close()
		}
		if m.Ready {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatal("the gateway serves no housing model 60s after the upload")
		}
	}
	if status := post(ctx, http.DefaultClient, gateway+"/v1/models/housing:predict", body); status != http.StatusOK {
		t.Fatalf("a first prediction: status %d", status)
	}
	t.Logf("a housing model served %s after the upload", time.Since(began).Round(100*time.Millisecond))
	return body
}

func post(ctx context.Context, cl *http.Client, url string, body []byte) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := cl.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func get(ctx context.Context, t *testing.T, url string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func hostPort(url string) string { return strings.TrimPrefix(url, "http://") }

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// freeAddr is a port free a moment ago, for a program that must be named
// before it starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startPrometheus runs the real Prometheus on addr, scraping targets every
// second, and returns its URL once it is ready, and a function stopping it
// (also called at cleanup).
func startPrometheus(ctx context.Context, t *testing.T, bin, addr string, targets ...string) (string, func()) {
	t.Helper()
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = fmt.Sprintf("%q", tg)
	}
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: refit\n    static_configs:\n      - targets: [%s]\n", strings.Join(quoted, ", "))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(func() {
		stop()
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
				return url, stop
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("prometheus at %s not ready in 30s", url)
	return "", nil
}

// syncBuffer collects a program's output while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
