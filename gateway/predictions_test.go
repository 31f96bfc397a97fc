package gateway_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCorrectionByPredictionID(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.promote(t, "linear-onehot", 300, 1)
	require.NoError(t, f.models.Refresh(ctx))

	code, _, body := f.call(t, "POST", "/v1/models/housing:predict", "", string(f.predictBody(t)))
	require.Equal(t, 200, code, string(body))
	var pred struct {
		Predictions   []float64 `json:"predictions"`
		PredictionIDs []string  `json:"prediction_ids"`
	}
	require.NoError(t, json.Unmarshal(body, &pred))
	require.Len(t, pred.PredictionIDs, len(pred.Predictions))
	id := pred.PredictionIDs[0]

	var inst map[string]any
	var req struct {
		Instances []map[string]any `json:"instances"`
	}
	require.NoError(t, json.Unmarshal(f.predictBody(t), &req))
	inst = req.Instances[0]
	sameInst, _ := json.Marshal(inst)
	inst["city"] = "Somewhere Else"
	swapped, _ := json.Marshal(inst)

	tests := []struct {
		name     string
		body     string
		status   int
		contains string
	}{
		{"id alone", `{"prediction_id":"` + id + `","label":500000}`, 202, `"id"`},
		{"id and the same instance", `{"prediction_id":"` + id + `","label":500000,"instance":` + string(sameInst) + `}`, 202, `"id"`},
		{"id and a swapped instance", `{"prediction_id":"` + id + `","label":500000,"instance":` + string(swapped) + `}`, 400, "differs"},
		{"unknown id alone", `{"prediction_id":"nope","label":500000}`, 404, "send the instance"},
		{"unknown id with an instance", `{"prediction_id":"nope","label":500000,"instance":` + string(sameInst) + `}`, 202, `"id"`},
		{"id without a label", `{"prediction_id":"` + id + `"}`, 400, "label"},
		{"neither", `{"label":500000}`, 400, "instance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := f.call(t, "POST", "/v1/datasets/housing/corrections", "", tt.body)
			require.Equal(t, tt.status, code, string(body))
			require.Contains(t, string(body), tt.contains)
		})
	}
	cs, err := f.reg.Corrections(ctx, "housing")
	require.NoError(t, err)
	require.Len(t, cs, 3)
	for _, c := range cs {
		require.NotEqual(t, "Somewhere Else", c.Fields["city"])
		if c.PredictionID == id {
			require.Equal(t, inst["street"], c.Fields["street"], "the stored instance is used")
		}
	}
}
