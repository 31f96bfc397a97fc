package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/webhook"
)

const secret = "whsec-test"

func TestVerify(t *testing.T) {
	body := []byte(`{"id":"housing/promotion/1"}`)
	good := webhook.Sign(secret, "dlv_1", "1700000000", body)
	require.True(t, strings.HasPrefix(good, "sha256="))
	tests := []struct {
		name, secret, id, ts, body, sig string
		ok                              bool
	}{
		{"good", secret, "dlv_1", "1700000000", string(body), good, true},
		{"wrong secret", "whsec-other", "dlv_1", "1700000000", string(body), good, false},
		{"body changed", secret, "dlv_1", "1700000000", string(body) + " ", good, false},
		{"timestamp changed", secret, "dlv_1", "1700000001", string(body), good, false},
		{"delivery id changed", secret, "dlv_2", "1700000000", string(body), good, false},
		{"bare hex", secret, "dlv_1", "1700000000", string(body), strings.TrimPrefix(good, "sha256="), false},
		{"empty signature", secret, "dlv_1", "1700000000", string(body), "", false},
		{"no secret", "", "dlv_1", "1700000000", string(body), good, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhook.Verify(tt.secret, tt.id, tt.ts, []byte(tt.body), tt.sig)
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
	require.ErrorIs(t, webhook.Verify("whsec-other", "dlv_1", "1700000000", body, good), webhook.ErrSignature)
}

func TestVerifyRequestRejectsReplays(t *testing.T) {
	body := []byte(`{}`)
	now := time.Unix(1_700_000_000, 0)
	req := func(ts int64) *http.Request {
		r := httptest.NewRequest("POST", "/hook", strings.NewReader(string(body)))
		r.Header.Set(webhook.HeaderDeliveryID, "dlv_1")
		r.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts, 10))
		r.Header.Set(webhook.HeaderSignature, webhook.Sign(secret, "dlv_1", strconv.FormatInt(ts, 10), body))
		return r
	}
	id, got, err := webhook.VerifyRequest(req(now.Unix()-60), secret, 5*time.Minute, now)
	require.NoError(t, err)
	require.Equal(t, "dlv_1", id)
	require.Equal(t, body, got)
	_, _, err = webhook.VerifyRequest(req(now.Unix()-3600), secret, 5*time.Minute, now)
	require.ErrorContains(t, err, "tolerance")
}

// receiver is the endpoint from schemas/README.md: it verifies each
// delivery, answers 2xx to a delivery it has already handled, and hands
// each new one to handle once. failFirst makes its first n requests fail,
// as a receiver that is briefly down.
type receiver struct {
	secret    string
	failFirst int

	mu       sync.Mutex
	requests []*http.Request
	bodies   [][]byte
	handled  map[string][]byte // by delivery ID
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests = append(rc.requests, r)
	if len(rc.requests) <= rc.failFirst {
		http.Error(w, "down for a moment", http.StatusServiceUnavailable)
		return
	}
	id, body, err := webhook.VerifyRequest(r, rc.secret, 5*time.Minute, time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	rc.bodies = append(rc.bodies, body)
	if _, done := rc.handled[id]; done {
		w.WriteHeader(http.StatusNoContent) // a retry of a delivery already handled
		return
	}
	if rc.handled == nil {
		rc.handled = map[string][]byte{}
	}
	rc.handled[id] = body
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) snapshot() (requests []*http.Request, handled map[string][]byte) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	handled = map[string][]byte{}
	for k, v := range rc.handled {
		handled[k] = v
	}
	return append([]*http.Request(nil), rc.requests...), handled
}

func promoted(seq int64) *events.ModelPromoted {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	return &events.ModelPromoted{
		Meta:     events.Meta{ID: "housing/promotion/" + strconv.FormatInt(seq, 10), Dataset: "housing", Time: now, CorrelationID: "c"},
		Sequence: seq, ModelID: "0123456789abcdef", Spec: "linear-onehot", ArtifactURI: "gs://b/models/housing/0123456789abcdef.json",
		Checksum: "sha256:" + strings.Repeat("ab", 32), DatasetVersion: 2, DatasetHash: strings.Repeat("cd", 32),
		Metrics: events.Metrics{Rows: 600, RMSE: 25000, MAE: 19000, R2: 0.98}, Actor: "auto", Reason: "beats", PromotedAt: now,
	}
}

