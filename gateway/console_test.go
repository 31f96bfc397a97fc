package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/gateway"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers/serve"
)

const xss = `<script>alert(1)</script><img src=x onerror=alert(2)>`

func TestConsolePages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.promote(t, "linear-onehot", 300, 1)
	require.NoError(t, f.models.Refresh(ctx))
	f.addRun(t, "linear-onehot", 200, time.Now())
	_, err := f.bucket.Write(ctx, "quarantine/housing/i1.csv", blob.CreateOnly, func(w io.Writer) error {
		_, err := io.WriteString(w, "line,reason,record\n3,bad price,\"1,2,"+xss+"\"\n")
		return err
	})
	require.NoError(t, err)
	require.NoError(t, f.reg.RecordIngest(ctx, registry.Ingest{ID: "i1", Dataset: "housing",
		Source:   registry.Source{Kind: registry.SourceObject, Bucket: "test", Object: "incoming/housing/" + xss},
		Accepted: 10, Rejected: 1, Quarantine: "quarantine/housing/i1.csv", Reason: "", StagedAt: time.Now()}))

	tests := []struct {
		name, path  string
		status      int
		contentType string
		contains    []string
		absent      []string
	}{
		{"index", "/", 200, "text/html", []string{"housing", `href="/console/housing/pipeline"`}, nil},
		{"predict form", "/console/housing", 200, "text/html",
			[]string{`<label for="in-sqft_living">`, `type="number"`, `<datalist id="l-city">`, "Champion", "Corrections received"}, nil},
		{"pipeline escapes what a CSV supplied", "/console/housing/pipeline", 200, "text/html",
			[]string{"&lt;script&gt;alert(1)&lt;/script&gt;", "/v1/datasets/housing/ingests/i1/quarantine", "<svg", "Promotion history",
				"Rejected rows of incoming/housing/&lt;script&gt;", "1,2,&lt;script&gt;", "bad price"},
			[]string{xss, "<script>alert"}},
		{"unknown dataset", "/console/nope/pipeline", 404, "text/html", []string{"unknown dataset", "housing"}, nil},
		{"quarantine report", "/v1/datasets/housing/ingests/i1/quarantine", 200, "text/csv", []string{"line,reason,record", xss}, nil},
		{"no such ingest", "/v1/datasets/housing/ingests/zz/quarantine", 404, "application/json", []string{"not found"}, nil},
		{"assets are embedded", "/static/console/console.js", 200, "text/javascript", []string{"textContent"}, []string{"innerHTML ="}},
		{"the picker without JS", "/console/?dataset=housing", 200, "text/html", []string{`<label for="in-city">`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, body := f.call(t, "GET", tt.path, "", "")
			require.Equal(t, tt.status, code, string(body))
			require.Contains(t, h.Get("Content-Type"), tt.contentType)
			for _, s := range tt.contains {
				require.Contains(t, string(body), s)
			}
			for _, s := range tt.absent {
				require.NotContains(t, string(body), s)
			}
			if strings.HasPrefix(tt.contentType, "text/html") {
				require.Contains(t, h.Get("Content-Security-Policy"), "default-src 'self'")
			}
		})
	}
}

func TestConsoleAsksForTheAdminTokenOnlyWhenOneIsSet(t *testing.T) {
	tests := []struct {
		name  string
		token string
		asks  bool
	}{
		{"open laptop mode", "", false},
		{"token configured", "s3cret", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixtureWith(t, gateway.Config{AdminToken: tt.token}, follow)
			code, _, body := f.call(t, "GET", "/console/housing/pipeline", "", "")
			require.Equal(t, 200, code)
			require.Equal(t, tt.asks, strings.Contains(string(body), "data-token-form"))
			require.NotContains(t, string(body), "s3cret", "the page never carries the token")
		})
	}
}

// republishing records what the console's Replay button republished.
type republishing struct {
	nopPublisher
	topics []string
}

func (p *republishing) Republish(_ context.Context, topic string, _ []byte, _ map[string]string, _ string) (string, error) {
	p.topics = append(p.topics, topic)
	return "m-replayed", nil
}

