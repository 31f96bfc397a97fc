package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/webhook"
)

// Receiver is the webhook endpoint of schemas/README.md: verify, skip a
// delivery already handled, act, answer 2xx. Anything but 2xx is retried
// under the same Refit-Delivery-Id.
func Receiver(secret string, handle func(ctx context.Context, eventType string, data json.RawMessage) error) http.Handler {
	var mu sync.Mutex
	done := map[string]bool{} // delivery IDs handled; keep them in your database
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, body, err := webhook.VerifyRequest(r, secret, 5*time.Minute, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if done[id] {
			w.WriteHeader(http.StatusNoContent) // a retry of something already handled
			return
		}
		var ce struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &ce); err != nil {
			http.Error(w, "not a CloudEvent", http.StatusBadRequest)
			return
		}
		if err := handle(r.Context(), ce.Type, ce.Data); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError) // Refit retries
			return
		}
		done[id] = true
		w.WriteHeader(http.StatusNoContent)
	})
}

func ExampleVerifyRequest() {
	srv := httptest.NewServer(Receiver("whsec-example", func(_ context.Context, eventType string, data json.RawMessage) error {
		var p struct {
			Dataset  string `json:"dataset"`
			Sequence int64  `json:"sequence"`
			ModelID  string `json:"model_id"`
		}
		if err := json.Unmarshal(data, &p); err != nil {
			return err
		}
		fmt.Printf("%s: %s promotion #%d serves %s\n", eventType, p.Dataset, p.Sequence, p.ModelID)
		return nil
	}))
	defer srv.Close()

	d, _ := webhook.NewDispatcher(webhook.Config{URLs: []string{srv.URL}, Secret: "whsec-example",
		Log: registry.New(memory.New()), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	_ = d.HandlePromoted(context.Background(), promoted(3))
	_ = d.HandlePromoted(context.Background(), promoted(3)) // delivered already: not again
	// Output: dev.refit.model.promoted.v1: housing promotion #3 serves 0123456789abcdef
}
