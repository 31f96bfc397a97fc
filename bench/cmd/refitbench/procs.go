package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/refit-ml/refit/bench"
)

// CPU sets: servers on one, load generators on the other, so the two do
// not fight for a core (on a one-core machine nothing is pinned).
const serverCPU, loadCPU = "0", "1"

func pinned(cpu string, name string, args ...string) *exec.Cmd {
	if _, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() >= 2 {
		return exec.Command("taskset", append([]string{"-c", cpu, name}, args...)...)
	}
	return exec.Command(name, args...)
}

// proc is a server process started by the suite.
type proc struct {
	name   string
	cmd    *exec.Cmd
	url    string
	log    string
	exited chan struct{}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startServer starts cmd with its output in logDir/name.log and waits for
// GET url+health to answer 200.
func startServer(ctx context.Context, logDir, name string, cmd *exec.Cmd, url, health string) (*proc, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // gunicorn's workers go with it
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, url: url, log: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + health)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited at start (%v); see %s", name, cmd.ProcessState, logPath)
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("%s did not become healthy; see %s", name, logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) stop() {
	// The whole process group: taskset execs the server, gunicorn forks.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// peakRSS reads the process's high-water resident set (VmHWM), in MiB.
func (p *proc) peakRSS() float64 { return procStatusMB(p.cmd.Process.Pid, "VmHWM:") }

// procStatusMB reads a kB field of /proc/<pid>/status (VmHWM:, VmRSS:) in MiB.
func procStatusMB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// loadRun is one load generator process.
type loadRun struct {
	url      string
	batch    int
	conns    int
	rate     float64
	duration time.Duration
	warmup   time.Duration
}

func (s *suiteState) load(ctx context.Context, l loadRun) (bench.Result, error) {
	args := []string{"load", "-url", l.url, "-batch", strconv.Itoa(l.batch), "-conns", strconv.Itoa(l.conns),
		"-rate", strconv.FormatFloat(l.rate, 'f', 1, 64), "-duration", l.duration.String(), "-warmup", l.warmup.String()}
	cmd := pinned(loadCPU, s.self, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return bench.Result{}, fmt.Errorf("load %v: %w", args, err)
	}
	var res bench.Result
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("load output %q: %w", out, err)
	}
	if res.Requests == 0 {
		return res, errors.New("load: no request succeeded: " + res.FirstErr)
	}
	return res, nil
}