func newDispatcher(t *testing.T, reg *registry.Registry, signWith string, attempts int, urls ...string) *webhook.Dispatcher {
	t.Helper()
	d, err := webhook.NewDispatcher(webhook.Config{URLs: urls, Secret: signWith, Log: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		MaxAttempts: attempts, InitialBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond})
	require.NoError(t, err)
	return d
}

func TestFailingReceiverGetsTheEventOnceByDeliveryID(t *testing.T) {
	rc := &receiver{secret: secret, failFirst: 2}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	reg := registry.New(memory.New())
	d := newDispatcher(t, reg, secret, 5, srv.URL+"/hook?token=abc")

	require.NoError(t, d.HandlePromoted(context.Background(), promoted(3)))

	requests, handled := rc.snapshot()
	require.Len(t, requests, 3, "two failures, then success")
	id := requests[0].Header.Get(webhook.HeaderDeliveryID)
	require.Equal(t, webhook.DeliveryID(srv.URL+"/hook?token=abc", "housing/promotion/3"), id)
	for _, r := range requests {
		require.Equal(t, id, r.Header.Get(webhook.HeaderDeliveryID), "a retry keeps its delivery ID")
		require.Equal(t, webhook.ContentType, r.Header.Get("Content-Type"))
	}
	require.Len(t, handled, 1, "handled once as far as the delivery ID says")

	log, err := reg.WebhookDelivery(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, log, 4, "three attempts and one outcome")
	for i, rec := range log[:3] {
		require.Equal(t, registry.DeliveryAttempt, rec.Kind)
		require.Equal(t, i+1, rec.Attempt)
		require.Equal(t, srv.URL+"/hook", rec.URL, "the query string may hold a secret")
	}
	require.Equal(t, http.StatusServiceUnavailable, log[0].HTTPStatus)
	require.Equal(t, http.StatusNoContent, log[2].HTTPStatus)
	require.Equal(t, registry.OutcomeDelivered, log[3].Outcome)
	require.Equal(t, 3, log[3].Attempt)
}

func TestDeliveryIsAStructuredCloudEvent(t *testing.T) {
	rc := &receiver{secret: secret}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	e := promoted(1)
	require.NoError(t, newDispatcher(t, registry.New(memory.New()), secret, 1, srv.URL).HandlePromoted(context.Background(), e))
	_, handled := rc.snapshot()
	require.Len(t, handled, 1)
	for _, body := range handled {
		var ce map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(body, &ce))
		for _, k := range []string{"specversion", "type", "source", "id", "time", "subject", "datacontenttype", "data"} {
			require.Contains(t, ce, k)
		}
		require.JSONEq(t, `"dev.refit.model.promoted.v1"`, string(ce["type"]))
		require.JSONEq(t, `"refit/promote"`, string(ce["source"]))
		require.JSONEq(t, `"housing/promotion/1"`, string(ce["id"]))
		require.JSONEq(t, `"housing"`, string(ce["subject"]))
		want, _ := json.Marshal(e)
		require.JSONEq(t, string(want), string(ce["data"]))
	}
}

func TestSameEventTwiceIsDeliveredOnce(t *testing.T) {
	rc := &receiver{secret: secret}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	reg := registry.New(memory.New())
	d := newDispatcher(t, reg, secret, 3, srv.URL)
	ctx := context.Background()
	require.NoError(t, d.HandlePromoted(ctx, promoted(1)))
	require.NoError(t, d.HandlePromoted(ctx, promoted(1)), "a redelivered event")
	// Another replica (a new dispatcher on the same log) sees the same.
	require.NoError(t, newDispatcher(t, reg, secret, 3, srv.URL).HandlePromoted(ctx, promoted(1)))
	requests, _ := rc.snapshot()
	require.Len(t, requests, 1)

	require.NoError(t, d.HandlePromoted(ctx, promoted(2)))
	requests, handled := rc.snapshot()
	require.Len(t, requests, 2, "a new event is a new delivery")
	require.Len(t, handled, 2)
}

