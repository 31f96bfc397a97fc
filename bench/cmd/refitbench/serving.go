package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/refit-ml/refit/bench"
	"github.com/refit-ml/refit/client"
)

// Connections: the closed loop keeps 16 requests in flight (enough to
// saturate one server core); the open loop has room for 64 so that a
// slow answer delays no later send.
const closedConns, openConns = 16, 64

type target struct {
	name string
	url  string // predict URL
}

// serving compares Refit's gateway with baseline A (bare net/http) and
// baseline B (Flask + gunicorn + scikit-learn), all pinned to the server
// CPU, interleaved rep by rep so that a change in the machine's load hits
// all three alike.
func (s *suiteState) serving(ctx context.Context) error {
	train, err := bench.CSV(3, 3000)
	if err != nil {
		return err
	}
	trainPath, _ := filepath.Abs(filepath.Join(s.cfg.out, "serving-train.csv"))
	if err := os.WriteFile(trainPath, train, 0o644); err != nil {
		return err
	}
	refit, err := s.refitWithModel(ctx, "serving", train)
	if err != nil {
		return err
	}
	defer refit.stop()
	targets := []target{{"refit", refit.url + "/v1/models/housing:predict"}}

	addr, err := freeAddr()
	if err != nil {
		return err
	}
	bare, err := startServer(ctx, filepath.Join(s.cfg.out, "logs"), "bare", pinned(serverCPU, s.self, "bare", "-addr", addr), "http://"+addr, "/healthz")
	if err != nil {
		return err
	}
	defer bare.stop()
	targets = append(targets, target{"bare", bare.url + "/v1/models/housing:predict"})

	if flask, err := s.startFlask(ctx, trainPath); err != nil {
		s.report.note("baseline B (Flask) skipped: %v", err)
	} else {
		defer flask.stop()
		targets = append(targets, target{"flask", flask.url + "/v1/models/housing:predict"})
	}

	dur, warm := s.measure()
	type key struct {
		target string
		batch  int
	}
	sat := map[key][]bench.Result{}
	half := map[key][]bench.Result{}
	for _, batch := range []int{1, 32} {
		for _, t := range targets { // warm each server up once per batch size
			if _, err := s.load(ctx, loadRun{url: t.url, batch: batch, conns: closedConns, duration: warm}); err != nil {
				return fmt.Errorf("%s warm-up: %w", t.name, err)
			}
		}
		for range s.reps() {
			for _, t := range targets {
				r, err := s.load(ctx, loadRun{url: t.url, batch: batch, conns: closedConns, duration: dur})
				if err != nil {
					return fmt.Errorf("%s saturation: %w", t.name, err)
				}
				sat[key{t.name, batch}] = append(sat[key{t.name, batch}], r)
			}
		}
		for range s.reps() {
			for _, t := range targets {
				rate := statOf(rates(sat[key{t.name, batch}])).Median / 2
				r, err := s.load(ctx, loadRun{url: t.url, batch: batch, conns: openConns, rate: rate, duration: dur})
				if err != nil {
					return fmt.Errorf("%s at half saturation: %w", t.name, err)
				}
				half[key{t.name, batch}] = append(half[key{t.name, batch}], r)
			}
		}
	}

	raw := map[string]any{}
	r := s.report
	r.printf("## Serving: POST /v1/models/housing:predict\n\n")
	r.printf("Servers pinned to CPU %s, load generator (a separate process) to CPU %s. Closed loop with %d connections for saturation; open loop at half the median saturation rate with latency from the intended send time. %d × %v per figure, median (min–max).\n\n",
		serverCPU, loadCPU, closedConns, s.reps(), dur)
	r.printf("| server | instances/request | saturation req/s | predictions/s | p50 ms | p99 ms | p99.9 ms | failed | at half rate: p50 ms | p99 ms | p99.9 ms | failed |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, batch := range []int{1, 32} {
		for _, t := range targets {
			k := key{t.name, batch}
			sr, hr := sat[k], half[k]
			raw[fmt.Sprintf("%s/batch%d/saturation", t.name, batch)] = sr
			raw[fmt.Sprintf("%s/batch%d/half", t.name, batch)] = hr
			rs := statOf(rates(sr))
			r.printf("| %s | %d | %s | %s | %s | %s | %s | %d | %s | %s | %s | %d |\n", t.name, batch, rs,
				fmtNum(rs.Median*float64(batch)), statOf(field(sr, p50)), statOf(field(sr, p99)), statOf(field(sr, p999)), failed(sr),
				statOf(field(hr, p50)), statOf(field(hr, p99)), statOf(field(hr, p999)), failed(hr))
		}
	}
	ratio := func(a, b string, batch int) string {
		x, y := sat[key{a, batch}], sat[key{b, batch}]
		if len(x) == 0 || len(y) == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", statOf(rates(x)).Median/statOf(rates(y)).Median)
	}
	r.printf("\nRatios of median saturation rates: refit/bare %s (1 instance), %s (32 instances); refit/flask %s (1 instance), %s (32 instances). Refit p99 at half rate: %s ms (1 instance), %s ms (32).\n\n",
		ratio("refit", "bare", 1), ratio("refit", "bare", 32), ratio("refit", "flask", 1), ratio("refit", "flask", 32),
		statOf(field(half[key{"refit", 1}], p99)), statOf(field(half[key{"refit", 32}], p99)))
	s.report.Raw["serving"] = raw
	return nil
}

