package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/gateway"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/workers/serve"
)

// Corrections of a classification dataset: the label is a class, the text
// is checked as a CSV row's is, and what is refused names its field.
func TestReviewCorrections(t *testing.T) {
	b, err := os.ReadFile("../schemas/datasets/reviews.json")
	require.NoError(t, err)
	def, err := dataset.Parse(b)
	require.NoError(t, err)
	catalog, err := dataset.NewCatalog(def)
	require.NoError(t, err)
	bucket, err := local.New(t.TempDir(), "test")
	require.NoError(t, err)
	reg := registry.New(memory.New())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	metrics := prometheus.NewRegistry()
	models := serve.NewModels(catalog, bucket, reg, logger, metrics)
	h, err := gateway.NewServer(gateway.Config{}, gateway.Deps{Datasets: catalog, Registry: reg, Bucket: bucket,
		Publisher: nopPublisher{}, Models: models, Logger: logger, Metrics: metrics, Events: gateway.NewHub()})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	hostile := `He said, \"<script>alert('x')</script>\"\nthen left; très bien 👍`
	for _, tt := range []struct {
		name, body string
		status     int
		contains   string
	}{
		{"a class label", `{"instance":{"review":"` + hostile + `"},"label":"positive"}`, 202, `"id"`},
		{"a label outside the choices", `{"instance":{"review":"fine"},"label":"neutral"}`, 400, `\"neutral\" is not one of the allowed values (want one of: negative, positive)`},
		{"empty text", `{"instance":{"review":"  "},"label":"negative"}`, 400, `review: missing value`},
		{"text too long", `{"instance":{"review":"` + strings.Repeat("x", 100_001) + `"},"label":"negative"}`, 400, `longer than max_length 100000`},
		{"invalid UTF-8", "{\"instance\":{\"review\":\"bad \xff\"},\"label\":\"negative\"}", 400, `review: not valid UTF-8 (at byte 27 of the body)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL+"/v1/datasets/reviews/corrections", "application/json", strings.NewReader(tt.body))
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.status, resp.StatusCode, string(body))
			require.Contains(t, string(body), tt.contains)
		})
	}
	cs, err := reg.Corrections(context.Background(), "reviews")
	require.NoError(t, err)
	require.Len(t, cs, 1, "only the valid correction is stored")
	require.Equal(t, "He said, \"<script>alert('x')</script>\"\nthen left; très bien 👍", cs[0].Fields["review"])
	require.Equal(t, "positive", cs[0].Label)
}