func TestWrongSecretFailsVerification(t *testing.T) {
	rc := &receiver{secret: secret}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	reg := registry.New(memory.New())
	d := newDispatcher(t, reg, "whsec-wrong", 2, srv.URL)
	ctx := context.Background()
	require.NoError(t, d.HandlePromoted(ctx, promoted(1)), "a failed delivery is logged, not retried by the bus")
	requests, handled := rc.snapshot()
	require.Len(t, requests, 2, "bounded attempts")
	require.Empty(t, handled)

	log, err := reg.WebhookDeliveries(ctx)
	require.NoError(t, err)
	require.Len(t, log, 3)
	require.Equal(t, http.StatusUnauthorized, log[0].HTTPStatus)
	require.Equal(t, registry.OutcomeFailed, log[2].Outcome)
	require.Contains(t, log[2].Error, "401")

	// Given up: a redelivered event does not start over.
	require.NoError(t, d.HandlePromoted(ctx, promoted(1)))
	requests, _ = rc.snapshot()
	require.Len(t, requests, 2)
}

func TestEachURLHasItsOwnDelivery(t *testing.T) {
	a, b := &receiver{secret: secret}, &receiver{secret: secret, failFirst: 1}
	sa, sb := httptest.NewServer(a), httptest.NewServer(b)
	defer sa.Close()
	defer sb.Close()
	require.NoError(t, newDispatcher(t, registry.New(memory.New()), secret, 3, sa.URL, sb.URL).HandlePromoted(context.Background(), promoted(1)))
	ra, ha := a.snapshot()
	rb, hb := b.snapshot()
	require.Len(t, ra, 1)
	require.Len(t, rb, 2)
	require.Len(t, ha, 1)
	require.Len(t, hb, 1)
	require.NotEqual(t, ra[0].Header.Get(webhook.HeaderDeliveryID), rb[0].Header.Get(webhook.HeaderDeliveryID))
}

func TestConfigIsValidated(t *testing.T) {
	log := registry.New(memory.New())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name string
		cfg  webhook.Config
		err  string
	}{
		{"no secret", webhook.Config{URLs: []string{"https://example.com/h"}, Log: log, Logger: logger}, "secret"},
		{"not http", webhook.Config{URLs: []string{"ftp://example.com/h"}, Secret: "s", Log: log, Logger: logger}, "http(s)"},
		{"credentials not echoed", webhook.Config{URLs: []string{"mailto://user:pw@x"}, Secret: "s", Log: log, Logger: logger}, "mailto://x"},
		{"no log", webhook.Config{URLs: []string{"https://example.com/h"}, Secret: "s", Logger: logger}, "webhook: Config.Log is nil"},
		{"no logger", webhook.Config{URLs: []string{"https://example.com/h"}, Secret: "s", Log: log}, "webhook: Config.Logger is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := webhook.NewDispatcher(tt.cfg)
			require.ErrorContains(t, err, tt.err)
			require.NotContains(t, err.Error(), "pw")
		})
	}
}

// TestRestartAfterA2xxDoesNotSendAgain: the sender logged a 2xx attempt
// and stopped before the outcome; the event comes again after a restart.
func TestRestartAfterA2xxDoesNotSendAgain(t *testing.T) {
	rc := &receiver{secret: secret}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	reg := registry.New(memory.New())
	ctx := context.Background()
	id := webhook.DeliveryID(srv.URL, "housing/promotion/1")
	base := registry.WebhookDelivery{DeliveryID: id, URL: srv.URL, EventID: "housing/promotion/1", Dataset: "housing"}
	claim, attempt := base, base
	claim.Kind, claim.Attempt, claim.At = registry.DeliveryClaim, 1, time.Now()
	attempt.Kind, attempt.Attempt, attempt.HTTPStatus, attempt.At = registry.DeliveryAttempt, 1, http.StatusNoContent, time.Now()
	require.NoError(t, reg.ClaimWebhookAttempt(ctx, claim))
	require.NoError(t, reg.AddWebhookDelivery(ctx, attempt))

	require.NoError(t, newDispatcher(t, reg, secret, 3, srv.URL).HandlePromoted(ctx, promoted(1)))
	requests, _ := rc.snapshot()
	require.Empty(t, requests, "delivered before the restart: not sent again")
	log, err := reg.WebhookDelivery(ctx, id)
	require.NoError(t, err)
	require.Len(t, log, 2)
	require.Equal(t, registry.OutcomeDelivered, log[1].Outcome)
}

