package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/gateway"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/workers/serve"
)

// wordClassifier is a stand-in logistic model: P(positive) is the
// sigmoid of the count of "good" minus the count of "bad".
type wordClassifier struct{ classes []string }

func (c wordClassifier) score(r dataset.Row) float64 {
	words := strings.Fields(strings.ToLower(r.Fields[0].Str))
	s := 0.0
	for _, w := range words {
		switch strings.Trim(w, ".,!?\"<>/") {
		case "good":
			s++
		case "bad":
			s--
		}
	}
	return s
}
func (c wordClassifier) Predict(r dataset.Row) float64 { return c.score(r) }
func (c wordClassifier) Columns() []string             { return []string{"review"} }
func (c wordClassifier) Classes() []string             { return c.classes }
func (c wordClassifier) PredictClass(r dataset.Row, probs []float64) int {
	p := 1 / (1 + math.Exp(-c.score(r)))
	probs[0], probs[1] = 1-p, p
	if p > 0.5 {
		return 1
	}
	return 0
}

// oneModel serves one model for one dataset.
type oneModel struct{ s *serve.Serving }

func (m oneModel) Current(ds string) *serve.Serving {
	if m.s != nil && ds == m.s.Promotion.Dataset {
		return m.s
	}
	return nil
}
func (oneModel) Ready() bool           { return true }
func (oneModel) States() []serve.State { return nil }

// newReviewsFixture serves schemas/datasets/reviews.json (its review
// bounded to 200 bytes) with the word classifier.
func newReviewsFixture(t *testing.T) *fixture {
	t.Helper()
	def := shipped(t, "reviews", `"max_length": 100000`, `"max_length": 200`)
	p := registry.Promotion{Dataset: "reviews", Sequence: 1, RunID: "0000000000000001", Spec: "logistic-tfidf", Version: 1,
		Checksum: "sha256:00", PromotedAt: time.Now().UTC()}
	serving := serve.NewServing(p, wordClassifier{classes: def.Classes()}, def, nil)
	require.NotNil(t, serving.Classifier, "the word classifier answers the dataset's classes")
	return newFixtureOf(t, def, gateway.Config{}, func(*serve.Models) gateway.Publisher { return nopPublisher{} }, oneModel{serving})
}

func (f *fixture) post(t *testing.T, path, body string) (int, []byte) {
	t.Helper()
	code, _, b := f.call(t, http.MethodPost, path, "", body)
	return code, b
}

type classifyAnswer struct {
	Predictions   []string
	Probabilities []map[string]float64
	PredictionIDs []string `json:"prediction_ids"`
	Model         struct{ Spec string }
}

func TestPredictClassifies(t *testing.T) {
	f := newReviewsFixture(t)
	hostile := "<script>alert(1)</script> a bad, \"quoted\" word,\nnew line, émoji 😀"
	body := mustMarshal(t, map[string]any{"instances": []map[string]string{
		{"review": "A good, good film."}, {"review": hostile}, {"review": "good"},
	}})
	status, b := f.post(t, "/v1/models/reviews:predict", body)
	require.Equal(t, http.StatusOK, status, string(b))
	var out classifyAnswer
	require.NoError(t, json.Unmarshal(b, &out))
	require.Equal(t, []string{"positive", "negative", "positive"}, out.Predictions)
	require.Len(t, out.Probabilities, 3)
	require.InDelta(t, 1/(1+math.Exp(-2)), out.Probabilities[0]["positive"], 1e-12)
	require.InDelta(t, 1-1/(1+math.Exp(-2)), out.Probabilities[0]["negative"], 1e-12)
	require.InDelta(t, 1/(1+math.Exp(1)), out.Probabilities[1]["positive"], 1e-12)
	require.Len(t, out.PredictionIDs, 3)
	require.Equal(t, "logistic-tfidf", out.Model.Spec)
	require.NotContains(t, string(b), "<script>", "the answer never carries raw markup")

	// Instances, not requests, by predicted class.
	require.Equal(t, 2.0, testutil.ToFloat64(metricChild(t, f.metrics, "reviews", "positive")))
	require.Equal(t, 1.0, testutil.ToFloat64(metricChild(t, f.metrics, "reviews", "negative")))

	// A correction by ID carries the hostile text exactly as predicted.
	status, b = f.post(t, "/v1/datasets/reviews/corrections", `{"prediction_id":"`+out.PredictionIDs[1]+`","label":"positive"}`)
	require.Equal(t, http.StatusAccepted, status, string(b))
	cs, err := f.reg.Corrections(context.Background(), "reviews")
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, hostile, cs[0].Fields["review"])
	require.Equal(t, "positive", cs[0].Label)
}

