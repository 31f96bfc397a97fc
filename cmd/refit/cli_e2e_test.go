package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// cli runs the binary against the program, stdout and stderr captured
// (so stdout is not a terminal).
func cli(t *testing.T, bin, server, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "REFIT_SERVER="+server)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func TestCLIUploadWaitStatusPredict(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildRefit(t)
	p := startProgram(t, t.TempDir())
	dir := t.TempDir()
	houses := filepath.Join(dir, "houses.csv")
	require.NoError(t, os.WriteFile(houses, generate(t, 31, 3000), 0o644))

	out, errOut, err := cli(t, bin, p.base, "", "upload", houses, "--dataset", "housing", "--wait")
	require.NoError(t, err, "%s\n%s", out, errOut)
	t.Logf("upload --wait:\n%s", out)
	require.NotContains(t, out, "\r", "not a terminal: plain lines")
	require.NotContains(t, out, "\x1b", "not a terminal: no control codes")
	require.Regexp(t, `houses\.csv: .* / .* \(100%\) .*/s ETA 0s`, out)
	require.Contains(t, out, "accepted (3000 accepted, 0 rejected, 0 duplicate); in version 1")
	require.Regexp(t, `version 1 linear-onehot: promoted: `, out)

	out, errOut, err = cli(t, bin, p.base, "", "status", "housing")
	require.NoError(t, err, errOut)
	require.Contains(t, out, "champion: ")

	// Predict from a CSV on stdin: the price column is left out.
	sample := generate(t, 32, 5)
	out, errOut, err = cli(t, bin, p.base, string(sample), "predict", "--dataset", "housing", "-")
	require.NoError(t, err, errOut)
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	require.NoError(t, err, out)
	require.Len(t, recs, 6)
	require.Equal(t, []string{"prediction", "prediction_id"}, recs[0])
	require.Len(t, recs[1][1], 36)
	require.Contains(t, errOut, `"dataset_version":1`)

	// JSON lines in, JSON lines out.
	inst, _ := houses2JSONL(t, sample)
	out, errOut, err = cli(t, bin, p.base, inst, "predict", "--dataset", "housing")
	require.NoError(t, err, errOut)
	require.Equal(t, 5, strings.Count(out, `"prediction_id"`), out)
}

func houses2JSONL(t *testing.T, content []byte) (string, int) {
	inst, _ := houses(t, content)
	var b strings.Builder
	for _, m := range inst {
		delete(m, "date")
		line, err := jsonLine(m)
		require.NoError(t, err)
		b.WriteString(line)
	}
	return b.String(), len(inst)
}

func TestCLIHelpfulErrors(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildRefit(t)
	p := startProgram(t, t.TempDir())
	dir := t.TempDir()
	noPrice := filepath.Join(dir, "no-price.csv")
	content := strings.Replace(string(generate(t, 33, 3)), "price,", "cost,", 1)
	content = strings.Replace(content, ",city,", ",town,", 1)
	require.NoError(t, os.WriteFile(noPrice, []byte(content), 0o644))
	tests := []struct {
		name     string
		args     []string
		contains []string
	}{
		{"unknown dataset lists the known ones", []string{"upload", noPrice, "--dataset", "houses"}, []string{`unknown dataset "houses"`, "housing"}},
		{"missing columns named before uploading", []string{"upload", noPrice, "--dataset", "housing"}, []string{"lacks required columns of housing: price, city", "nothing uploaded"}},
		{"predict on an unknown dataset", []string{"predict", "--dataset", "houses", noPrice}, []string{`unknown dataset "houses"`, "housing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, err := cli(t, bin, p.base, "", tt.args...)
			require.Error(t, err)
			for _, s := range tt.contains {
				require.Contains(t, errOut, s)
			}
		})
	}
	st := p.dataset()
	require.Zero(t, st.Rows.Sources, "nothing was uploaded")
}

func jsonLine(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b) + "\n", err
}
