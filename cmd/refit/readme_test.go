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
func tourCommands(t *testing.T) []string { return readmeBlock(t, "## A tour") }

// readmeBlock reads the first sh block after heading in README.md, one
// command per element.
func readmeBlock(t *testing.T, heading string) []string {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	s := string(b)
	i := strings.Index(s, heading+"\n")
	require.GreaterOrEqual(t, i, 0, "README.md has no %q", heading)
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
	require.Zero(t, cur.Len(), "unbalanced quote in %q: %s", heading, cur.String())
	return cmds
}

// TestREADMETour runs the README's tour, as a newcomer would paste it,
// against a server started here: bin/refit is the binary built once,
// localhost:8080 the server's port (which the CLI finds through
// REFIT_HTTP_ADDR, as it would on the newcomer's machine).
func TestREADMETour(t *testing.T) {
	t.Parallel()
	cmds := tourCommands(t)
	require.GreaterOrEqual(t, len(cmds), 5, "the tour lost its commands: %q", cmds)
	registryScript := registryBlock(t)
	if testing.Short() {
		t.Skip("builds the binary and trains")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed: the tour's predict and correction calls use it")
	}
	work := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(work, "bin"), 0o755))
	bin := buildRefit(t)
	// A link: the binary is built once and shared by the package's tests.
	require.NoError(t, os.Symlink(bin, filepath.Join(work, "bin", "refit")))
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

	// The "Model registry" block, on the state the tour left: one script,
	// since it carries $RUN from line to line.
	champion := st.Champion.RunID
	before := len(p.promotions())
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", strings.ReplaceAll(registryScript, "localhost:8080", addr))
	cmd.Dir, cmd.Env = work, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "README registry block failed:\n%s\n%s", registryScript, out.String())
	t.Logf("%s\n%s", registryScript, out.String())
	h := p.promotions()
	require.Len(t, h, before+2, "the block promotes one run by hand, then rolls back")
	promoted, rolledBack := h[len(h)-2], h[len(h)-1]
	require.NotEqual(t, champion, promoted.RunID, "promote picks a run that is not the champion")
	require.Equal(t, champion, promoted.PreviousRunID)
	require.Equal(t, champion, rolledBack.RunID, "rollback returns to the tour's champion")
	require.Contains(t, out.String(), promoted.RunID, "reproduce names the promoted run")
}

// registryBlock is the README's "Model registry" block as one script; the
// watch line, which runs until Ctrl-C, runs for a few seconds and must still
// be running (connected) when stopped.
func registryBlock(t *testing.T) string {
	cmds := readmeBlock(t, "## Model registry")
	require.GreaterOrEqual(t, len(cmds), 7, "the registry block lost its commands: %q", cmds)
	watched := false
	for i, c := range cmds {
		if strings.HasPrefix(c, "bin/refit watch") {
			c, _, _ = strings.Cut(c, " #") // its comment would swallow the check
			cmds[i] = "{ rc=0; timeout 3 " + c + " || rc=$?; [ \"$rc\" -eq 124 ]; }"
			watched = true
		}
	}
	require.True(t, watched, "the registry block has no watch line: %q", cmds)
	return strings.Join(cmds, "\n")
}
