package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// PubSubEmulatorPath is where the Google Cloud SDK's Debian package puts
// the Pub/Sub emulator.
const PubSubEmulatorPath = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"

// requireEmulators is the switch that makes a missing emulator an error
// (CI sets it).
const requireEmulators = "REFIT_REQUIRE_EMULATORS"

// StartPubSubEmulator runs Google's Pub/Sub emulator on a free port until
// the test ends and returns its host:port. It takes about 10 s to start:
// start one per package and isolate tests by project ID.
func StartPubSubEmulator(t testing.TB) (hostPort string) {
	t.Helper()
	if _, err := os.Stat(PubSubEmulatorPath); err != nil {
		Missing(t, "the Pub/Sub emulator ("+PubSubEmulatorPath+")", requireEmulators)
	}
	Need(t, "java", requireEmulators)
	dir := t.TempDir()
	var errs []error
	// The free port may be taken before the emulator binds it: try again.
	for range 3 {
		hostPort, err := startPubSubEmulator(t, dir)
		if err == nil {
			return hostPort
		}
		errs = append(errs, err)
		if errors.Is(err, errNotReady) {
			break
		}
	}
	t.Fatalf("start Pub/Sub emulator: %v", errors.Join(errs...))
	return ""
}

var errNotReady = errors.New("not accepting connections within 60s")

func startPubSubEmulator(t testing.TB, dir string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logPath := filepath.Join(dir, fmt.Sprintf("pubsub-emulator-%d.log", port))
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(PubSubEmulatorPath, "--host=127.0.0.1", "--port="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The script execs java, but should it ever fork instead, killing the
	// process group still takes the JVM down.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return "", err
	}
	exited := make(chan error, 1)
	go func() {
		exited <- cmd.Wait()
		_ = logFile.Close()
	}()
	kill := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	deadline := start.Add(60 * time.Second)
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = conn.Close()
			t.Cleanup(func() {
				kill()
				<-exited
			})
			t.Logf("Pub/Sub emulator on %s ready after %s", addr, time.Since(start).Round(10*time.Millisecond))
			return addr, nil
		}
		select {
		case err := <-exited:
			kill() // any children left behind
			return "", fmt.Errorf("emulator exited (%v): %s", err, tail(logPath))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			kill()
			<-exited
			return "", fmt.Errorf("%w: %s", errNotReady, tail(logPath))
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the end of a log for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
