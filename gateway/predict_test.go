package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/gateway"
	"github.com/refit-ml/refit/workers/serve"
)

func TestPredictAnswers(t *testing.T) {
	f := newFixtureWith(t, gateway.Config{MaxBodyBytes: 4096, MaxInstances: 3}, func(*serve.Models) gateway.Publisher { return nopPublisher{} })
	f.promote(t, "linear-onehot", 300, 1)
	require.NoError(t, f.models.Refresh(context.Background()))
	var req struct {
		Instances []json.RawMessage `json:"instances"`
	}
	require.NoError(t, json.Unmarshal(f.predictBody(t), &req))
	inst := string(req.Instances[0])
	tests := []struct {
		name, contentType, body string
		status                  int
		contains                string
	}{
		{"one", "application/json", `{"instances":[` + inst + `]}`, 200, `"prediction_ids":["`},
		{"three", "text/plain", `{"instances":[` + inst + `,` + inst + `,` + inst + `]}`, 200, `"model":{"id":"0000000000000001"`},
		{"multipart", "multipart/form-data; boundary=x", `{"instances":[` + inst + `]}`, 415, "Content-Type"},
		{"larger than MaxBodyBytes", "application/json", `{"instances":[` + inst + `]}` + strings.Repeat(" ", 4096), 413, "larger than 4096 bytes"},
		{"more than MaxInstances", "application/json", `{"instances":[{},{},{},{}]}`, 400, "at most 3 per request, got 4"},
		{"a bad second instance", "application/json", `{"instances":[` + inst + `,{"bedrooms":"x"}]}`, 400, `instance 1: bedrooms: \"x\" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(f.srv.URL+"/v1/models/housing:predict", tt.contentType, strings.NewReader(tt.body))
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.status, resp.StatusCode, string(body))
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			require.Contains(t, string(body), tt.contains)
			require.True(t, bytes.HasSuffix(body, []byte("}\n")), "one JSON document and a newline: %q", body)
			var out struct {
				Predictions   []float64
				PredictionIDs []string `json:"prediction_ids"`
			}
			require.NoError(t, json.Unmarshal(body, &out))
			if tt.status == http.StatusOK {
				n := strings.Count(tt.body, inst)
				require.Len(t, out.Predictions, n)
				require.Len(t, out.PredictionIDs, n)
				require.Len(t, slices.Compact(slices.Sorted(slices.Values(out.PredictionIDs))), n, "distinct IDs")
			}
		})
	}
}
