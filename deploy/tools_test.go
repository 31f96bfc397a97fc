package deploy_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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

// requireTool finds an external tool. A missing tool fails the test with
// how to install it, unless REFIT_SKIP_DEPLOY_TOOLS=1 (then it skips).
func requireTool(t *testing.T, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := name + " is not installed: " + install
	if os.Getenv("REFIT_SKIP_DEPLOY_TOOLS") == "1" {
		t.Skip(msg + " (skipped: REFIT_SKIP_DEPLOY_TOOLS=1)")
	}
	t.Fatal(msg + " (or set REFIT_SKIP_DEPLOY_TOOLS=1 to skip the checks that need it)")
	return ""
}

const (
	installKubectl    = "apt-get install -y kubectl (or google-cloud-cli's kubectl component)"
	installPromtool   = "apt-get install -y prometheus (Debian's package ships promtool)"
	installShellcheck = "apt-get install -y shellcheck"
	installGcloud     = "apt-get install -y google-cloud-cli (Google's Cloud SDK apt repository; .ci/run's google-cloud-cli-pubsub-emulator pulls it in)"
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
