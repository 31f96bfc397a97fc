package gateway_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/refit-ml/refit/bench"
)

// BenchmarkPredictHandler serves predict requests in-process (no network)
// through the gateway's whole handler stack, beside baseline A (bench.Bare:
// the same JSON decoded, a constant answered), so that the difference is
// what the gateway adds per request: validation, the model, metrics,
// timeout handler.
func BenchmarkPredictHandler(b *testing.B) {
	srv := servingGateway(b, "housing", "linear-onehot")
	for _, batch := range []int{1, 32} {
		bodies, err := bench.Bodies(1, 64, batch)
		if err != nil {
			b.Fatal(err)
		}
		for _, h := range []struct {
			name string
			h    http.Handler
		}{{"gateway", srv}, {"bare", bench.Bare()}} {
			b.Run(h.name+"/instances="+strconv.Itoa(batch), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					req := httptest.NewRequest(http.MethodPost, "/v1/models/housing:predict", bytes.NewReader(bodies[i%len(bodies)]))
					w := httptest.NewRecorder()
					h.h.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
					i++
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/prediction")
			})
		}
	}
}
