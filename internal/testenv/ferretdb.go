package testenv

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartFerretDB runs FerretDB v1 (SQLite handler, data in a temporary
// directory) as a process of its own until the test ends, and returns its
// MongoDB URI.
//
// FerretDB is internal/devtools/ferretdb, a module of its own, built
// plainly by the go command running the tests and kept for later runs
// (ferretBinary). Linked into the tests instead, FerretDB, SQLite
// transpiled to Go and their drivers were compiled with -race, vetted and
// linked into every test binary that starts one: a large share of a cold
// `make test`.
func StartFerretDB(t testing.TB) (uri string) {
	t.Helper()
	bin, err := ferretBinary()
	if err != nil {
		t.Fatalf("build FerretDB: %v", err)
	}
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-dir", t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start FerretDB: %v", err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("FerretDB did not stop within 30s")
			<-exited
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text() // the URI, printed once the listener is bound
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case uri, ok := <-lines:
		if !ok || !strings.HasPrefix(uri, "mongodb://") {
			t.Fatalf("FerretDB did not start: %q\n%s", uri, stderr.String())
		}
		return uri
	case <-time.After(60 * time.Second):
		t.Fatalf("FerretDB printed no URI within 60s\n%s", stderr.String())
	}
	return ""
}

var ferret struct {
	once sync.Once
	bin  string
	err  error
}

// ferretBinary builds internal/devtools/ferretdb, once per source: the
// binary is kept in the temporary directory under a hash of the module's
// files, so later test binaries and runs start it at once. Concurrent
// builders each write a file of their own and rename it into place.
func ferretBinary() (string, error) {
	ferret.once.Do(func() {
		_, here, _, _ := runtime.Caller(0)
		src := filepath.Join(filepath.Dir(here), "..", "devtools", "ferretdb")
		h := sha256.New()
		for _, name := range []string{"go.mod", "go.sum", "main.go"} {
			b, err := os.ReadFile(filepath.Join(src, name))
			if err != nil {
				ferret.err = err
				return
			}
			fmt.Fprintf(h, "%s %d\n", name, len(b))
			h.Write(b)
		}
		// ferretdb_no_postgresql: the SQLite handler is the only one used, and
		// leaving out PostgreSQL's (pgx) shortens a cold build.
		buildArgs := []string{"build", "-tags=ferretdb_no_postgresql", "-ldflags=-w"} // no DWARF: nothing debugs it
		fmt.Fprintln(h, runtime.Version(), runtime.GOOS, runtime.GOARCH, buildArgs)
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("refit-testenv-%d", os.Getuid()))
		if ferret.err = os.MkdirAll(dir, 0o700); ferret.err != nil {
			return
		}
		ferret.bin = filepath.Join(dir, fmt.Sprintf("ferretdb-%x", h.Sum(nil)[:8]))
		if _, err := os.Stat(ferret.bin); err == nil {
			return
		}
		tmp := fmt.Sprintf("%s.%d", ferret.bin, os.Getpid())
		// go test puts its toolchain's bin first on PATH. A plain build
		// whatever the tests were built with (under -race every query is
		// several times slower), outside any workspace.
		cmd := exec.Command("go", append(buildArgs, "-o", tmp, ".")...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			ferret.err = fmt.Errorf("go build in %s: %w\n%s", src, err, out)
			return
		}
		ferret.err = os.Rename(tmp, ferret.bin)
	})
	return ferret.bin, ferret.err
}

// lockedBuffer collects a process's output for error messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