// metricChild reads refit_predictions_total{dataset,prediction} from reg.
func metricChild(t *testing.T, reg *prometheus.Registry, ds, prediction string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "refit_predictions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["dataset"] == ds && labels["prediction"] == prediction {
				return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return m.GetCounter().GetValue() })
			}
		}
	}
	t.Fatalf("no refit_predictions_total{dataset=%q,prediction=%q}", ds, prediction)
	return nil
}

func TestPredictRefusesBadText(t *testing.T) {
	f := newReviewsFixture(t)
	tests := []struct {
		name, body, field, contains string
	}{
		{"invalid UTF-8", "{\"instances\":[{\"review\":\"ok \xff\"}]}", "review", `field "review": not valid UTF-8`},
		{"an unpaired surrogate", `{"instances":[{"review":"ok"},{"review":"\ud83d"}]}`, "review", `instance 1: field "review": not valid UTF-8`},
		{"over max_length", `{"instances":[{"review":"` + strings.Repeat("é", 101) + `"}]}`, "review", "text of 202 bytes is longer than max_length 200"},
		{"empty", `{"instances":[{"review":"  "}]}`, "review", "review: missing value"},
		{"missing", `{"instances":[{}]}`, "review", `missing field "review"`},
		{"a number is text", `{"instances":[{"review":12}]}`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, b := f.post(t, "/v1/models/reviews:predict", tt.body)
			var e struct{ Error, Field string }
			require.NoError(t, json.Unmarshal(b, &e))
			if tt.contains == "" {
				require.Equal(t, http.StatusOK, status, string(b))
				return
			}
			require.Equal(t, http.StatusBadRequest, status, string(b))
			require.Equal(t, tt.field, e.Field)
			require.Contains(t, e.Error, tt.contains)
		})
	}
}

