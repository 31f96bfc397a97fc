package gateway_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/gateway"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/registry"
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