// refitWithModel starts `refit run`, uploads train and waits until every
// spec's run is decided, so that no promotion lands during the load.
func (s *suiteState) refitWithModel(ctx context.Context, name string, train []byte) (*proc, error) {
	p, err := s.refitProc(ctx, name)
	if err != nil {
		return nil, err
	}
	c := client.New(p.url)
	if _, err := c.Upload(ctx, "housing", "seed.csv", bytes.NewReader(train), int64(len(train))); err != nil {
		p.stop()
		return nil, err
	}
	if _, err := bench.WaitDecided(ctx, c, 1, 2, 60*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	if st, err := c.Model(ctx, "housing"); err != nil || !st.Ready {
		p.stop()
		return nil, fmt.Errorf("model not served after the decisions: %v", err)
	}
	return p, nil
}

// startFlask starts baseline B with gunicorn's default sync workers, two
// of them, as the seed stack deploys it.
func (s *suiteState) startFlask(ctx context.Context, trainPath string) (*proc, error) {
	check := exec.Command(s.cfg.python, "-c", "import flask, gunicorn, sklearn, pandas")
	if out, err := check.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s lacks flask/gunicorn/sklearn/pandas (make bench installs Debian's python3-flask gunicorn python3-sklearn python3-pandas): %s", s.cfg.python, bytes.TrimSpace(out))
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir, _ := filepath.Abs("bench/flask")
	cmd := pinned(serverCPU, s.cfg.python, "-m", "gunicorn", "--workers", "2", "--bind", addr, "--chdir", dir, "--log-level", "warning", "app:app")
	cmd.Env = append(os.Environ(), "BENCH_TRAIN_CSV="+trainPath)
	return startServer(ctx, filepath.Join(s.cfg.out, "logs"), "flask", cmd, "http://"+addr, "/healthz")
}

func rates(rs []bench.Result) []float64 {
	return field(rs, func(r bench.Result) float64 { return r.Rate })
}

func field(rs []bench.Result, f func(bench.Result) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

func p50(r bench.Result) float64  { return r.P50 }
func p99(r bench.Result) float64  { return r.P99 }
func p999(r bench.Result) float64 { return r.P999 }

func failed(rs []bench.Result) uint64 {
	var n uint64
	for _, r := range rs {
		n += r.Failed
	}
	return n
}
