package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/client"
	"github.com/refit-ml/refit/webhook"
)

const adminToken = "e2e-s3cret"

// hookReceiver verifies each webhook delivery and keeps the events, once
// per delivery ID.
type hookReceiver struct {
	mu       sync.Mutex
	events   map[string]string // delivery ID -> event ID
	rejected int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, body, err := webhook.VerifyRequest(r, "whsec-e2e", 5*time.Minute, time.Now())
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.rejected++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ce struct{ ID string }
	_ = json.Unmarshal(body, &ce)
	h.events[id] = ce.ID
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ids []string
	for _, e := range h.events {
		ids = append(ids, e)
	}
	return ids
}

// cli runs a client command against p, with or without the admin token.
func (p *program) cli(token string, args ...string) (string, error) {
	p.t.Helper()
	env := map[string]string{"REFIT_SERVER": p.base, "REFIT_ADMIN_TOKEN": token, "USER": "e2e"}
	var out, errOut syncBuffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String() + errOut.String(), err
}

// served is the model the gateway answers housing with (zero when none).
func (p *program) served() client.ModelInfo {
	p.t.Helper()
	if m := p.model("housing").Model; m != nil {
		return *m
	}
	return client.ModelInfo{}
}

func TestRegistryThroughTheAPI(t *testing.T) {
	t.Parallel()
	hooks := &hookReceiver{events: map[string]string{}}
	receiver := httptest.NewServer(hooks)
	defer receiver.Close()
	p := startProgramEnv(t, t.TempDir(), map[string]string{
		"REFIT_ADMIN_TOKEN":    adminToken,
		"REFIT_PREDICT_AUTH":   "token",
		"REFIT_WEBHOOKS":       receiver.URL + "/hooks",
		"REFIT_WEBHOOK_SECRET": "whsec-e2e",
	})
	require.NotContains(t, p.stderr.String(), adminToken, "the token is never logged")
	ctx := context.Background()
	api, admin := p.api(), p.admin()

	// Uploads are admin calls.
	first := generate(t, 21, 2000)
	_, err := api.Upload(ctx, "housing", "first", bytes.NewReader(first), int64(len(first)))
	require.Equal(t, http.StatusUnauthorized, client.StatusCode(err), "%v", err)
	require.Empty(t, p.dataset().Rows.Sources, "a refused upload stores nothing")
	p.upload(admin, "housing", "first", first)
	p.eventually("first promotion and both decisions", func() bool {
		h, err := api.Promotions(ctx, "housing")
		require.NoError(t, err)
		return p.dataset().Champion != nil && len(h.Decisions) == 2
	})

	// Subscribe before anything else is promoted.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	var watchOut, watchErr syncBuffer
	watchDone := make(chan error, 1)
	go func() {
		env := map[string]string{"REFIT_SERVER": p.base}
		watchDone <- run(watchCtx, []string{"watch", "--dataset", "housing"}, func(k string) string { return env[k] }, &watchOut, &watchErr)
	}()
	defer func() {
		stopWatch()
		require.NoError(t, <-watchDone)
	}()
	p.eventually("watch subscribed", func() bool { return strings.Contains(watchErr.String(), "watching ") })

	runs, err := api.Runs(ctx, "housing", client.RunsQuery{})
	require.NoError(t, err)
	require.Len(t, runs.Runs, 2)
	ids := map[string]string{}
	for _, r := range runs.Runs {
		ids[r.Spec] = r.ID
	}
	onehot, hashed := ids["linear-onehot"], ids["linear-hashed"]
	require.Equal(t, onehot, p.served().ID, "one-hot wins the automatic decision")

	out, err := p.cli(adminToken, "runs", "housing")
	require.NoError(t, err, out)
	require.Regexp(t, `RUN\s+SPEC\s+VERSION\s+RMSE`, out)
	require.Regexp(t, onehot+`\s+linear-onehot\s+1\s.*champion`, out)
	// Both specs are fitted together, so which decision comes first is
	// up to delivery: hashed is rejected against one-hot, or promoted
	// first and then replaced by it.
	require.Regexp(t, hashed+`\s+linear-hashed\s+1\s.*(rejected|promoted)`, out)
	require.Contains(t, out, "just now")
	out, err = p.cli("", "versions", "housing")
	require.NoError(t, err, out)
	require.Regexp(t, `VERSION\s+ROWS.*\n1\s+\d+`, out)

	// Refused without the token: nothing moves.
	_, err = api.Promote(ctx, "housing", client.PromoteRequest{RunID: hashed})
	require.Equal(t, http.StatusUnauthorized, client.StatusCode(err), "%v", err)
	out, err = p.cli("", "promote", hashed)
	require.ErrorContains(t, err, "401", out)
	out, err = p.cli("wrong", "rollback", "housing")
	require.ErrorContains(t, err, "invalid token", out)
	// One or two automatic promotions, depending on which decision came
	// first; the champion is one-hot either way.
	base := p.served().Sequence
	require.Contains(t, []int64{1, 2}, base)
	seq := func(k int64) string { return strconv.FormatInt(base+k, 10) }

	// Promote by hand, then roll back: the gateway follows each at once.
	out, err = p.cli(adminToken, "promote", hashed, "--reason", "try it")
	require.NoError(t, err, out)
	require.Contains(t, out, "promotion #"+seq(1)+" of housing: run "+hashed)
	p.eventually("the gateway serves the promoted run", func() bool { return p.served().ID == hashed })
	out, err = p.cli(adminToken, "rollback", "housing")
	require.NoError(t, err, out)
	require.Contains(t, out, "promotion #"+seq(2)+" of housing: run "+onehot)
	p.eventually("the gateway serves the previous champion", func() bool { return p.served().Sequence == base+2 })
	require.Equal(t, onehot, p.served().ID)
	p.eventually("watch prints both", func() bool {
		return strings.Contains(watchOut.String(), "housing promotion #"+seq(1)+": model "+hashed) &&
			strings.Contains(watchOut.String(), "housing promotion #"+seq(2)+": model "+onehot)
	})
	require.NotContains(t, watchOut.String(), "promotion #"+seq(0)+":", "watch prints what happens from now on")

	out, err = p.cli("", "promotions", "housing")
	require.NoError(t, err, out)
	require.Regexp(t, `(?m)^`+seq(1)+`\s+`+hashed+`\s+linear-hashed\s+1\s+\S+\s+`+onehot+`\s+e2e\s`, out)
	require.Contains(t, out, "rollback by e2e")

	// Predictions are behind the token here (REFIT_PREDICT_AUTH=token).
	inst, _ := houses(t, generate(t, 22, 1))
	_, err = api.Predict(ctx, "housing", inst)
	require.Equal(t, http.StatusUnauthorized, client.StatusCode(err), "%v", err)
	pred, err := admin.Predict(ctx, "housing", inst)
	require.NoError(t, err)
	require.Equal(t, onehot, pred.Model.ID)

	// Lineage: rows per source add up to the version.
	lineage, err := api.RunLineage(ctx, onehot)
	require.NoError(t, err)
	require.Equal(t, 1, lineage.Version)
	require.Len(t, lineage.Chain, 1)
	sum := 0
	for _, s := range lineage.Sources {
		sum += s.Rows
		require.Equal(t, "incoming/housing/first.csv", s.Object)
		require.NotZero(t, s.Generation)
		require.NotEmpty(t, s.Bucket)
	}
	require.Equal(t, lineage.Rows, sum)
	require.Equal(t, p.dataset().Versions[0].Rows, sum)

	// What became of each upload.
	obj, err := api.Object(ctx, "housing", "first.csv")
	require.NoError(t, err)
	require.Len(t, obj.Generations, 1)
	require.Equal(t, "accepted", obj.Generations[0].Status)
	require.True(t, obj.Generations[0].Current)
	require.Equal(t, 1, *obj.Generations[0].FirstVersion)
	p.upload(admin, "housing", "junk", []byte("price,bedrooms\nabc,3\n"))
	p.eventually("the bad file is ingested", func() bool {
		// By its full object name, which the route takes too (Object
		// sends the short one).
		raw, err := api.GetJSON(ctx, "/v1/datasets/housing/objects/incoming/housing/junk.csv")
		require.NoError(t, err)
		obj = client.ObjectHistory{}
		require.NoError(t, json.Unmarshal(raw, &obj), string(raw))
		return obj.Generations[0].Status != "pending"
	})
	require.Equal(t, "rejected", obj.Generations[0].Status)
	require.NotEmpty(t, obj.Generations[0].Quarantine)
	require.Nil(t, obj.Generations[0].FirstVersion)
	_, err = api.Object(ctx, "housing", "never.csv")
	require.Equal(t, http.StatusNotFound, client.StatusCode(err), "%v", err)

	// The run can be retrained to the same bytes.
	out, err = p.cli("", "reproduce", onehot)
	require.ErrorContains(t, err, "401", out)
	out, err = p.cli(adminToken, "reproduce", onehot)
	require.NoError(t, err, out)
	require.Contains(t, out, "identical")

	// Every promotion reached the webhook, signed, once per delivery.
	var want []string
	for n := int64(1); n <= base+2; n++ {
		want = append(want, "housing/promotion/"+strconv.FormatInt(n, 10))
	}
	p.eventually("a webhook delivery per promotion", func() bool { return len(hooks.received()) == len(want) })
	require.ElementsMatch(t, want, hooks.received())
	require.Zero(t, hooks.rejected)
	_, err = api.WebhookDeliveries(ctx, "")
	require.Equal(t, http.StatusUnauthorized, client.StatusCode(err), "%v", err)
	var log []client.WebhookDelivery
	p.eventually("a delivered outcome per promotion", func() bool {
		log, err = admin.WebhookDeliveries(ctx, "")
		require.NoError(t, err)
		n := 0
		for _, d := range log {
			if d.Kind == "outcome" && d.Outcome == "delivered" {
				n++
			}
		}
		return n == len(want)
	})
	require.Equal(t, receiver.URL+"/hooks", log[0].URL)
	require.NotContains(t, p.stderr.String(), adminToken)
	require.NotContains(t, p.stderr.String(), "whsec-e2e")
}

