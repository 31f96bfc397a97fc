package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/client"
)

// predictCLI runs `refit predict` in-process against p with stdin, its
// standard output and error apart.
func predictCLI(t *testing.T, p *program, stdin io.Reader, args ...string) (string, string, error) {
	t.Helper()
	env := map[string]string{"REFIT_SERVER": p.base}
	var out, errOut bytes.Buffer
	err := predictCmd(context.Background(), args, func(k string) string { return env[k] }, stdin, &out, &errOut)
	return out.String(), errOut.String(), err
}

// reviewsCSV writes texts as a reviews CSV, target column first (the CLI
// must map columns by name) and empty.
func reviewsCSV(t *testing.T, texts []string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	require.NoError(t, w.Write([]string{"sentiment", "review"}))
	for _, s := range texts {
		require.NoError(t, w.Write([]string{"", s}))
	}
	w.Flush()
	require.NoError(t, w.Error())
	return b.Bytes()
}

func TestCLIPredictsAndScoresAClassifier(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("trains a classifier")
	}
	ctx := context.Background()
	p := startProgram(t, t.TempDir())
	api := p.api()
	dir := t.TempDir()

	// Generated reviews (as `refit gen reviews` writes them), uploaded and promoted.
	var gen bytes.Buffer
	require.NoError(t, run(ctx, []string{"gen", "reviews", "--rows", "1500", "--seed", "5", "--label-noise", "0.05"}, os.Getenv, &gen, io.Discard))
	train := filepath.Join(dir, "reviews.csv")
	require.NoError(t, os.WriteFile(train, gen.Bytes(), 0o644))
	out, err := p.cli("", "upload", train, "--dataset", "reviews", "--wait")
	require.NoError(t, err, out)
	require.Regexp(t, `version 1 logistic-(tfidf|hashed): promoted: `, out)
	require.Regexp(t, `serving [0-9a-f]{16} \(logistic-(tfidf|hashed), version 1\), promotion #1`, out, "--wait returns once the gateway serves it")

	// Records with quoted commas, doubled quotes, line breaks, markup and
	// non-ASCII text: one instance each.
	texts := []string{
		"A superb, moving film; \"brilliant\", I said.\nLoved it, loved it!",
		"Awful <script>alert(1)</script>, boring,\nthe worst film,\n\na waste of time.",
		"Très bien 👍, «magnifique», un film superbe",
		"\"Dull\", \"dreadful\" and, frankly, awful",
		"ok",
	}
	hostile := filepath.Join(dir, "hostile.csv")
	require.NoError(t, os.WriteFile(hostile, reviewsCSV(t, texts), 0o644))
	stdout, stderr, err := predictCLI(t, p, strings.NewReader(""), "--dataset", "reviews", hostile)
	require.NoError(t, err, stderr)
	require.Contains(t, stderr, `"spec":"logistic-`, "the model that answered")
	recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	require.NoError(t, err, stdout)
	require.Equal(t, []string{"prediction", "prediction_id", "probability_negative", "probability_positive"}, recs[0])
	require.Len(t, recs, len(texts)+1, "one answer per record, line breaks inside quotes included:\n%s", stdout)

	// The same texts through the typed client: the same answers, so the
	// CLI sent each text whole.
	var insts []map[string]any
	for _, s := range texts {
		insts = append(insts, map[string]any{"review": s})
	}
	want, err := api.Predict(ctx, "reviews", insts)
	require.NoError(t, err)
	for i, rec := range recs[1:] {
		neg, err := strconv.ParseFloat(rec[2], 64)
		require.NoError(t, err)
		pos, err := strconv.ParseFloat(rec[3], 64)
		require.NoError(t, err)
		require.InDelta(t, 1, neg+pos, 1e-9, rec)
		require.Equal(t, want.Predictions[i].Class, rec[0], "text %d", i)
		require.Equal(t, want.Probabilities[i]["negative"], neg, "text %d", i)
		require.Equal(t, want.Probabilities[i]["positive"], pos, "text %d", i)
		wantClass := "negative"
		if pos > neg {
			wantClass = "positive"
		}
		require.Equal(t, wantClass, rec[0], "the most probable class")
		require.Len(t, rec[1], 36, "a prediction ID")
	}

	// The CLI's prediction IDs take a correction by class label.
	id, err := api.Correct(ctx, "reviews", client.Correction{PredictionID: recs[1][1], Label: "positive"})
	require.NoError(t, err)
	require.NotEmpty(t, id)
	_, err = api.Correct(ctx, "reviews", client.Correction{PredictionID: recs[2][1], Label: "neutral"})
	require.Equal(t, 400, client.StatusCode(err), "%v", err)
	require.ErrorContains(t, err, "negative, positive")

	// JSON lines in, JSON lines out, with the probabilities.
	var jl strings.Builder
	for _, in := range insts {
		line, err := jsonLine(in)
		require.NoError(t, err)
		jl.WriteString(line)
	}
	stdout, stderr, err = predictCLI(t, p, strings.NewReader(jl.String()), "--dataset", "reviews")
	require.NoError(t, err, stderr)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, lines, len(texts))
	for i, line := range lines {
		var got struct {
			Prediction    string             `json:"prediction"`
			Probabilities map[string]float64 `json:"probabilities"`
			PredictionID  string             `json:"prediction_id"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &got), line)
		require.Equal(t, want.Predictions[i].Class, got.Prediction)
		require.Equal(t, want.Probabilities[i], got.Probabilities)
		require.Len(t, got.PredictionID, 36)
	}

	// Long texts: 24 reviews of 60 kB are more than one request may carry
	// (1 MiB); the CLI splits them and answers every one.
	long := make([]string, 24)
	for i := range long {
		word := []string{"superb", "dreadful"}[i%2]
		long[i] = strings.Repeat(word+" film, ", 60_000/len(word+" film, "))
	}
	stdout, stderr, err = predictCLI(t, p, bytes.NewReader(reviewsCSV(t, long)), "--dataset", "reviews", "-")
	require.NoError(t, err, stderr)
	recs, err = csv.NewReader(strings.NewReader(stdout)).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, len(long)+1)

	// A text over max_length is refused, and the CLI names its line: the
	// third record starts on line 5, as the second holds a line break.
	tooLong := []string{"fine", "two\nlines", strings.Repeat("x", 100_001)}
	_, _, err = predictCLI(t, p, bytes.NewReader(reviewsCSV(t, tooLong)), "--dataset", "reviews", "-")
	require.ErrorContains(t, err, "instance 3 (line 5)")
	require.ErrorContains(t, err, "max_length 100000")

	// refit runs shows the classification scores, not RMSE.
	runs, err := api.AllRuns(ctx, "reviews", client.RunsQuery{})
	require.NoError(t, err)
	require.Len(t, runs, 2)
	out, err = p.cli("", "runs", "reviews")
	require.NoError(t, err, out)
	t.Logf("refit runs reviews:\n%s", out)
	table := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, table, 1+len(runs))
	require.Regexp(t, `^RUN +SPEC +VERSION +ACCURACY +F1 MACRO +LOG LOSS +ROC AUC +TRAIN ROWS +TOOK +CREATED +DECISION$`, table[0])
	seen := 0
	for _, r := range runs {
		c := r.Metrics.Classification
		require.NotNil(t, c, r.Spec)
		require.NotNil(t, c.ROCAUC, "binary: ROC AUC")
		for _, row := range table[1:] {
			f := strings.Fields(row)
			if f[0] != r.ID {
				continue
			}
			seen++
			require.Equal(t, []string{r.Spec, "1", f4(c.Accuracy), f4(c.F1Macro), f4(c.LogLoss), f4(*c.ROCAUC), strconv.Itoa(r.TrainRows)}, f[1:8], row)
		}
	}
	require.Equal(t, len(runs), seen, "every run has its row")
	require.Contains(t, out, "champion")

	out, err = p.cli("", "runs", "reviews", "--json")
	require.NoError(t, err)
	var asJSON struct{ Runs []client.Run }
	require.NoError(t, json.Unmarshal([]byte(out), &asJSON), out)
	require.Len(t, asJSON.Runs, 2)
	for _, r := range asJSON.Runs {
		c := r.Metrics.Classification
		require.NotNil(t, c)
		n := 0
		for _, row := range c.Confusion {
			for _, k := range row {
				n += k
			}
		}
		require.Equal(t, r.Metrics.Rows, n, "the confusion matrix counts the held-out rows")
	}

	st, err := api.Dataset(ctx, "reviews")
	require.NoError(t, err)
	require.NotNil(t, st.Champion)
	out, err = p.cli("", "status", "reviews")
	require.NoError(t, err)
	require.Contains(t, out, fmt.Sprintf("accuracy %s f1_macro %s", f4(st.Champion.Metrics.Accuracy), f4(st.Champion.Metrics.F1Macro)))
	out, err = p.cli("", "promotions", "reviews")
	require.NoError(t, err)
	require.Regexp(t, `SEQ +RUN +SPEC +VERSION +ACCURACY +PREVIOUS`, out)
	require.Contains(t, out, f4(st.Champion.Metrics.Accuracy))
}

func f4(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }

func TestScoreCellsForEachKindOfModel(t *testing.T) {
	t.Parallel()
	auc := 0.91
	bin := client.Metrics{Rows: 10, Classification: &client.Classification{Accuracy: 0.8, F1Macro: 0.79, LogLoss: 0.45, ROCAUC: &auc}}
	multi := client.Metrics{Rows: 10, Classification: &client.Classification{Accuracy: 0.7, F1Macro: 0.6, LogLoss: 0.9}}
	reg := client.Metrics{Rows: 10, RMSE: 25474.25, MAE: 19000.04, R2: 0.98312}
	tests := []struct {
		name       string
		m          client.Metrics
		classifier bool
		cells      string
		line       string
	}{
		{"regression", reg, false, "25474.2\t19000.0\t0.9831", "rmse 25474.2 r2 0.983"},
		{"binary classifier", bin, true, "0.8000\t0.7900\t0.4500\t0.9100", "accuracy 0.8000 f1_macro 0.7900"},
		{"multiclass: no ROC AUC", multi, true, "0.7000\t0.6000\t0.9000\t-", "accuracy 0.7000 f1_macro 0.6000"},
		{"a run without scores among classifiers", reg, true, "-\t-\t-\t-", "rmse 25474.2 r2 0.983"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.cells, scoreCells(tt.m, tt.classifier))
			require.Equal(t, tt.line, primaryScore(tt.m))
		})
	}
}
