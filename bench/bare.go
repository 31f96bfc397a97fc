package bench

import (
	"encoding/json"
	"net/http"
)

// Bare is baseline A, the machine's limit for this API: a net/http
// handler that decodes the same JSON the gateway decodes (same types,
// same decoder options) and answers a constant price per instance.
// Refit's gateway does this plus validation, the model and metrics.
func Bare() http.Handler {
	type request struct {
		Instances []map[string]any `json:"instances"`
	}
	type response struct {
		Predictions []float64 `json:"predictions"`
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /v1/models/{name}", func(w http.ResponseWriter, r *http.Request) {
		var req request
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.UseNumber()
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || len(req.Instances) == 0 {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		out := response{Predictions: make([]float64, len(req.Instances))}
		for i := range out.Predictions {
			out.Predictions[i] = 480_000
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	return mux
}
