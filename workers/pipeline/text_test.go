package pipeline_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/internal/synth"
)

func reviewsDef(t testing.TB, batch int) *dataset.Definition {
	t.Helper()
	b, err := os.ReadFile("../../schemas/datasets/reviews.json")
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	raw["batch_size"] = batch
	b, _ = json.Marshal(raw)
	d, err := dataset.Parse(b)
	require.NoError(t, err)
	return d
}

func reviewsPipeline(t testing.TB, batch int) *pipeline {
	bucket, err := local.New(t.TempDir(), "test-bucket")
	require.NoError(t, err)
	return newPipeline(t, reviewsDef(t, batch), bucket, memory.New())
}

// putIn uploads a file into the dataset's folder, as put does for housing.
func (p *pipeline) putIn(name string, content []byte) *events.ObjectFinalized {
	p.t.Helper()
	ctx := context.Background()
	obj, err := p.bucket.Write(ctx, "incoming/"+p.def.Name+"/"+name, blob.Overwrite, func(w io.Writer) error {
		_, err := w.Write(content)
		return err
	})
	require.NoError(p.t, err)
	at := p.clock.Now()
	lb := p.bucket.(*local.Bucket)
	require.NoError(p.t, os.Chtimes(filepath.Join(lb.Root(), filepath.FromSlash(obj.Name)), at, at))
	obj, err = p.bucket.Stat(ctx, obj.Name)
	require.NoError(p.t, err)
	return events.NewObjectFinalized(obj.Bucket, obj.Name, obj.Generation, obj.Size, obj.Updated)
}

// correctIn stores a correction of the pipeline's dataset, validated as the
// gateway validates it (RowFromFields).
func (p *pipeline) correctIn(id string, fields map[string]string, label string) *events.CorrectionSubmitted {
	p.t.Helper()
	_, err := p.def.RowFromFields(fields, label)
	require.NoError(p.t, err)
	at := p.clock.Now()
	require.NoError(p.t, p.gw.AddCorrection(context.Background(), registry.Correction{ID: id, Dataset: p.def.Name, Fields: fields, Label: label, ReceivedAt: at}))
	return &events.CorrectionSubmitted{Meta: events.Meta{ID: "correction/" + id, Dataset: p.def.Name, Time: at, CorrelationID: id}, CorrectionID: id}
}

