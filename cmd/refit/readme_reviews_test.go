package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestREADMEReviewsTour runs the README's movie-review tour as one script
// (it carries $ID from line to line), from a folder holding bin/refit and
// the committed IMDB file, against a server started here.
func TestREADMEReviewsTour(t *testing.T) {
	t.Parallel()
	cmds := readmeBlock(t, "## A second tour: movie reviews")
	require.GreaterOrEqual(t, len(cmds), 6, "the reviews tour lost its commands: %q", cmds)
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
	const imdb = "schemas/datasets/testdata/reviews-imdb.csv"
	data, err := os.ReadFile(filepath.Join("../..", imdb))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(work, filepath.Dir(imdb)), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(work, imdb), data, 0o644))
	p := startProgram(t, filepath.Join(work, "var"))
	addr := strings.TrimPrefix(p.base, "http://")

	script := strings.ReplaceAll(strings.Join(cmds, "\n"), "localhost:8080", addr)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = work
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "REFIT_HTTP_ADDR=" + addr}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "README reviews tour failed:\n%s\n%s", script, out.String())
	t.Logf("%s\n%s", script, out.String())
	got := out.String()
	require.Contains(t, got, "ACCURACY", "refit runs shows classification scores")
	require.Contains(t, got, `"probabilities":[{"negative":`, "the predict answer carries the probabilities")
	require.Contains(t, got, `refit_predictions_total{dataset="reviews",prediction="positive"}`)

	// One prediction per review of the file, with both probabilities.
	f, err := os.Open(filepath.Join(work, "review-predictions.csv"))
	require.NoError(t, err)
	defer f.Close()
	preds, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	reviews, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	require.NoError(t, err)
	require.Len(t, preds, len(reviews))
	require.Equal(t, []string{"prediction", "prediction_id", "probability_negative", "probability_positive"}, preds[0])

	// Both corrections (by prediction ID and with the instance) are staged.
	api := p.api()
	p.eventually("the two corrections staged", func() bool {
		st, err := api.Dataset(context.Background(), "reviews")
		return err == nil && st.StagedRows == 2
	})
}