// The pipeline page lists dead letters and replays one for an admin: the
// page carries the section and its script, the script reads the API's JSON
// fields through textContent only, and the calls it makes answer as it
// expects (the token required, a replay once).
func TestConsoleDeadLetters(t *testing.T) {
	pub := &republishing{}
	f := newFixtureWith(t, gateway.Config{AdminToken: "s3cret"}, func(*serve.Models) gateway.Publisher { return pub })
	ctx := context.Background()
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	require.NoError(t, f.reg.AddDeadLetter(ctx, registry.DeadLetter{MessageID: "m1", Topic: "refit.object-finalized",
		Handler: "preprocess", Reason: "unknown dataset " + xss, Payload: `{"name":"incoming/flats/a.csv"}`, At: at}))

	code, _, page := f.call(t, "GET", "/console/housing/pipeline", "", "")
	require.Equal(t, 200, code)
	require.Contains(t, string(page), `data-deadletters`)
	require.Contains(t, string(page), `<script src="/static/console/deadletters.js" defer></script>`)
	require.NotContains(t, string(page), "unknown dataset", "dead letters are admin data: never in the page itself")

	code, h, js := f.call(t, "GET", "/static/console/deadletters.js", "", "")
	require.Equal(t, 200, code)
	require.Contains(t, h.Get("Content-Type"), "text/javascript")
	for _, s := range []string{`"/v1/deadletters"`, `"/replay"`, "d.reason", "d.topic", "d.at", "d.id", "d.replay", "textContent",
		`"refit-admin-token"`, "Authorization"} {
		require.Contains(t, string(js), s)
	}
	require.NotContains(t, string(js), "innerHTML")
	require.NotContains(t, string(js), "insertAdjacentHTML")

	code, _, _ = f.call(t, "GET", "/v1/deadletters", "", "")
	require.Equal(t, 401, code, "listing needs the admin token")
	var list struct {
		DeadLetters []struct {
			ID, Topic, Handler, Reason string
			At                         time.Time
			Replay                     *struct{ Actor string }
		} `json:"dead_letters"`
	}
	code, _, body := f.call(t, "GET", "/v1/deadletters", "Bearer s3cret", "")
	require.Equal(t, 200, code, string(body))
	require.NoError(t, json.Unmarshal(body, &list))
	require.Len(t, list.DeadLetters, 1)
	d := list.DeadLetters[0]
	require.Equal(t, "refit.object-finalized", d.Topic)
	require.Equal(t, "unknown dataset "+xss, d.Reason, "the JSON carries the reason as is; the script writes it as text")
	require.Equal(t, at, d.At.UTC())
	require.NotEmpty(t, d.ID)
	require.Nil(t, d.Replay)

	code, _, _ = f.call(t, "POST", "/v1/deadletters/"+d.ID+"/replay", "", "")
	require.Equal(t, 401, code, "replay needs the admin token")
	var rp struct {
		MessageID string `json:"message_id"`
		Already   bool   `json:"already"`
	}
	code, _, body = f.call(t, "POST", "/v1/deadletters/"+d.ID+"/replay", "Bearer s3cret", "")
	require.Equal(t, 200, code, string(body))
	require.NoError(t, json.Unmarshal(body, &rp))
	require.Equal(t, "m-replayed", rp.MessageID)
	require.False(t, rp.Already)
	code, _, body = f.call(t, "POST", "/v1/deadletters/"+d.ID+"/replay", "Bearer s3cret", "")
	require.Equal(t, 200, code, string(body))
	require.NoError(t, json.Unmarshal(body, &rp))
	require.True(t, rp.Already, "a second click replays nothing")
	require.Equal(t, []string{"refit.object-finalized"}, pub.topics)

	code, _, body = f.call(t, "GET", "/v1/deadletters", "Bearer s3cret", "")
	require.Equal(t, 200, code)
	require.NoError(t, json.Unmarshal(body, &list))
	require.NotNil(t, list.DeadLetters[0].Replay, "the page then shows who replayed it")
}
