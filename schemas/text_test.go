package schemas_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/dataset"
)

const (
	valid      = "valid"
	invalid    = "invalid"
	parserOnly = "parser only"
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
		name string
		edit func(d map[string]any)
		want string // valid, invalid, or parserOnly: a rule across values or
		// columns the schema cannot state, which the schema accepts and Refit
		// refuses with a reason
	}{
		{"as shipped", func(map[string]any) {}, valid},
		{"three classes", func(d map[string]any) {
			d["target"].(map[string]any)["choices"] = []any{"negative", "neutral", "positive"}
		}, valid},
		{"classification bounds", func(d map[string]any) {
			d["promotion"] = map[string]any{"primary_metric": "log_loss", "min": map[string]any{"accuracy": 0.7, "roc_auc": 0.5}, "max": map[string]any{"log_loss": 0.7}}
		}, valid},
		{"count weighting, bigrams, vocabulary bounds", func(d map[string]any) {
			f := feature(d, 0)
			f["weighting"], f["ngrams"], f["max_features"], f["min_df"] = "count", []any{1, 2}, 5000, 2
		}, valid},
		{"one class", func(d map[string]any) { d["target"].(map[string]any)["choices"] = []any{"positive"} }, invalid},
		{"no choices", func(d map[string]any) { delete(d["target"].(map[string]any), "choices") }, invalid},
		{"numeric target", func(d map[string]any) {
			d["target"] = map[string]any{"name": "sentiment", "type": "float"}
		}, invalid},
		{"a regression metric", func(d map[string]any) { d["promotion"] = map[string]any{"primary_metric": "rmse"} }, invalid},
		{"a regression bound", func(d map[string]any) { d["promotion"] = map[string]any{"min": map[string]any{"r2": 0}} }, invalid},
		{"a linear model", func(d map[string]any) { d["models"].([]any)[0].(map[string]any)["kind"] = "linear" }, invalid},
		{"l2 auto", func(d map[string]any) { d["models"].([]any)[0].(map[string]any)["l2"] = "auto" }, invalid},
		{"unknown weighting", func(d map[string]any) { feature(d, 0)["weighting"] = "bm25" }, invalid},
		{"trigram range reversed", func(d map[string]any) { feature(d, 0)["ngrams"] = []any{3, 1} }, parserOnly},
		{"six-grams", func(d map[string]any) { feature(d, 0)["ngrams"] = []any{1, 6} }, invalid},
		{"buckets with min_df", func(d map[string]any) { feature(d, 1)["min_df"] = 2 }, invalid},
		{"too many buckets", func(d map[string]any) { feature(d, 1)["buckets"] = 1 << 25 }, invalid},
		{"ngrams on a hashed feature", func(d map[string]any) {
			d["columns"] = append(d["columns"].([]any), map[string]any{"name": "genre", "type": "string"})
			m := d["models"].([]any)[0].(map[string]any)
			m["features"] = append(m["features"].([]any), map[string]any{"column": "genre", "transform": "hashed", "buckets": 8, "ngrams": []any{1, 2}})
		}, invalid},
		{"text transform of a string column", func(d map[string]any) {
			d["columns"] = append(d["columns"].([]any), map[string]any{"name": "genre", "type": "string"})
			m := d["models"].([]any)[0].(map[string]any)
			m["features"] = append(m["features"].([]any), map[string]any{"column": "genre", "transform": "text"})
		}, parserOnly},
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
			case tt.want == parserOnly:
				require.NoError(t, schemaErr)
				require.Error(t, parseErr)
			case tt.want == valid:
				require.NoError(t, schemaErr)
				require.NoError(t, parseErr)
			default:
				require.Error(t, schemaErr, "the schema accepts it")
				require.Error(t, parseErr, "refit accepts it")
			}
		})
	}
}
