package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/client"
	"github.com/refit-ml/refit/internal/blob/gcs"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/mongo"
)

// reviewsBatch is the batch size the test gives the reviews dataset, so
// that a handful of corrections cut a version.
const reviewsBatch = 40

// generatedReviews is `refit gen reviews` output: the file and its rows.
func generatedReviews(t *testing.T, seed int64, rows int) ([]byte, [][]string) {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"gen", "reviews", "--rows", fmt.Sprint(rows), "--seed", fmt.Sprint(seed), "--label-noise", "0.05"},
		os.Getenv, &b, io.Discard))
	recs, err := csv.NewReader(bytes.NewReader(b.Bytes())).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"review", "sentiment"}, recs[0])
	return b.Bytes(), recs[1:]
}

// TestMultiProcessReviewsOnEmulators takes the reviews dataset around the
// loop with every part its own OS process on the Pub/Sub emulator,
// fake-gcs-server and FerretDB: a file dropped in the bucket becomes a
// promoted classifier, the gateway predicts classes, corrections by
// prediction ID cut a second version, and the second promotion decision
// scores challenger and champion on that version's held-out rows.
func TestMultiProcessReviewsOnEmulators(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test: not in -short")
	}
	// The shipped definition, with a batch that corrections can fill.
	raw, err := os.ReadFile("../../schemas/datasets/reviews.json")
	require.NoError(t, err)
	var def map[string]any
	require.NoError(t, json.Unmarshal(raw, &def))
	def["batch_size"] = reviewsBatch
	defs := t.TempDir()
	b, _ := json.Marshal(def)
	require.NoError(t, os.WriteFile(filepath.Join(defs, "reviews.json"), b, 0o644))

	const project, bucket, database = "refit-reviews", "refit-reviews", "refit_reviews"
	s := startEmulatorStack(t, project, bucket, "REFIT_DATASETS_DIR="+defs, "REFIT_MONGODB_DATABASE="+database)
	c, bin, env, mongoURI, logs := s.cluster, s.bin, s.env, s.mongoURI, s.logs
	setup := exec.Command(bin, "setup")
	setup.Env = env
	out, err := setup.CombinedOutput()
	require.NoError(t, err, string(out))

	gateway := c.start("gateway")
	for _, target := range []string{"preprocess", "version", "train", "promote"} {
		c.start(target)
	}
	ctx := context.Background()
	api := client.New(gateway.url)

	// 1. A file in the bucket: its notification reaches the workers in GCS's format.
	storageClient, err := gcs.NewClient(ctx, s.gcsURL)
	require.NoError(t, err)
	file, _ := generatedReviews(t, 41, 1200)
	w := storageClient.Bucket(bucket).Object("incoming/reviews/reviews.csv").NewWriter(ctx)
	w.ContentType = "text/csv"
	_, err = w.Write(file)
	require.NoError(t, err)
	require.NoError(t, w.Close())

	// 2. A classifier promoted and served.
	var first client.Promotion
	waitFor(t, "version 1 decided and its champion served", 180*time.Second, func() bool {
		h, err := api.Promotions(ctx, "reviews")
		if err != nil || len(h.Decisions) < 2 || len(h.Promotions) == 0 {
			return false
		}
		first = h.Promotions[len(h.Promotions)-1]
		m, err := api.Model(ctx, "reviews")
		return err == nil && m.Ready && m.Model.ID == first.RunID
	}, logs)
	require.Equal(t, 1, first.Version)
	require.NotNil(t, first.Metrics.Classification, "a classifier's scores")
	t.Logf("v1 champion %s (%s): accuracy %.4f on %d rows", first.RunID, first.Spec, first.Metrics.Accuracy, first.Metrics.Rows)

	// 3. Predictions of reviews it never saw: a class and each class's probability.
	_, rows := generatedReviews(t, 42, reviewsBatch)
	insts := make([]map[string]any, len(rows))
	for i, r := range rows {
		insts[i] = map[string]any{"review": r[0]}
	}
	pred, err := api.Predict(ctx, "reviews", insts)
	require.NoError(t, err)
	require.Len(t, pred.Predictions, len(rows))
	require.Len(t, pred.Probabilities, len(rows))
	require.Equal(t, first.RunID, pred.Model.ID)
	right := 0
	for i, p := range pred.Predictions {
		probs := pred.Probabilities[i]
		require.InDelta(t, 1, probs["negative"]+probs["positive"], 1e-9)
		require.Contains(t, []string{"negative", "positive"}, p.Class)
		if p.Class == rows[i][1] {
			right++
		}
	}
	t.Logf("v1 champion: %d of %d unseen reviews right", right, len(rows))
	require.Greater(t, right, len(rows)*6/10, "the classifier learned the generator's word distributions")

	// 4. Corrections by prediction ID (the gateway keeps what it predicted
	// for), with the true class: one batch, so a second version.
	for i, id := range pred.PredictionIDs {
		_, err := api.Correct(ctx, "reviews", client.Correction{PredictionID: id, Label: rows[i][1]})
		require.NoError(t, err, "correction %d", i)
	}
	var v1, v2 client.VersionSummary
	var second []client.Standing
	waitFor(t, "version 2 from the corrections, both specs decided", 180*time.Second, func() bool {
		st, err := api.Dataset(ctx, "reviews")
		if err != nil || len(st.Versions) < 2 {
			return false
		}
		v1, v2 = st.Versions[0], st.Versions[1]
		h, err := api.Promotions(ctx, "reviews")
		if err != nil {
			return false
		}
		runs, err := api.AllRuns(ctx, "reviews", client.RunsQuery{Version: 2})
		if err != nil || len(runs) != 2 {
			return false
		}
		second = second[:0]
		for _, d := range h.Decisions {
			for _, r := range runs {
				if d.RunID == r.ID {
					second = append(second, d)
				}
			}
		}
		return len(second) == 2
	}, logs)
	lineage, err := api.VersionLineage(ctx, "reviews", 2)
	require.NoError(t, err)
	require.Len(t, lineage.Corrections, reviewsBatch, "every correction is in version 2")
	require.Equal(t, v1.Rows+reviewsBatch, v2.Rows, "version 2 is version 1 and the corrections")

	// 5. The second decision: both models scored on version 2's held-out rows.
	for _, d := range second {
		require.Equal(t, 2, d.EvalVersion, d.Reason)
		require.Equal(t, v2.TestRows, d.Challenger.Rows, "the challenger on version 2's test split")
		require.NotNil(t, d.Challenger.Classification)
		require.Contains(t, d.Reason, "rows of version 2", "the reason names the rows")
	}
	// The API hides a decision's champion scores (a Standing's champion is
	// a flag): read the decisions from the store the workers wrote.
	docs, err := mongo.Open(ctx, mongoURI, database)
	require.NoError(t, err)
	t.Cleanup(func() { _ = docs.Close(context.Background()) })
	decisions, err := registry.New(docs).Decisions(ctx, "reviews")
	require.NoError(t, err)
	require.Len(t, decisions, 4)
	checked := 0
	for _, d := range decisions {
		if d.EvalVersion != 2 {
			continue
		}
		checked++
		require.NotNil(t, d.Champion, "a champion to beat: %s", d.Reason)
		require.NotEmpty(t, d.ChampionRunID)
		require.Equal(t, v2.TestRows, d.Champion.Rows, "the champion on the same rows")
		require.Equal(t, d.Challenger.Rows, d.Champion.Rows)
		require.NotNil(t, d.Champion.Classification)
		require.NotNil(t, d.Challenger.Classification)
	}
	require.Equal(t, 2, checked)

	// 6. The gateway serves the latest promotion.
	waitFor(t, "the gateway serves the latest promotion", 60*time.Second, func() bool {
		h, err := api.Promotions(ctx, "reviews")
		if err != nil || len(h.Promotions) == 0 {
			return false
		}
		m, err := api.Model(ctx, "reviews")
		return err == nil && m.Model != nil && m.Model.ID == h.Promotions[len(h.Promotions)-1].RunID
	}, logs)
}
