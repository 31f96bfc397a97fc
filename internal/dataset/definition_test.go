package dataset_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/dataset"
)

// withPromotion returns the housing definition with its promotion object
// replaced.
func withPromotion(t *testing.T, promotion string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../schemas/datasets/housing.json")
	require.NoError(t, err)
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &raw))
	raw["promotion"] = json.RawMessage(promotion)
	out, err := json.Marshal(raw)
	require.NoError(t, err)
	return out
}

func TestPromotionRules(t *testing.T) {
	tests := []struct {
		name, promotion, err string
		auto                 bool
	}{
		{"defaults", `{}`, "", true},
		{"bounds", `{"primary_metric":"rmse","min":{"r2":0},"max":{"rmse":1e6}}`, "", true},
		{"held", `{"auto_promote":false}`, "", false},
		{"explicitly automatic", `{"auto_promote":true}`, "", true},
		{"unknown metric in min", `{"min":{"accuracy":0.5}}`, "promotion.min.accuracy", false},
		{"unknown metric in max", `{"max":{"loss":1}}`, "promotion.max.loss", false},
		{"empty range", `{"min":{"r2":0.9},"max":{"r2":0.5}}`, "no model could pass", false},
		{"bound as text", `{"min":{"r2":"0"}}`, "dataset definition", false},
		{"unknown key", `{"auto":false}`, "unknown field", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := dataset.Parse(withPromotion(t, tt.promotion))
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.auto, d.Promotion.Auto())
		})
	}
}

func TestPromotionBounds(t *testing.T) {
	d, err := dataset.Parse(withPromotion(t, `{"min":{"r2":0},"max":{"rmse":1000}}`))
	require.NoError(t, err)
	scores := func(rmse, r2 float64) func(string) float64 {
		return func(m string) float64 { return map[string]float64{"rmse": rmse, "mae": rmse / 2, "r2": r2}[m] }
	}
	tests := []struct {
		name      string
		rmse, r2  float64
		violation string
	}{
		{"inside", 500, 0.8, ""},
		{"on the bounds", 1000, 0, ""},
		{"r2 below min", 500, -0.1, "r2 -0.1 is below promotion.min.r2 = 0"},
		{"rmse above max", 1500, 0.8, "rmse 1500 is above promotion.max.rmse = 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.violation, d.Promotion.Bounds(scores(tt.rmse, tt.r2)))
		})
	}
}

func TestRidgeJSON(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want dataset.Ridge
		err  bool
	}{
		{`0.5`, dataset.Ridge{Lambda: 0.5}, false},
		{`"auto"`, dataset.Ridge{Auto: true}, false},
		{`"big"`, dataset.Ridge{}, true},
		{`true`, dataset.Ridge{}, true},
	} {
		var r dataset.Ridge
		err := json.Unmarshal([]byte(tt.in), &r)
		if tt.err {
			require.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, r)
		b, err := json.Marshal(r)
		require.NoError(t, err)
		require.JSONEq(t, tt.in, string(b))
	}
	// A numeric l2 hashes as it did when the field was a float64.
	s := dataset.ModelSpec{Kind: "linear", L2: dataset.Ridge{Lambda: 1}}
	old, _ := json.Marshal(struct {
		Kind     string            `json:"kind"`
		Features []dataset.Feature `json:"features"`
		L2       float64           `json:"l2"`
	}{s.Kind, s.Features, 1})
	now, _ := json.Marshal(struct {
		Kind     string            `json:"kind"`
		Features []dataset.Feature `json:"features"`
		L2       dataset.Ridge     `json:"l2"`
	}{s.Kind, s.Features, s.L2})
	require.Equal(t, string(old), string(now))
}
