package schemas_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/dataset"
)

// The classification side of TestSchemaAndParserAgree, from reviews.json.
func TestSchemaAndParserAgreeOnClassification(t *testing.T) {
	s := datasetSchema(t)
	base, err := os.ReadFile("datasets/reviews.json")
	require.NoError(t, err)
	feature := func(d map[string]any, model int) map[string]any {
		return d["models"].([]any)[model].(map[string]any)["features"].([]any)[0].(map[string]any)
	}
	tests := []struct {
		name  string
		edit  func(d map[string]any)
		valid bool
		// parserOnly: a rule across values or columns the schema cannot
		// state; the schema accepts, Refit refuses with a reason.
		parserOnly bool
	}{
		{"as shipped", func(map[string]any) {}, true},
		{"three classes", func(d map[string]any) {
			d["target"].(map[string]any)["choices"] = []any{"negative", "neutral", "positive"}
		}, true},
		{"classification bounds", func(d map[string]any) {
			d["promotion"] = map[string]any{"primary_metric": "log_loss", "min": map[string]any{"accuracy": 0.7, "roc_auc": 0.5}, "max": map[string]any{"log_loss": 0.7}}
		}, true},
		{"count weighting, bigrams, vocabulary bounds", func(d map[string]any) {
			f := feature(d, 0)
			f["weighting"], f["ngrams"], f["max_features"], f["min_df"] = "count", []any{1, 2}, 5000, 2
		}, true},
		{"one class", func(d map[string]any) { d["target"].(map[string]any)["choices"] = []any{"positive"} }, false},
		{"no choices", func(d map[string]any) { delete(d["target"].(map[string]any), "choices") }, false},
		{"numeric target", func(d map[string]any) {
			d["target"] = map[string]any{"name": "sentiment", "type": "float"}
		}, false},
		{"a regression metric", func(d map[string]any) { d["promotion"] = map[string]any{"primary_metric": "rmse"} }, false},
		{"a regression bound", func(d map[string]any) { d["promotion"] = map[string]any{"min": map[string]any{"r2": 0}} }, false},
		{"a linear model", func(d map[string]any) { d["models"].([]any)[0].(map[string]any)["kind"] = "linear" }, false},
		{"l2 auto", func(d map[string]any) { d["models"].([]any)[0].(map[string]any)["l2"] = "auto" }, false},
		{"unknown weighting", func(d map[string]any) { feature(d, 0)["weighting"] = "bm25" }, false},
		{"trigram range reversed", func(d map[string]any) { feature(d, 0)["ngrams"] = []any{3, 1} }, false, true},
		{"six-grams", func(d map[string]any) { feature(d, 0)["ngrams"] = []any{1, 6} }, false},
		{"buckets with min_df", func(d map[string]any) { feature(d, 1)["min_df"] = 2 }, false},
		{"too many buckets", func(d map[string]any) { feature(d, 1)["buckets"] = 1 << 25 }, false},
		{"ngrams on a hashed feature", func(d map[string]any) {
			d["columns"] = append(d["columns"].([]any), map[string]any{"name": "genre", "type": "string"})
			m := d["models"].([]any)[0].(map[string]any)
			m["features"] = append(m["features"].([]any), map[string]any{"column": "genre", "transform": "hashed", "buckets": 8, "ngrams": []any{1, 2}})
		}, false},
		{"text transform of a string column", func(d map[string]any) {
			d["columns"] = append(d["columns"].([]any), map[string]any{"name": "genre", "type": "string"})
			m := d["models"].([]any)[0].(map[string]any)
			m["features"] = append(m["features"].([]any), map[string]any{"column": "genre", "transform": "text"})
		}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d map[string]any
			require.NoError(t, json.Unmarshal(base, &d))
			tt.edit(d)
			b, err := json.Marshal(d)
			require.NoError(t, err)
			schemaErr := validate(t, s, b)
			_, parseErr := dataset.Parse(b)
			switch {
			case tt.parserOnly:
				require.NoError(t, schemaErr)
				require.Error(t, parseErr)
			case tt.valid:
				require.NoError(t, schemaErr)
				require.NoError(t, parseErr)
			default:
				require.Error(t, schemaErr, "the schema accepts it")
				require.Error(t, parseErr, "refit accepts it")
			}
		})
	}
}
