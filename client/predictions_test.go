package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/client"
)

func TestPredictionsOfARegressionAndOfAClassifier(t *testing.T) {
	answers := map[string]string{
		"housing": `{"predictions":[612000.5,1e6],"prediction_ids":["a","b"],"model":{"id":"r1"}}`,
		"reviews": `{"predictions":["positive","negative"],"probabilities":[{"negative":0.08,"positive":0.92},{"negative":0.7,"positive":0.3}],"prediction_ids":["c","d"],"model":{"id":"r2"}}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ds := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/models/"), ":predict")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(answers[ds]))
	}))
	defer srv.Close()
	c := client.New(srv.URL)
	ctx := context.Background()

	reg, err := c.Predict(ctx, "housing", []map[string]any{{}, {}})
	require.NoError(t, err)
	require.Equal(t, []client.Prediction{{Value: 612000.5}, {Value: 1e6}}, reg.Predictions)
	require.Equal(t, "1000000", reg.Predictions[1].String())
	require.Nil(t, reg.Probabilities)

	cls, err := c.Predict(ctx, "reviews", []map[string]any{{}, {}})
	require.NoError(t, err)
	require.Equal(t, "positive", cls.Predictions[0].String())
	require.Equal(t, "negative", cls.Predictions[1].Class)
	require.Equal(t, 0.92, cls.Probabilities[0]["positive"])
	b, err := json.Marshal(cls.Predictions)
	require.NoError(t, err)
	require.JSONEq(t, `["positive","negative"]`, string(b), "written back as the gateway sent it")
}
