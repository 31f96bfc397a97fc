package gateway

import (
	"net/http"

	"github.com/refit-ml/refit/workers/serve"
)

// Models is the serving step (workers/serve.Models): the model each dataset
// answers with, and how loading them went.
type Models interface {
	Current(dataset string) *serve.Serving
	Ready() bool
	States() []serve.State
}

type readyBody struct {
	Status string `json:"status"`
	// Datasets say what each serves and which promotions did not load: a
	// broken model is reported here, it does not make the gateway unready.
	Datasets []serve.State `json:"datasets"`
}

func (s *Server) readiness() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := readyBody{Status: "ready", Datasets: s.models.States()}
		status := http.StatusOK
		if !s.ready() || !s.models.Ready() {
			body.Status, status = "starting", http.StatusServiceUnavailable
		}
		writeJSON(w, status, body)
	})
}