// TestConcurrentSendersPostEachAttemptOnce: the same event handled twice
// at once (a bus redelivering while the first handler still retries, or
// two replicas) against a URL that always fails: every POST is one logged
// attempt, and no more than MaxAttempts are made.
func TestConcurrentSendersPostEachAttemptOnce(t *testing.T) {
	rc := &receiver{secret: secret, failFirst: 1 << 30}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	reg := registry.New(memory.New())
	ctx := context.Background()
	const attempts = 6
	var wg sync.WaitGroup
	for range 3 {
		d := newDispatcher(t, reg, secret, attempts, srv.URL)
		wg.Go(func() { require.NoError(t, d.HandlePromoted(ctx, promoted(1))) })
	}
	wg.Wait()
	requests, _ := rc.snapshot()
	log, err := reg.WebhookDelivery(ctx, webhook.DeliveryID(srv.URL, "housing/promotion/1"))
	require.NoError(t, err)
	logged := 0
	for _, rec := range log {
		if rec.Kind == registry.DeliveryAttempt {
			logged++
		}
	}
	require.Equal(t, len(requests), logged, "every POST is in the delivery log")
	require.Equal(t, attempts, len(requests), "MaxAttempts POSTs in all, not per sender")
	require.Equal(t, registry.OutcomeFailed, log[len(log)-1].Outcome)
}

// TestReconcileResumesACrashedClaim: the sender claimed attempt 1 and died
// (maybe after sending). Reconcile leaves a fresh claim alone (its sender
// may be working) and resumes a stale one under the same delivery ID.
func TestReconcileResumesACrashedClaim(t *testing.T) {
	rc := &receiver{secret: secret}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	reg := registry.New(memory.New())
	ctx := context.Background()
	claimedAt := time.Now()
	now := claimedAt
	d, err := webhook.NewDispatcher(webhook.Config{URLs: []string{srv.URL}, Secret: secret, Log: reg,
		Logger: slog.New(slog.DiscardHandler), MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
		StaleAfter: time.Minute, Now: func() time.Time { return now }})
	require.NoError(t, err)
	body, err := events.Structured(promoted(1), "refit/promote")
	require.NoError(t, err)
	id := webhook.DeliveryID(srv.URL, "housing/promotion/1")
	require.NoError(t, reg.ClaimWebhookAttempt(ctx, registry.WebhookDelivery{DeliveryID: id, Kind: registry.DeliveryClaim, URL: srv.URL,
		EventID: "housing/promotion/1", Dataset: "housing", Attempt: 1, At: claimedAt, Payload: string(body)}))

	now = claimedAt.Add(30 * time.Second)
	require.NoError(t, d.Reconcile(ctx))
	requests, _ := rc.snapshot()
	require.Empty(t, requests, "a fresh claim's sender may still be at work")

	now = claimedAt.Add(2 * time.Minute)
	require.NoError(t, d.Reconcile(ctx))
	requests, handled := rc.snapshot()
	require.Len(t, requests, 1)
	require.Equal(t, id, requests[0].Header.Get(webhook.HeaderDeliveryID), "the same delivery ID, so a receiver can dedupe")
	require.Equal(t, body, handled[id])
	log, err := reg.WebhookDelivery(ctx, id)
	require.NoError(t, err)
	require.Len(t, log, 2)
	require.Equal(t, 2, log[0].Attempt, "attempt 1 may have been sent: the resumed one is attempt 2")
	require.Equal(t, registry.OutcomeDelivered, log[1].Outcome)

	require.NoError(t, d.Reconcile(ctx))
	requests, _ = rc.snapshot()
	require.Len(t, requests, 1, "done: not resumed again")
}
