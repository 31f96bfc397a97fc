package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Need returns the path of program, a non-Go program a test shells out to
// (java, chromium, shellcheck, gcloud, promtool). When it is not on PATH
// the test is skipped with one line naming it, so `make test` passes on a
// machine with only Go; when the switch require (REFIT_REQUIRE_...) is set,
// as .ci/run sets every one, it fails instead, so CI skips nothing.
func Need(t testing.TB, program, require string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	Missing(t, program, require)
	return ""
}

// Missing skips or fails (when require is set) a test that needs what, which
// is not there: the one line every such test prints.
func Missing(t testing.TB, what, require string) {
	t.Helper()
	if Required(require) {
		t.Fatalf("needs %s, which is not installed, and %s is set", what, require)
	}
	t.Skipf("needs %s, which is not installed (set %s=1 to fail instead)", what, require)
}

// Required reports whether the switch require is set (to anything but ""
// or "0").
func Required(require string) bool {
	v := os.Getenv(require)
	return v != "" && v != "0"
}
