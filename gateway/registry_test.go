package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/gateway"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers/serve"
)

// following hands model.promoted to the gateway's models at once, as the
// gateway's own subscription does.
type following struct{ models *serve.Models }

func (p following) Publish(ctx context.Context, e events.Event) error {
	if pe, ok := e.(*events.ModelPromoted); ok {
		return p.models.HandlePromoted(ctx, pe)
	}
	return nil
}

func follow(m *serve.Models) gateway.Publisher { return following{m} }

// addRun fits spec on the first n rows and records it as a run of version 1.
func (f *fixture) addRun(t *testing.T, spec string, n int, created time.Time) registry.Run {
	t.Helper()
	ctx := context.Background()
	s, _ := f.def.Spec(spec)
	rows := f.rows[:n]
	art, err := model.Fit(ctx, f.def, s, func(fn func(dataset.StagedRow) error) error {
		for _, r := range rows {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	b, err := art.Marshal()
	require.NoError(t, err)
	id := registry.RunID(s.Hash(), fmt.Sprint(n))
	name := "models/housing/" + id + ".json"
	_, err = f.bucket.Write(ctx, name, blob.CreateOnly, func(w io.Writer) error { _, err := w.Write(b); return err })
	require.NoError(t, err)
	if _, err := f.reg.Version(ctx, "housing", 1); registry.IsNotFound(err) {
		require.NoError(t, f.reg.AddVersion(ctx, registry.Version{Dataset: "housing", Number: 1, Hash: strings.Repeat("a", 64), Rows: len(f.rows)}))
	}
	run := registry.Run{ID: id, Dataset: "housing", Spec: spec, SpecHash: s.Hash(), Version: 1, VersionHash: strings.Repeat("a", 64),
		TrainRows: n, Metrics: registry.Metrics{Metrics: events.Metrics{Rows: 10, RMSE: float64(n)}}, Artifact: name, ArtifactURI: blob.URI(f.bucket, name),
		Checksum: model.Checksum(b), CreatedAt: created}
	require.NoError(t, f.reg.AddRun(ctx, run))
	return run
}

func (f *fixture) call(t *testing.T, method, path, token, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b
}

func TestAdminCallsNeedTheToken(t *testing.T) {
	f := newFixtureWith(t, gateway.Config{AdminToken: "s3cret", ProtectPredict: true}, follow)
	run := f.addRun(t, "linear-onehot", 300, time.Now())
	promoteBody := `{"run_id":"` + run.ID + `"}`
	tests := []struct {
		name, method, path, auth, body string
		status                         int
		contains                       string
	}{
		{"promote without a token", "POST", "/v1/datasets/housing/promotions", "", promoteBody, 401, "admin token"},
		{"promote with a wrong token", "POST", "/v1/datasets/housing/promotions", "Bearer guess", promoteBody, 401, "invalid token"},
		{"promote with a longer wrong token", "POST", "/v1/datasets/housing/promotions", "Bearer s3cret-and-more", promoteBody, 401, "invalid token"},
		{"basic auth is not a bearer token", "POST", "/v1/datasets/housing/promotions", "Basic czNjcmV0", promoteBody, 401, "admin token"},
		{"rollback without a token", "POST", "/v1/datasets/housing/promotions", "", `{"rollback":true}`, 401, "admin token"},
		{"upload without a token", "POST", "/v1/datasets/housing/uploads?name=a", "", "a,b\n", 401, "admin token"},
		{"reproduce without a token", "POST", "/v1/runs/" + run.ID + "/reproduce", "", "", 401, "admin token"},
		{"delivery log without a token", "GET", "/v1/webhooks/deliveries", "", "", 401, "admin token"},
		{"protected predictions", "POST", "/v1/models/housing:predict", "", `{"instances":[{}]}`, 401, "admin token"},
		{"open corrections reach validation", "POST", "/v1/datasets/housing/corrections", "", `{}`, 400, "instance"},
		{"reads stay open", "GET", "/v1/datasets/housing/runs", "", "", 200, run.ID},
		{"delivery log with the token", "GET", "/v1/webhooks/deliveries", "Bearer s3cret", "", 200, "deliveries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, body := f.call(t, tt.method, tt.path, tt.auth, tt.body)
			require.Equal(t, tt.status, code, string(body))
			require.Contains(t, string(body), tt.contains)
			require.NotContains(t, string(body), "s3cret")
			if code == http.StatusUnauthorized {
				require.Equal(t, `Bearer realm="refit"`, h.Get("WWW-Authenticate"))
			}
		})
	}
	proms, err := f.reg.Promotions(context.Background(), "housing")
	require.NoError(t, err)
	require.Empty(t, proms, "a refused call changes nothing")

	code, _, body := f.call(t, "POST", "/v1/datasets/housing/promotions", "Bearer s3cret", promoteBody)
	require.Equal(t, http.StatusCreated, code, string(body))
	code, _, body = f.call(t, "POST", "/v1/models/housing:predict", "bearer s3cret", string(f.predictBody(t)))
	require.Equal(t, http.StatusOK, code, string(body))

	_, err = gateway.NewServer(gateway.Config{ProtectCorrections: true}, gateway.Deps{})
	require.Error(t, err, "protecting corrections without a token cannot work")
}

type promotionView struct {
	Sequence      int64  `json:"sequence"`
	RunID         string `json:"run_id"`
	PreviousRunID string `json:"previous_run_id"`
	Actor         string `json:"actor"`
	Reason        string `json:"reason"`
}

func TestPromoteAndRollbackMoveTheServedModel(t *testing.T) {
	f := newFixtureWith(t, gateway.Config{}, follow)
	a := f.addRun(t, "linear-onehot", 300, time.Now())
	b := f.addRun(t, "linear-hashed", 300, time.Now())
	post := func(body string) (int, promotionView, string) {
		code, _, out := f.call(t, "POST", "/v1/datasets/housing/promotions", "", body)
		var p promotionView
		_ = json.Unmarshal(out, &p)
		return code, p, string(out)
	}
	served := func() string { return f.models.Current("housing").Promotion.RunID }

	code, _, out := post(`{"rollback":true}`)
	require.Equal(t, http.StatusConflict, code, "nothing to roll back yet: %s", out)

	code, p, out := post(`{"run_id":"` + a.ID + `"}`)
	require.Equal(t, http.StatusCreated, code, out)
	require.Equal(t, promotionView{Sequence: 1, RunID: a.ID, Actor: "admin", Reason: p.Reason}, p)
	require.Contains(t, p.Reason, "promoted by hand")
	require.Equal(t, a.ID, served())

	code, _, out = post(`{"rollback":true}`)
	require.Equal(t, http.StatusConflict, code, "the first champion has no previous one: %s", out)

	code, p, out = post(`{"run_id":"` + b.ID + `","actor":"ana","reason":"try the hashed one"}`)
	require.Equal(t, http.StatusCreated, code, out)
	require.Equal(t, promotionView{Sequence: 2, RunID: b.ID, PreviousRunID: a.ID, Actor: "ana", Reason: "try the hashed one"}, p)
	require.Equal(t, b.ID, served())

	code, p, out = post(`{"rollback":true,"actor":"ana"}`)
	require.Equal(t, http.StatusCreated, code, out)
	require.Equal(t, int64(3), p.Sequence)
	require.Equal(t, a.ID, p.RunID)
	require.Equal(t, b.ID, p.PreviousRunID)
	require.Contains(t, p.Reason, "rollback by ana")
	require.Equal(t, a.ID, served())
	require.Equal(t, int64(3), f.models.Current("housing").Promotion.Sequence)

	corrupt := b
	corrupt.ID, corrupt.Checksum = "00000000000000c0", "sha256:"+strings.Repeat("0", 64)
	require.NoError(t, f.reg.AddRun(context.Background(), corrupt))
	tests := []struct {
		name, body string
		status     int
		contains   string
	}{
		{"artifact does not match its checksum", `{"run_id":"` + corrupt.ID + `"}`, 409, "cannot be served"},
		{"already the champion", `{"run_id":"` + a.ID + `"}`, 409, "already the champion"},
		{"unknown run", `{"run_id":"ffffffffffffffff"}`, 404, "no run"},
		{"neither", `{}`, 400, "run_id"},
		{"both", `{"run_id":"` + b.ID + `","rollback":true}`, 400, "exclude"},
		{"unknown field", `{"run":"x"}`, 400, "unknown field"},
		{"bad actor", `{"run_id":"` + b.ID + `","actor":"<script>"}`, 400, "actor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, out := post(tt.body)
			require.Equal(t, tt.status, code, out)
			require.Contains(t, out, tt.contains)
		})
	}
	var history struct{ Promotions []promotionView }
	_, _, body := f.call(t, "GET", "/v1/datasets/housing/promotions", "", "")
	require.NoError(t, json.Unmarshal(body, &history))
	require.Len(t, history.Promotions, 3, "refused calls add nothing")

	var detail struct {
		ID         string             `json:"id"`
		Params     *dataset.ModelSpec `json:"params"`
		Promotions []int64            `json:"promotions"`
		Lineage    registry.Lineage   `json:"lineage"`
	}
	code, _, body = f.call(t, "GET", "/v1/runs/"+a.ID, "", "")
	require.Equal(t, http.StatusOK, code, string(body))
	require.NoError(t, json.Unmarshal(body, &detail))
	require.Equal(t, a.ID, detail.ID)
	require.NotNil(t, detail.Params)
	spec, _ := f.def.Spec("linear-onehot")
	require.Equal(t, spec.Hash(), detail.Params.Hash())
	require.Equal(t, []int64{1, 3}, detail.Promotions)
	require.Equal(t, 1, detail.Lineage.Version)
	code, _, _ = f.call(t, "GET", "/v1/runs/ffffffffffffffff", "", "")
	require.Equal(t, http.StatusNotFound, code)
}

func TestRunsArePagedInAStableOrder(t *testing.T) {
	f := newFixtureWith(t, gateway.Config{}, follow)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	var want []string
	for i := range 7 {
		spec := []string{"linear-onehot", "linear-hashed"}[i%2]
		// Pairs share a creation time: the ID breaks the tie.
		created := t0.Add(time.Duration(i/2) * time.Minute)
		run := registry.Run{ID: fmt.Sprintf("%016x", 100-i), Dataset: "housing", Spec: spec, Version: 1 + i/4, CreatedAt: created}
		require.NoError(t, f.reg.AddRun(ctx, run))
	}
	all, err := f.reg.Runs(ctx, "housing")
	require.NoError(t, err)
	for _, r := range all {
		want = append(want, r.CreatedAt.Format(time.RFC3339)+" "+r.ID)
	}
	slices.Sort(want)

	type page struct {
		Runs []struct {
			ID        string    `json:"id"`
			Spec      string    `json:"spec"`
			Version   int       `json:"version"`
			CreatedAt time.Time `json:"created_at"`
		} `json:"runs"`
		Next string `json:"next_page_token"`
	}
	get := func(query string) (int, page) {
		code, _, body := f.call(t, "GET", "/v1/datasets/housing/runs?"+query, "", "")
		var p page
		_ = json.Unmarshal(body, &p)
		return code, p
	}
	var got []string
	sizes := []int{}
	token := ""
	for {
		code, p := get("limit=3&page_token=" + token)
		require.Equal(t, http.StatusOK, code)
		sizes = append(sizes, len(p.Runs))
		for _, r := range p.Runs {
			got = append(got, r.CreatedAt.Format(time.RFC3339)+" "+r.ID)
		}
		if p.Next == "" {
			break
		}
		token = p.Next
	}
	require.Equal(t, []int{3, 3, 1}, sizes)
	require.Equal(t, want, got)

	_, p := get("spec=linear-hashed")
	require.Len(t, p.Runs, 3)
	for _, r := range p.Runs {
		require.Equal(t, "linear-hashed", r.Spec)
	}
	_, p = get("version=2&limit=2")
	require.Len(t, p.Runs, 2)
	require.NotEmpty(t, p.Next)
	_, p = get("version=2&page_token=" + p.Next)
	require.Len(t, p.Runs, 1)

	for _, bad := range []string{"limit=0", "limit=5000", "limit=x", "version=-1", "page_token=%21%21", "page_token=bm90LWEtdG9rZW4"} {
		code, _ := get(bad)
		require.Equal(t, http.StatusBadRequest, code, bad)
	}
}

// sse reads a Server-Sent Events stream one event (or comment) at a time.
type sse struct {
	body io.ReadCloser
	r    *bufio.Reader
}

func openStream(t *testing.T, url string) *sse {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	s := &sse{body: resp.Body, r: bufio.NewReader(resp.Body)}
	t.Cleanup(func() { resp.Body.Close() })
	require.Equal(t, ": subscribed\n", s.block(t))
	return s
}

// block returns the next block of lines, up to the blank line.
func (s *sse) block(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for {
		line, err := s.r.ReadString('\n')
		require.NoError(t, err)
		if line == "\n" {
			return b.String()
		}
		b.WriteString(line)
	}
}

// event returns the next block that is not a heartbeat.
func (s *sse) event(t *testing.T) string {
	t.Helper()
	for {
		if b := s.block(t); b != ": heartbeat\n" {
			return b
		}
	}
}

func TestEventStream(t *testing.T) {
	f := newFixtureWith(t, gateway.Config{Heartbeat: 30 * time.Millisecond}, follow)
	stream := openStream(t, f.srv.URL+"/v1/events?dataset=housing")
	all := openStream(t, f.srv.URL+"/v1/events")
	require.Equal(t, 2, f.hub.Subscribers())

	other := &events.ModelPromoted{Meta: events.Meta{ID: "boats/promotion/1", Dataset: "boats"}, Sequence: 1}
	e := &events.ModelPromoted{Meta: events.Meta{ID: "housing/promotion/7", Dataset: "housing"}, Sequence: 7, ModelID: "0123456789abcdef"}
	require.NoError(t, f.hub.HandlePromoted(context.Background(), other))
	require.NoError(t, f.hub.HandlePromoted(context.Background(), e))
	data, _ := json.Marshal(e)
	want := "id: housing/promotion/7\nevent: dev.refit.model.promoted.v1\ndata: " + string(data) + "\n"
	require.Equal(t, want, stream.event(t), "the other dataset's event is filtered out")
	require.Contains(t, all.event(t), "boats/promotion/1")
	require.Equal(t, want, all.event(t))
	require.Equal(t, ": heartbeat\n", stream.block(t), "nothing else to send: a heartbeat comes")

	v := &events.DatasetVersioned{Meta: events.Meta{ID: "housing/v2", Dataset: "housing"}, Version: 2}
	require.NoError(t, f.hub.HandleVersioned(context.Background(), v))
	require.Contains(t, stream.event(t), "event: dev.refit.dataset.versioned.v1\n")

	// A client that goes is unsubscribed.
	stream.body.Close()
	all.body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for f.hub.Subscribers() > 0 {
		require.True(t, time.Now().Before(deadline), "subscriptions left: %d", f.hub.Subscribers())
		time.Sleep(10 * time.Millisecond)
	}

	code, _, body := f.call(t, "GET", "/v1/events?dataset=boats", "", "")
	require.Equal(t, http.StatusNotFound, code, string(body))

	// Closing the hub ends open streams (server shutdown).
	last := openStream(t, f.srv.URL+"/v1/events")
	f.hub.Close()
	rest, err := io.ReadAll(last.r)
	require.NoError(t, err)
	require.NotContains(t, string(rest), "id:")
}

func TestHubDropsASubscriberThatFallsBehind(t *testing.T) {
	hub := gateway.NewHub()
	slow, _ := hub.Subscribe("")
	fast, stop := hub.Subscribe("housing")
	defer stop()
	n := 0
	for i := range 100 {
		require.NoError(t, hub.Publish(&events.DatasetVersioned{Meta: events.Meta{ID: fmt.Sprint(i), Dataset: "housing"}}))
		<-fast // keeps up
	}
	for range slow {
		n++
	}
	require.Less(t, n, 100, "the slow subscriber was dropped, its channel closed")
	require.Equal(t, 1, hub.Subscribers())
	stop()
	stop() // twice is fine
	require.Zero(t, hub.Subscribers())
}

// A decision is taken once; the API and the console show where the run
// stands now, after people promoted runs by hand.
func TestDecisionShowsTheRunsStandingNow(t *testing.T) {
	f := newFixtureWith(t, gateway.Config{}, follow)
	ctx := context.Background()
	a := f.addRun(t, "linear-onehot", 300, time.Now())
	b := f.addRun(t, "linear-hashed", 300, time.Now())
	t0 := time.Now().UTC()
	require.NoError(t, f.reg.AddDecision(ctx, registry.Decision{RunID: a.ID, Dataset: "housing", Status: registry.StatusRejected,
		Reason: "above promotion.max.rmse", DecidedAt: t0}))
	require.NoError(t, f.reg.AddDecision(ctx, registry.Decision{RunID: b.ID, Dataset: "housing", Status: registry.StatusAwaitingApproval,
		Reason: "awaiting approval", DecidedAt: t0.Add(time.Second)}))
	type standing struct {
		RunID    string `json:"run_id"`
		Status   string `json:"status"`
		Decided  string `json:"decided"`
		Sequence int64  `json:"sequence"`
		Champion bool   `json:"champion"`
	}
	standings := func() []standing {
		var out struct{ Decisions []standing }
		code, _, body := f.call(t, "GET", "/v1/datasets/housing/promotions", "", "")
		require.Equal(t, http.StatusOK, code, string(body))
		require.NoError(t, json.Unmarshal(body, &out))
		return out.Decisions
	}
	runStanding := func(id string) standing {
		var out struct{ Decision standing }
		code, _, body := f.call(t, "GET", "/v1/runs/"+id, "", "")
		require.Equal(t, http.StatusOK, code, string(body))
		require.NoError(t, json.Unmarshal(body, &out))
		return out.Decision
	}
	pipeline := func() string {
		code, _, body := f.call(t, "GET", "/console/housing/pipeline", "", "")
		require.Equal(t, http.StatusOK, code, string(body))
		return string(body)
	}
	require.Equal(t, []standing{{a.ID, "rejected", "", 0, false}, {b.ID, "awaiting_approval", "", 0, false}}, standings())
	require.Contains(t, pipeline(), "awaiting_approval")
	require.Contains(t, pipeline(), ">rejected<")

	// Promoted by hand although rejected: promoted, and the champion.
	code, _, out := f.call(t, "POST", "/v1/datasets/housing/promotions", "", `{"run_id":"`+a.ID+`"}`)
	require.Equal(t, http.StatusCreated, code, string(out))
	require.Equal(t, []standing{{a.ID, "promoted", "rejected", 1, true}, {b.ID, "awaiting_approval", "", 0, false}}, standings())

	// Approved by hand: no longer awaiting approval, anywhere.
	code, _, out = f.call(t, "POST", "/v1/datasets/housing/promotions", "", `{"run_id":"`+b.ID+`","actor":"ana","reason":"approved"}`)
	require.Equal(t, http.StatusCreated, code, string(out))
	require.Equal(t, []standing{{a.ID, "promoted", "rejected", 1, false}, {b.ID, "promoted", "awaiting_approval", 2, true}}, standings())
	require.Equal(t, standing{b.ID, "promoted", "awaiting_approval", 2, true}, runStanding(b.ID))
	require.NotContains(t, pipeline(), "awaiting_approval")
	require.NotContains(t, pipeline(), ">rejected<")
}

// Reproducing a run whose rows are gone says so, with a 409 naming the
// blob, rather than a bare 500.
func TestReproduceAnUnreadableBlobSaysWhy(t *testing.T) {
	f := newFixtureWith(t, gateway.Config{}, follow)
	ctx := context.Background()
	require.NoError(t, f.reg.AddVersion(ctx, registry.Version{Dataset: "housing", Number: 1, Hash: strings.Repeat("a", 64),
		Rows: len(f.rows), Blobs: []string{"datasets/housing/rows/gone.csv"}}))
	run := f.addRun(t, "linear-onehot", 300, time.Now())
	code, _, body := f.call(t, "POST", "/v1/runs/"+run.ID+"/reproduce", "", "")
	require.Equal(t, http.StatusConflict, code, string(body))
	require.Contains(t, string(body), "rows of version 1 cannot be read")
	require.Contains(t, string(body), "datasets/housing/rows/gone.csv")
}