func TestCorrectionsTakeAClass(t *testing.T) {
	f := newReviewsFixture(t)
	tests := []struct {
		name, body string
		status     int
		field      string
		contains   string
	}{
		{"a class", `{"instance":{"review":"so good"},"label":"negative"}`, 202, "", ""},
		{"not a class", `{"instance":{"review":"so good"},"label":"neutral"}`, 400, "label", `"neutral" is not one of the allowed values (want one of: negative, positive)`},
		{"a number", `{"instance":{"review":"so good"},"label":1}`, 400, "label", "want one of: negative, positive"},
		{"a boolean", `{"instance":{"review":"so good"},"label":true}`, 400, "label", "want one of negative, positive"},
		{"no label", `{"instance":{"review":"so good"}}`, 400, "label", "one of negative, positive"},
		{"the target in the instance", `{"instance":{"review":"x","sentiment":"positive"},"label":"positive"}`, 400, "instance.sentiment", `goes in "label"`},
		{"invalid text", "{\"instance\":{\"review\":\"\\ud800\"},\"label\":\"positive\"}", 400, "review", "instance.review: not valid UTF-8"},
		{"invalid bytes", "{\"instance\":{\"review\":\"a\xffb\"},\"label\":\"positive\"}", 400, "review", "not valid UTF-8"},
		{"a U+FFFD sent on purpose", `{"instance":{"review":"\ufffd and �"},"label":"positive"}`, 202, "", ""},
		{"text over max_length", `{"instance":{"review":"` + strings.Repeat("x", 201) + `"},"label":"positive"}`, 400, "review", "longer than max_length 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, b := f.post(t, "/v1/datasets/reviews/corrections", tt.body)
			require.Equal(t, tt.status, status, string(b))
			if tt.status != http.StatusAccepted {
				var e struct{ Error, Field string }
				require.NoError(t, json.Unmarshal(b, &e))
				require.Equal(t, tt.field, e.Field)
				require.Contains(t, e.Error, tt.contains)
			}
		})
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// TestPredictWithARealClassifier serves a logistic artifact fitted on
// generated reviews through serve.Models, as the gateway does.
func TestPredictWithARealClassifier(t *testing.T) {
	f := newFixtureOf(t, shipped(t, "reviews"), gateway.Config{}, func(*serve.Models) gateway.Publisher { return nopPublisher{} }, nil)
	var raw bytes.Buffer
	require.NoError(t, synth.Reviews{Seed: 4}.Write(&raw, 600))
	rows, rejected := stagedRows(t, f.def, raw.Bytes())
	require.Zero(t, rejected)
	promoteFitted(t, f.bucket, f.reg, f.def, "logistic-tfidf", rows, registry.Promotion{Dataset: "reviews", Sequence: 1, RunID: "0000000000000001",
		Version: 1, Artifact: "models/reviews/a.json", Actor: "test", PromotedAt: time.Now().UTC()})
	require.NoError(t, f.models.Refresh(context.Background()))
	require.NotNil(t, f.models.Current("reviews").Classifier)

	insts := []map[string]string{}
	for _, r := range rows[:32] {
		insts = append(insts, map[string]string{"review": r.Fields[0].Str})
	}
	resp, err := http.Post(f.srv.URL+"/v1/models/reviews:predict", "application/json", strings.NewReader(mustMarshal(t, map[string]any{"instances": insts})))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var out classifyAnswer
	require.NoError(t, json.Unmarshal(body, &out))
	require.Len(t, out.Predictions, 32)
	right := 0
	for i, p := range out.Predictions {
		probs := out.Probabilities[i]
		require.InDelta(t, 1, probs["negative"]+probs["positive"], 1e-9)
		want := "negative"
		if probs["positive"] > probs["negative"] {
			want = "positive"
		}
		require.Equal(t, want, p, "the class is the most probable one")
		if p == rows[i].Row.Target.Str {
			right++
		}
	}
	require.Greater(t, right, 24, "a fitted model gets most of its own training rows right")
}

func TestConsoleForAClassifier(t *testing.T) {
	f := newReviewsFixture(t)
	ctx := context.Background()
	for v, acc := range []float64{0.71, 0.78} {
		require.NoError(t, f.reg.AddRun(ctx, registry.Run{ID: "run" + string(rune('a'+v)), Dataset: "reviews", Spec: "logistic-tfidf",
			Version: v + 1, TrainRows: 100, CreatedAt: time.Now().UTC(),
			Metrics: registry.Metrics{Classification: &registry.Classification{Accuracy: acc, F1Macro: acc - 0.01, LogLoss: 0.5,
				Classes: []string{"negative", "positive"}}}}))
	}
	get := func(path string) string {
		resp, err := http.Get(f.srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		return string(b)
	}
	page := get("/console/reviews")
	require.Contains(t, page, `<textarea id="in-review" name="review"`)
	require.Contains(t, page, "text of at most 200 bytes")
	require.Contains(t, page, `<select id="correct-label" name="label" required><option value="negative">negative</option><option value="positive">positive</option></select>`)
	require.Contains(t, page, `data-probs`)
	require.NotContains(t, page, `type="number" step="any" required>`, "no number box for a class label")

	page = get("/console/reviews/pipeline")
	require.Contains(t, page, "Validation accuracy by dataset version")
	require.Contains(t, page, "logistic-tfidf v2: accuracy 0.7800")
	require.Contains(t, page, `<td data-v="0.78">0.7800</td>`)
	require.Contains(t, page, ">Macro F1<")
}