func TestReviewsBecomeAPromotedClassifierAndCorrectionsADecision(t *testing.T) {
	ctx := context.Background()
	p := reviewsPipeline(t, 40)
	var file bytes.Buffer
	require.NoError(t, synth.Reviews{Seed: 11, LabelNoise: 0.05}.Write(&file, 2000))
	p.q.Publish(ctx, p.putIn("reviews.csv", file.Bytes()))
	p.drain()

	// v1: both specs trained, scored with classification metrics, one promoted.
	runs, err := p.reg.Runs(ctx, "reviews")
	require.NoError(t, err)
	require.Len(t, runs, 2)
	for _, r := range runs {
		c := r.Metrics.Classification
		require.NotNil(t, c, r.Spec)
		require.Equal(t, []string{"negative", "positive"}, c.Classes)
		require.Greater(t, c.Accuracy, 0.75, r.Spec)
		require.NotNil(t, c.ROCAUC)
		require.Len(t, c.Confusion, 2)
		require.NotNil(t, r.Fit, "iterations recorded")
		require.Positive(t, r.Fit.Iterations)
		require.Empty(t, r.Fit.WarmStart, "v1 has no parent")
	}
	champ, err := p.reg.LatestPromotion(ctx, "reviews")
	require.NoError(t, err)
	require.Equal(t, int64(1), champ.Sequence)
	require.Equal(t, 1, champ.Version)

	// Predict with the promoted model, as serving does.
	art, err := model.Load(ctx, p.bucket, champ.Artifact, champ.Checksum)
	require.NoError(t, err)
	require.Equal(t, model.FormatLogisticV1, art.Format)
	pred, err := art.Predictor(p.def)
	require.NoError(t, err)
	require.Equal(t, []string{"negative", "positive"}, pred.Classes())
	probs := make([]float64, 2)
	for text, want := range map[string]string{
		"A wonderful, moving film: brilliant acting and a superb story. Loved it!":     "positive",
		"Awful. A boring, dreadful mess; the worst film I have seen, a waste of time.": "negative",
	} {
		row, err := p.def.RowFromFields(map[string]string{"review": text}, want)
		require.NoError(t, err)
		k := pred.PredictClass(row, probs)
		require.Equal(t, want, pred.Classes()[k], "%q: probabilities %v", text, probs)
		require.InDelta(t, 1, probs[0]+probs[1], 1e-12)
	}

	// Corrections (with hostile text) make v2; its runs start from v1's.
	hostile := "He said, \"<script>alert('x')</script>\"\nthen left; great, great film — très bien 👍"
	for i := range 40 { // one batch
		text, label := fmt.Sprintf("review %d: a superb and brilliant film, loved it", i), "positive"
		if i%2 == 1 {
			text, label = fmt.Sprintf("review %d: dreadful, boring, awful film", i), "negative"
		}
		if i == 0 {
			text = hostile
		}
		p.q.Publish(ctx, p.correctIn(fmt.Sprintf("c%d", i), map[string]string{"review": text}, label))
	}
	p.drain()
	versions, err := p.reg.Versions(ctx, "reviews")
	require.NoError(t, err)
	require.Len(t, versions, 2)
	v2 := versions[1]
	require.Equal(t, 2, v2.Number)
	require.Equal(t, versions[0].Rows+40, v2.Rows, "every correction is in v2")
	require.True(t, hasRow(t, p, v2, hostile), "the hostile review is stored unharmed")

	runs, err = p.reg.Runs(ctx, "reviews")
	require.NoError(t, err)
	require.Len(t, runs, 4)
	for _, r := range runs {
		if r.Version != 2 {
			continue
		}
		require.Equal(t, registry.RunID(r.SpecHash, versions[0].Hash), r.Fit.WarmStart, "%s warm-starts from v1's run", r.Spec)
	}
	decisions, err := p.reg.Decisions(ctx, "reviews")
	require.NoError(t, err)
	require.Len(t, decisions, 4)
	second := 0
	for _, d := range decisions {
		run, err := p.reg.Run(ctx, "reviews", d.RunID)
		require.NoError(t, err)
		if run.Version != 2 {
			continue
		}
		second++
		require.Equal(t, 2, d.EvalVersion)
		require.NotNil(t, d.Champion, "a second decision has a champion to beat")
		require.Equal(t, d.Challenger.Rows, d.Champion.Rows, "the same held-out rows")
		require.Equal(t, v2.TestRows, d.Challenger.Rows)
		require.NotNil(t, d.Challenger.Classification)
		require.NotNil(t, d.Champion.Classification)
		require.Contains(t, d.Reason, "accuracy")
	}
	require.Equal(t, 2, second)
}

// hasRow reports whether a version's staged rows hold the review text.
func hasRow(t testing.TB, p *pipeline, v registry.Version, review string) bool {
	t.Helper()
	found := false
	i, _ := p.def.Index("review")
	err := p.def.ScanSplit(context.Background(), p.bucket, v.Blobs, dataset.AllRows)(func(r dataset.StagedRow) error {
		found = found || r.Fields[i].Str == review
		return nil
	})
	require.NoError(t, err)
	return found
}

func TestBadReviewsQuarantinedWithTheirReason(t *testing.T) {
	ctx := context.Background()
	p := reviewsPipeline(t, 1000)
	long := strings.Repeat("long ", 20_001) // 100,005 bytes, 100,004 once trimmed
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	require.NoError(t, w.WriteAll([][]string{
		{"review", "sentiment"},
		{"Fine, \"quoted\", multi\nline film", "positive"}, // kept
		{"A film", "neutral"},                              // not a class
		{"", "negative"},                                   // empty text
		{long, "negative"},                                 // over max_length
		{"ok", "positive"},                                 // kept
	}))
	content := append(b.Bytes(), []byte("\"bad \xff\xfe bytes\",negative\n")...)
	p.q.Publish(ctx, p.putIn("mixed.csv", content))
	p.drain()
	ingests, err := p.reg.Ingests(ctx, "reviews")
	require.NoError(t, err)
	require.Len(t, ingests, 1)
	in := ingests[0]
	require.Equal(t, 2, in.Accepted)
	require.Equal(t, 4, in.Rejected)
	rc, err := p.bucket.Open(ctx, in.Quarantine)
	require.NoError(t, err)
	defer rc.Close()
	rows, err := csv.NewReader(rc).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 5)
	reasons := make([]string, 0, 4)
	for _, r := range rows[1:] {
		reasons = append(reasons, r[1])
	}
	require.Contains(t, reasons[0], `sentiment: "neutral" is not one of the allowed values (want one of: negative, positive)`)
	require.Contains(t, reasons[1], "review: missing value")
	require.Contains(t, reasons[2], "review: text of 100004 bytes is longer than max_length 100000")
	require.Contains(t, reasons[3], "not valid UTF-8")
}
