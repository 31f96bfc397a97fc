package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// tourCommands reads the first sh block after "## A tour" in README.md,
// joining continued lines (a line inside an open quote goes on).
func tourCommands(t *testing.T) []string {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	s := string(b)
	i := strings.Index(s, "## A tour")
	require.GreaterOrEqual(t, i, 0, "README.md has no tour")
	s = s[i:]
	start := strings.Index(s, "```sh\n")
	require.GreaterOrEqual(t, start, 0)
	s = s[start+len("```sh\n"):]
	s = s[:strings.Index(s, "```")]
	var cmds []string
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if cur.Len() == 0 && strings.TrimSpace(line) == "" {
			continue
		}
		cur.WriteString(line + "\n")
		if strings.Count(cur.String(), "'")%2 == 0 {
			cmds = append(cmds, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	require.Zero(t, cur.Len(), "unbalanced quote in the tour: %s", cur.String())
	return cmds
}

// TestREADMETour runs the README's tour, as a newcomer would paste it,
// against a server started here: bin/refit is the binary built once,
// localhost:8080 the server's port (which the CLI finds through
// REFIT_HTTP_ADDR, as it would on the newcomer's machine).
func TestREADMETour(t *testing.T) {
	cmds := tourCommands(t)
	require.GreaterOrEqual(t, len(cmds), 5, "the tour lost its commands: %q", cmds)
	if testing.Short() {
		t.Skip("builds the binary and trains")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed: the tour's predict and correction calls use it")
	}
	work := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(work, "bin"), 0o755))
	bin := buildRefit(t)
	require.NoError(t, os.Rename(bin, filepath.Join(work, "bin", "refit")))
	p := startProgram(t, filepath.Join(work, "var"))
	addr := strings.TrimPrefix(p.base, "http://")
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "REFIT_HTTP_ADDR=" + addr}
	for _, c := range cmds {
		script := strings.ReplaceAll(c, "localhost:8080", addr)
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		cmd.Dir, cmd.Env = work, env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		require.NoError(t, err, "README tour command failed:\n%s\n%s", c, out.String())
		t.Logf("$ %s\n%s", c, out.String())
	}
	st := p.dataset()
	require.NotNil(t, st.Champion, "the tour ends with a model serving")
	require.GreaterOrEqual(t, st.Rows.Sources, 2, "the upload and the correction were ingested or are on their way")
}
