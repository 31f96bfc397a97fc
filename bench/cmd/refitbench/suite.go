package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

type suiteConfig struct {
	out    string
	quick  bool
	only   string
	python string
	rev    string
}

type suiteState struct {
	cfg    suiteConfig
	self   string // this binary, run again as the load generator
	refit  string // the refit binary under test
	report *report
}

func (s *suiteState) wants(w string) bool {
	return s.cfg.only == "" || slices.Contains(strings.Split(s.cfg.only, ","), w)
}

// durations of the measured runs and warm-ups.
func (s *suiteState) measure() (run, warm time.Duration) {
	if s.cfg.quick {
		return time.Second, 300 * time.Millisecond
	}
	return 5 * time.Second, 2 * time.Second
}

func (s *suiteState) reps() int {
	if s.cfg.quick {
		return 1
	}
	return 3
}

func suite(ctx context.Context, cfg suiteConfig) error {
	if err := os.MkdirAll(filepath.Join(cfg.out, "logs"), 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	s := &suiteState{cfg: cfg, self: self, refit: filepath.Join(cfg.out, "refit")}
	if err := buildRefit(ctx, cfg, s.refit); err != nil {
		return err
	}
	s.report = newReport(cfg)
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"serving", s.serving}, {"swap", s.swap}, {"freshness", s.freshness}, {"throughput", s.throughput},
	}
	for _, st := range steps {
		if !s.wants(st.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s (load: %s)\n", st.name, loadavg())
		if err := st.run(ctx); err != nil {
			s.report.note("%s failed: %v", st.name, err)
			fmt.Fprintf(os.Stderr, "%s: %v\n", st.name, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	s.report.End = time.Now().UTC()
	s.report.LoadEnd = loadavg()
	return s.report.write(cfg.out)
}

// buildRefit builds the refit binary from the working tree, or from a git
// revision (exported to a scratch folder, so that uncommitted work in the
// tree neither breaks nor flatters the figures).
func buildRefit(ctx context.Context, cfg suiteConfig, bin string) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	src := "."
	if cfg.rev != "" {
		src = filepath.Join(cfg.out, "src")
		if err := os.RemoveAll(src); err != nil {
			return err
		}
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		export := exec.CommandContext(ctx, "sh", "-c", `git archive "$1" | tar -x -C "$2"`, "sh", cfg.rev, src)
		export.Stderr = os.Stderr
		if err := export.Run(); err != nil {
			return fmt.Errorf("export %s: %w", cfg.rev, err)
		}
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/refit")
	build.Dir = src
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build refit (run from the repository root): %w", err)
	}
	return nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

// refitProc starts `refit run` on a fresh data folder.
func (s *suiteState) refitProc(ctx context.Context, name string, extraEnv ...string) (*proc, error) {
	dir, err := filepath.Abs(filepath.Join(s.cfg.out, name+"-data"))
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := pinned(serverCPU, s.refit, "run")
	cmd.Env = append(os.Environ(), "REFIT_DATA_DIR="+dir, "REFIT_HTTP_ADDR="+addr, "REFIT_LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, extraEnv...)
	return startServer(ctx, filepath.Join(s.cfg.out, "logs"), name, cmd, "http://"+addr, "/healthz")
}

func upload(ctx context.Context, base, name string, body io.Reader) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/datasets/housing/uploads?name="+name, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("upload %s: %s: %s", name, resp.Status, b)
	}
	return nil
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func postJSON(ctx context.Context, url string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, b)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// The parts of the gateway's JSON the suite reads.
type modelStatus struct {
	Ready bool `json:"ready"`
	Model *struct {
		ID             string `json:"id"`
		DatasetVersion int    `json:"dataset_version"`
		Sequence       int64  `json:"sequence"`
	} `json:"model"`
}

type runsPage struct {
	Runs []struct {
		ID        string    `json:"id"`
		Spec      string    `json:"spec"`
		Version   int       `json:"version"`
		CreatedAt time.Time `json:"created_at"`
	} `json:"runs"`
}

type promotionsPage struct {
	Promotions []struct {
		Sequence   int64     `json:"sequence"`
		RunID      string    `json:"run_id"`
		Version    int       `json:"version"`
		PromotedAt time.Time `json:"promoted_at"`
	} `json:"promotions"`
	Decisions []struct {
		RunID       string    `json:"run_id"`
		Promoted    bool      `json:"promoted"`
		EvalVersion int       `json:"eval_version"`
		DecidedAt   time.Time `json:"decided_at"`
	} `json:"decisions"`
}

type datasetStatus struct {
	Versions []struct {
		Number    int       `json:"number"`
		Rows      int       `json:"rows"`
		CreatedAt time.Time `json:"created_at"`
	} `json:"versions"`
	Ingests []struct {
		Source struct {
			Object string `json:"object"`
		} `json:"source"`
		Accepted int       `json:"accepted"`
		StagedAt time.Time `json:"staged_at"`
	} `json:"ingests"`
}

// waitDecided waits until every spec's run on version v has a decision.
func waitDecided(ctx context.Context, base string, v, specs int, timeout time.Duration) (promotionsPage, error) {
	deadline := time.Now().Add(timeout)
	for {
		var p promotionsPage
		if err := getJSON(ctx, base+"/v1/datasets/housing/promotions", &p); err != nil {
			return p, err
		}
		n := 0
		for _, d := range p.Decisions {
			if d.EvalVersion >= v {
				n++
			}
		}
		if n >= specs {
			return p, nil
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("version %d: %d of %d decisions after %v", v, n, specs, timeout)
		}
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func numCPU() int { return runtime.NumCPU() }
