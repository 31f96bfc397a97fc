package main

import (
	"context"
	"fmt"
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
	sizes  string // throughput file sizes, comma separated
	// freshSizes are the dataset sizes of the freshness curve.
	freshSizes string
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
		{"serving", s.serving}, {"swap", s.swap}, {"freshness", s.freshness}, {"throughput", s.throughput}, {"trainmem", s.trainMem},
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
	build := exec.CommandContext(ctx, "go", "build", "-tags=disable_grpc_modules", "-o", bin, "./cmd/refit") // as the Makefile and the image build it
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
	return s.refitProcOn(ctx, name, serverCPU, extraEnv...)
}

// refitProcOn starts `refit run` on the CPUs listed (all when empty).
func (s *suiteState) refitProcOn(ctx context.Context, name, cpus string, extraEnv ...string) (*proc, error) {
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
	cmd := exec.Command(s.refit, "run")
	if cpus != "" {
		cmd = pinned(cpus, s.refit, "run")
	}
	cmd.Env = append(os.Environ(), "REFIT_DATA_DIR="+dir, "REFIT_HTTP_ADDR="+addr, "REFIT_LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, extraEnv...)
	return startServer(ctx, filepath.Join(s.cfg.out, "logs"), name, cmd, "http://"+addr, "/healthz")
}

func numCPU() int { return runtime.NumCPU() }
