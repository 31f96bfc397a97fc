package dataset_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/dataset"
)

func reviews(t *testing.T, edit func(d map[string]any)) (*dataset.Definition, error) {
	t.Helper()
	b, err := os.ReadFile("../../schemas/datasets/reviews.json")
	require.NoError(t, err)
	var d map[string]any
	require.NoError(t, json.Unmarshal(b, &d))
	if edit != nil {
		edit(d)
	}
	b, err = json.Marshal(d)
	require.NoError(t, err)
	return dataset.Parse(b)
}

func TestClassificationDefinitions(t *testing.T) {
	spec := func(d map[string]any, i int) map[string]any { return d["models"].([]any)[i].(map[string]any) }
	feature := func(d map[string]any, i int) map[string]any {
		return spec(d, i)["features"].([]any)[0].(map[string]any)
	}
	tests := []struct {
		name string
		edit func(d map[string]any)
		err  string // "" for valid
	}{
		{"shipped", nil, ""},
		{"three classes", func(d map[string]any) {
			d["target"].(map[string]any)["choices"] = []any{"negative", "neutral", "positive"}
		}, ""},
		{"one class", func(d map[string]any) { d["target"].(map[string]any)["choices"] = []any{"positive"} }, "two or more choices"},
		{"a class twice", func(d map[string]any) { d["target"].(map[string]any)["choices"] = []any{"a", "b", "a"} }, `class "a" listed twice`},
		{"a blank class", func(d map[string]any) { d["target"].(map[string]any)["choices"] = []any{"a", " b"} }, "leading or trailing spaces"},
		{"numeric target", func(d map[string]any) { d["target"] = map[string]any{"name": "sentiment", "type": "int"} }, "string column with two or more choices"},
		{"regression metric", func(d map[string]any) { d["promotion"] = map[string]any{"primary_metric": "rmse"} }, "want one of accuracy, f1_macro, log_loss, roc_auc"},
		{"regression bound", func(d map[string]any) { d["promotion"] = map[string]any{"min": map[string]any{"r2": 0}} }, "promotion.min.r2: unknown metric"},
		{"linear kind", func(d map[string]any) { spec(d, 0)["kind"] = "linear" }, "want logistic for a classification dataset"},
		{"l2 auto", func(d map[string]any) { spec(d, 0)["l2"] = "auto" }, `l2 "auto" is for linear models`},
		{"bad ngrams", func(d map[string]any) { feature(d, 0)["ngrams"] = []any{2, 1} }, "ngrams [2 1]"},
		{"bad weighting", func(d map[string]any) { feature(d, 0)["weighting"] = "bm25" }, `weighting "bm25"`},
		{"buckets and min_df", func(d map[string]any) { feature(d, 1)["min_df"] = 3 }, "max_features and min_df are for a learned vocabulary"},
		{"text options on another transform", func(d map[string]any) {
			d["columns"] = append(d["columns"].([]any), map[string]any{"name": "stars", "type": "int"})
			s := spec(d, 0)
			s["features"] = append(s["features"].([]any), map[string]any{"column": "stars", "transform": "numeric", "weighting": "count"})
		}, "are for text features"},
		{"text transform of a string column", func(d map[string]any) {
			d["columns"] = append(d["columns"].([]any), map[string]any{"name": "genre", "type": "string"})
			s := spec(d, 0)
			s["features"] = append(s["features"].([]any), map[string]any{"column": "genre", "transform": "text"})
		}, "needs a text column"},
		{"text column with choices", func(d map[string]any) {
			d["columns"].([]any)[0].(map[string]any)["choices"] = []any{"a"}
		}, "a text column takes no choices"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := reviews(t, tt.edit)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "accuracy", d.Promotion.PrimaryMetric)
			require.False(t, d.LowerIsBetter())
		})
	}
}

func TestTextColumnsAndClassLabels(t *testing.T) {
	d, err := reviews(t, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"negative", "positive"}, d.Classes())
	col, ok := d.Lookup("review")
	require.True(t, ok)
	require.Equal(t, dataset.DefaultTextMaxLength, col.MaxLength)

	hostile := "Commas, \"quotes\",\nnew lines and <script>alert(1)</script> — très bien 👍"
	r, err := d.RowFromFields(map[string]string{"review": hostile}, "positive")
	require.NoError(t, err)
	require.Equal(t, hostile, r.Fields[0].Str)
	k, ok := d.ClassIndex(r.Target)
	require.True(t, ok)
	require.Equal(t, 1, k)
	_, ok = d.ClassIndex(dataset.Field{Str: "neutral"})
	require.False(t, ok)

	var fe *dataset.FieldError
	for _, tt := range []struct {
		name, review, label, field, reason string
	}{
		{"a label outside the choices lists them", "fine", "neutral", "sentiment", `"neutral" is not one of the allowed values (want one of: negative, positive)`},
		{"an empty label", "fine", "", "sentiment", "missing value"},
		{"empty text", "  ", "positive", "review", "missing value"},
		{"invalid UTF-8", "bad \xff bytes", "positive", "review", "not valid UTF-8"},
		{"too long", strings.Repeat("x", dataset.DefaultTextMaxLength+1), "positive", "review", "text of 100001 bytes is longer than max_length 100000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.RowFromFields(map[string]string{"review": tt.review}, tt.label)
			require.True(t, errors.As(err, &fe), "%v", err)
			require.Equal(t, tt.field, fe.Field)
			require.Equal(t, tt.reason, fe.Reason)
		})
	}
	// At the limit exactly: accepted (bytes, not characters: 4 bytes each).
	_, err = d.RowFromFields(map[string]string{"review": strings.Repeat("👍", dataset.DefaultTextMaxLength/4)}, "negative")
	require.NoError(t, err)
}