func TestAccessSettingsAreChecked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"REFIT_PREDICT_AUTH": "token"}, "REFIT_PREDICT_AUTH: token needs REFIT_ADMIN_TOKEN"},
		{map[string]string{"REFIT_CORRECTIONS_AUTH": "closed"}, "REFIT_CORRECTIONS_AUTH"},
		{map[string]string{"REFIT_WEBHOOKS": "https://example.com/h"}, "REFIT_WEBHOOK_SECRET"},
		{map[string]string{"REFIT_WEBHOOKS": "example.com/h?key=abc", "REFIT_WEBHOOK_SECRET": "s"}, "REFIT_WEBHOOKS"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			var out, errOut syncBuffer
			err := run(context.Background(), []string{"serve"}, func(k string) string { return tt.env[k] }, &out, &errOut)
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), "key=abc")
		})
	}
}

func TestAgo(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		at   time.Time
		want string
	}{
		{now.Add(-10 * time.Second), "just now"},
		{now.Add(-3*time.Minute - 20*time.Second), "3 min ago"},
		{now.Add(-5 * time.Hour), "5 h ago"},
		{now.Add(-72 * time.Hour), "3 days ago"},
		{now.Add(-90 * 24 * time.Hour), "2026-08-25"},
		{now.Add(time.Hour), "2026-11-23 13:00"},
		{time.Time{}, "-"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, ago(tt.at, now), tt.at.String())
	}
}
