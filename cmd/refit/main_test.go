package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/refit-ml/refit/internal/testenv"
)

// binaries holds what this package's tests build once and share: the
// refit binary, in a folder removed when the tests end.
var binaries struct {
	refit func() (string, error)
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "refit-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cmd/refit tests:", err)
		os.Exit(1)
	}
	binaries.refit = sync.OnceValues(func() (string, error) {
		bin := filepath.Join(dir, "refit")
		var out bytes.Buffer
		cmd := exec.Command("go", testenv.BuildArgs("-buildvcs=auto", "-o", bin, ".")...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("go build ./cmd/refit: %w\n%s", err, out.String())
		}
		return bin, nil
	})
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
