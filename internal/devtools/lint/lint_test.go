package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refit-ml/refit/internal/testenv"
)

// TestLintReportsVetAndStaticcheck runs the gate's lint on testdata/bad, a
// module with one finding of each kind (and a file the build leaves out), so the gate cannot pass by running
// fewer analyzers than it says.
func TestLintReportsVetAndStaticcheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the lint tool")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "lint")
	// Built as the Makefile's gate builds it (plain), so a `make test` links it from the cache.
	build := exec.Command("go", "build", "-tags=refitlint", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// A copy, plus a file the build leaves out whose +build line contradicts
	// its //go:build: written here, since gofmt would mend it in the tree.
	dir := t.TempDir()
	for _, name := range []string{"go.mod", "bad.go"} {
		b, err := os.ReadFile(filepath.Join("testdata", "bad", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ignored := "//go:build ignore\n// +build linux\n\npackage bad\n"
	if err := os.WriteFile(filepath.Join(dir, "ignored.go"), []byte(ignored), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "./...")
	cmd.Dir = dir
	// The flags the tests were built with: the standard library's export
	// data and facts come from the gate's run.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS="+strings.Join(testenv.BuildFlags(), " "))
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Fatalf("want exit status 1 for findings, got %v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{
		"bad.go:11:44: fmt.Sprintf format %d has arg \"x\" of wrong type string (printf)",
		"bad.go:11:43: Printf format %d has arg #1 of wrong type string (SA5009)",
		"bad.go:14:14: Copy passes lock by value: sync.Mutex (copylocks)",
		"bad.go:16:6: func unused is unused (U1000)",
		"bad.go:21:1: this linter directive didn't match anything; should it be removed? (staticcheck)",
		"ignored.go:2:1: +build lines do not match //go:build condition (buildtag)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(got, "silenced") {
		t.Errorf("//lint:ignore did not silence U1000")
	}
	if t.Failed() {
		t.Logf("output:\n%s", got)
	}
}
