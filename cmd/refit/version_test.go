package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/testenv"
)

func TestVersionFrom(t *testing.T) {
	t.Parallel()
	stamped := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}}}
	unstamped := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}
	tagged := &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}
	for _, tt := range []struct {
		name   string
		info   *debug.BuildInfo
		ok     bool
		linked string
		want   string
	}{
		{"Go's own stamp wins", stamped, true, "fff", "abc123"},
		{"the linker's revision when Go stamped none", unstamped, true, "fff", "fff"},
		{"the linker's revision without build info", nil, false, "fff", "fff"},
		{"a module version (go install …@v1.2.3)", tagged, true, "", "v1.2.3"},
		{"nothing known", unstamped, true, "", "dev"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, versionFrom(tt.info, tt.ok, tt.linked))
		})
	}
}

// TestMakeBuildStampsTheRevision builds the binary as `make build` does and
// checks that `refit version` (the code_version runs record) is the
// checkout's HEAD, whatever GOFLAGS says about VCS stamping.
func TestMakeBuildStampsTheRevision(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	for _, prog := range []string{"git", "make"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("%s is not installed", prog)
		}
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skip("not a git checkout")
	}
	bin := filepath.Join(t.TempDir(), "refit")
	var out bytes.Buffer
	build := exec.Command("make", "-C", root, "build", "BIN="+bin)
	// The setting of this machine and of CI, under which Go stamps nothing.
	build.Env = append(os.Environ(), "GOFLAGS="+strings.Join(append([]string{"-buildvcs=false"}, testenv.BuildFlags()...), " "))
	build.Stdout, build.Stderr = &out, &out
	require.NoError(t, build.Run(), out.String())
	got, err := exec.Command(bin, "version").Output()
	require.NoError(t, err)
	require.Equal(t, strings.TrimSpace(string(head)), strings.TrimSpace(string(got)))
}
