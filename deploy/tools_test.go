package deploy_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refit-ml/refit/internal/testenv"
)

// root is the repository, the parent of this package's directory.
func root(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// The non-Go programs the checks here shell out to, and the switches that
// make their absence an error (.ci/run sets them all).
const (
	requireShellcheck = "REFIT_REQUIRE_SHELLCHECK"
	requireGcloud     = "REFIT_REQUIRE_GCLOUD"
	requirePromtool   = "REFIT_REQUIRE_PROMTOOL"
)

// run runs a command and returns its standard output; a failure fails the
// test with both outputs.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, errOut, err := runErr(dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func runErr(dir string, env []string, name string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// need finds a non-Go program, or skips (fails when require is set).
func need(t *testing.T, program, require string) string {
	t.Helper()
	return testenv.Need(t, program, require)
}
