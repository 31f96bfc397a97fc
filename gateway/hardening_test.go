package gateway_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/client"
	"github.com/refit-ml/refit/gateway"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/workers/serve"
)

// housingInstance is a valid housing instance without its closing brace,
// so that a case can add a field.
const housingInstance = `{"bedrooms":3,"bathrooms":2,"sqft_living":1800,"sqft_lot":5000,"floors":1,"waterfront":0,"view":0,"condition":3,` +
	`"sqft_above":1800,"sqft_basement":0,"yr_built":1990,"yr_renovated":0,"street":"1 Main St","city":"Seattle","statezip":"WA 98103","country":"USA"`

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.String()
}

// TestHostileInputAnswers is issue 12's items 5, 14, 15 and 19: each bad
// input gets a 4xx that says what is wrong.
func TestHostileInputAnswers(t *testing.T) {
	f := newFixtureWith(t, gateway.Config{MaxBodyBytes: 64 << 10, MaxUploadBytes: 1 << 20}, func(*serve.Models) gateway.Publisher { return nopPublisher{} })
	f.promote(t, "linear-onehot", 300, 1)
	require.NoError(t, f.models.Refresh(context.Background()))
	predict := func(extra string) string { return `{"instances":[` + housingInstance + extra + `}]}` }
	correct := func(extra, label string) string {
		return `{"instance":` + housingInstance + extra + `},"label":` + label + `}`
	}
	const csvHeader = "price,bedrooms,bathrooms,sqft_living,sqft_lot,floors,waterfront,view,condition,sqft_above,sqft_basement,yr_built,yr_renovated,street,city,statezip,country\n"
	tests := []struct {
		name, method, path, contentType, encoding, body string
		expect                                          bool // send Expect: 100-continue
		status                                          int
		contains                                        string
		header                                          map[string]string
	}{
		// 14: booleans only for bool columns.
		{name: "predict: a boolean bedroom count", method: "POST", path: "/v1/models/housing:predict",
			body: predict(`,"bedrooms":true`), status: 400, contains: `bedrooms: true is a boolean; want a number`},
		{name: "predict: a boolean for a bool column stays fine", method: "POST", path: "/v1/models/housing:predict",
			body: predict(`,"waterfront":true`), status: 200, contains: `"predictions"`},
		{name: "correction: a boolean label", method: "POST", path: "/v1/datasets/housing/corrections",
			body: correct("", "true"), status: 400, contains: `label: true is a boolean; want a number`},
		{name: "correction: a boolean in the instance", method: "POST", path: "/v1/datasets/housing/corrections",
			body: correct(`,"sqft_living":false`, "500000"), status: 400, contains: `instance.sqft_living: false is a boolean; want a whole number`},
		// 19: clearer answers.
		{name: "predict: 1e400 overflows", method: "POST", path: "/v1/models/housing:predict",
			body: predict(`,"bedrooms":1e400`), status: 400, contains: `bedrooms: 1e400 overflows a 64-bit float`},
		{name: "correction: a label of 1e400 overflows", method: "POST", path: "/v1/datasets/housing/corrections",
			body: correct("", "1e400"), status: 400, contains: `label: 1e400 overflows a 64-bit float`},
		{name: "GET on :predict", method: "GET", path: "/v1/models/housing:predict",
			status: 405, contains: `POST /v1/models/housing:predict`, header: map[string]string{"Allow": "POST"}},
		{name: "predict: a byte order mark", method: "POST", path: "/v1/models/housing:predict",
			body: "\ufeff" + predict(""), status: 400, contains: "byte order mark"},
		{name: "correction: a byte order mark", method: "POST", path: "/v1/datasets/housing/corrections",
			body: "\ufeff" + correct("", "500000"), status: 400, contains: "byte order mark"},
		{name: "predict: gzip declared", method: "POST", path: "/v1/models/housing:predict", encoding: "gzip",
			body: gzipped(t, predict("")), status: 415, contains: `Content-Encoding \"gzip\" is not supported`},
		{name: "correction: gzip declared", method: "POST", path: "/v1/datasets/housing/corrections", encoding: "gzip",
			body: gzipped(t, correct("", "500000")), status: 415, contains: `Content-Encoding \"gzip\" is not supported`},
		{name: "upload: gzip declared", method: "POST", path: "/v1/datasets/housing/uploads?name=z", contentType: "text/csv", encoding: "br",
			body: "xx", status: 415, contains: `Content-Encoding \"br\" is not supported`},
		{name: "predict: gzip undeclared", method: "POST", path: "/v1/models/housing:predict",
			body: gzipped(t, predict("")), status: 415, contains: "gzip-compressed"},
		{name: "correction: the target in the instance", method: "POST", path: "/v1/datasets/housing/corrections",
			body: correct(`,"price":612000`, "612000"), status: 400, contains: `instance.price: the target goes in \"label\"`},
		{name: "upload: a header and no rows", method: "POST", path: "/v1/datasets/housing/uploads?name=h", contentType: "text/csv",
			body: csvHeader, status: 400, contains: "only a header line and no rows"},
		{name: "upload: empty", method: "POST", path: "/v1/datasets/housing/uploads?name=e", contentType: "text/csv",
			body: "", status: 400, contains: "the upload is empty"},
		{name: "upload: one row without its newline", method: "POST", path: "/v1/datasets/housing/uploads?name=one", contentType: "text/csv",
			body: csvHeader + "1,3,2,1800,5000,1,0,0,3,1800,0,1990,0,s,Seattle,WA 98103,USA", status: 201, contains: `"object":"incoming/housing/one.csv"`},
		// Expect: 100-continue, as the refit client sends it for a large
		// body: without it the client writes on while the server, which
		// answered without reading, closes, and the answer can be lost to a
		// reset (TCP discards what the client had not read).
		{name: "upload: declared larger than the limit", method: "POST", path: "/v1/datasets/housing/uploads?name=big", contentType: "text/csv",
			body: strings.Repeat("x", 1<<20+1), expect: true, status: 413, contains: "larger than the limit of 1048576 bytes"},
		{name: "correction: declared larger than the limit", method: "POST", path: "/v1/datasets/housing/corrections",
			body: strings.Repeat(" ", 64<<10+1), status: 413, contains: "larger than 65536 bytes"},
		// 5: a dropped column is accepted wherever rows are.
		{name: "correction: a dropped column", method: "POST", path: "/v1/datasets/housing/corrections",
			body: correct(`,"date":"2014-05-02 00:00:00"`, "612000"), status: 202, contains: `"id"`},
		{name: "predict: a dropped column", method: "POST", path: "/v1/models/housing:predict",
			body: predict(`,"date":"2014-05-02 00:00:00"`), status: 200, contains: `"predictions"`},
		// 15: names the bucket refuses.
		{name: "object: hidden", method: "GET", path: "/v1/datasets/housing/objects/.hidden", status: 400, contains: "segment starting with a dot"},
		{name: "object: NUL", method: "GET", path: "/v1/datasets/housing/objects/a%00b", status: 400, contains: "control character"},
		{name: "object: encoded ../", method: "GET", path: "/v1/datasets/housing/objects/..%2f..%2fetc%2fpasswd", status: 400, contains: "a . or .. segment"},
		{name: "object: encoded ../ inside", method: "GET", path: "/v1/datasets/housing/objects/a%2f..%2f..%2fx", status: 400, contains: "a . or .. segment"},
		{name: "object: doubled slash", method: "GET", path: "/v1/datasets/housing/objects/a%2f%2fb", status: 400, contains: "empty path segment"},
		{name: "object: a name that is fine but absent", method: "GET", path: "/v1/datasets/housing/objects/none.csv", status: 404, contains: "no upload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, f.srv.URL+tt.path, strings.NewReader(tt.body))
			require.NoError(t, err)
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			if tt.encoding != "" {
				req.Header.Set("Content-Encoding", tt.encoding)
			}
			if tt.expect {
				req.Header.Set("Expect", "100-continue")
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.status, resp.StatusCode, string(body))
			require.Contains(t, string(body), tt.contains)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			for k, v := range tt.header {
				require.Equal(t, v, resp.Header.Get(k), k)
			}
		})
	}
	// Nothing refused was stored.
	cs, err := f.reg.Corrections(context.Background(), "housing")
	require.NoError(t, err)
	require.Len(t, cs, 1, "only the correction with a dropped column")
	require.Equal(t, "2014-05-02 00:00:00", cs[0].Fields["date"])
	_, err = f.def.RowFromFields(cs[0].Fields, cs[0].Label)
	require.NoError(t, err, "the stored correction becomes a row as the preprocessor reads it")
	for _, name := range []string{"h", "e", "big", "z"} {
		_, err := f.bucket.Stat(context.Background(), "incoming/housing/"+name+".csv")
		require.Error(t, err, "refused upload %s was not stored", name)
	}
}

// slowServer is a gateway on a real TCP socket with short deadlines, its
// log kept for the test to read.
type slowServer struct {
	url, addr string
	logs      *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newSlowServer(t *testing.T, cfg gateway.Config) *slowServer {
	t.Helper()
	catalog, err := dataset.NewCatalog(shipped(t, "housing"))
	require.NoError(t, err)
	bucket, err := local.New(t.TempDir(), "test")
	require.NoError(t, err)
	reg := registry.New(memory.New())
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	metrics := prometheus.NewRegistry()
	models := serve.NewModels(catalog, bucket, reg, logger, metrics)
	srv, err := gateway.NewServer(cfg, gateway.Deps{Datasets: catalog, Registry: reg, Bucket: bucket,
		Publisher: nopPublisher{}, Models: models, Logger: logger, Metrics: metrics})
	require.NoError(t, err)
	// The production server's settings (cmd/refit/serve.go): only the
	// headers are bounded there.
	ts := httptest.NewUnstartedServer(srv)
	ts.Config.ReadHeaderTimeout = 10 * time.Second
	ts.Config.IdleTimeout = 2 * time.Minute
	ts.Start()
	t.Cleanup(ts.Close)
	return &slowServer{url: ts.URL, addr: ts.Listener.Addr().String(), logs: logs}
}

// trickle sends the request's headers at once and then its body a byte
// per interval, over a real TCP connection, while reading whatever the
// server answers. It returns when the server closes the connection, with
// what it answered and how long that took; it fails the test if the
// server still holds the connection after limit.
func trickle(t *testing.T, addr, head string, body []byte, every, limit time.Duration) (string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	start := time.Now()
	_, err = io.WriteString(conn, head)
	require.NoError(t, err)
	closed := make(chan struct{})
	var answer bytes.Buffer
	go func() {
		defer close(closed)
		_, _ = io.Copy(&answer, conn) // until the server closes (or resets)
	}()
	go func() {
		for _, c := range body {
			select {
			case <-closed:
				return
			case <-time.After(every):
			}
			if _, err := conn.Write([]byte{c}); err != nil {
				return
			}
		}
	}()
	select {
	case <-closed:
		return answer.String(), time.Since(start)
	case <-time.After(limit):
		t.Fatalf("the server still holds a slow client's connection after %s (answer so far %q)", limit, answer.String())
		return "", 0
	}
}

// TestSlowClientsAreCutOff is issue 12's item 11: a client sending its body
// a byte at a time cannot hold a connection, on any route.
func TestSlowClientsAreCutOff(t *testing.T) {
	const body = `{"instances":[{"bedrooms":3}]}`
	s := newSlowServer(t, gateway.Config{AdminToken: "s3cret", BodyTimeout: 500 * time.Millisecond,
		MinUploadRate: 2000, UploadStall: 700 * time.Millisecond})
	head := func(method, path string, n int, extra string) string {
		if extra == "" {
			extra = "Content-Type: application/json\r\n"
		}
		return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n", method, path, n, extra)
	}
	// limit only bounds a server that never cuts the client off: the
	// deadlines under test are 0.5 s and 0.7 s, so a loaded machine's
	// delays do not fail it.
	const every, limit = 150 * time.Millisecond, 20 * time.Second
	tests := []struct {
		name, head string
		status     string // the answer's status line, if any
	}{
		{"healthz with a body", head("GET", "/healthz", len(body), ""), "HTTP/1.1 200 OK"},
		{"admin route without the token", head("POST", "/v1/datasets/housing/promotions", len(body), ""), "HTTP/1.1 401 Unauthorized"},
		{"a correction", head("POST", "/v1/datasets/housing/corrections", len(body), ""), "HTTP/1.1 408 Request Timeout"},
		{"a prediction", head("POST", "/v1/models/housing:predict", len(body), ""), "HTTP/1.1 503 Service Unavailable"}, // no model yet
		{"an unknown route", head("POST", "/nowhere", len(body), ""), "HTTP/1.1 404 Not Found"},
		{"an upload below the minimum rate", head("POST", "/v1/datasets/housing/uploads?name=slow", 5000, "Authorization: Bearer s3cret\r\nContent-Type: text/csv\r\n"),
			"HTTP/1.1 408 Request Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answer, took := trickle(t, s.addr, tt.head, bytes.Repeat([]byte(" "), 5000)[:max(len(body), 5000)], every, limit)
			t.Logf("closed after %s: %q", took.Round(10*time.Millisecond), firstLine(answer))
			if tt.status != "" {
				require.Equal(t, tt.status, firstLine(answer))
			}
			if answer != "" {
				require.Contains(t, answer, "Connection: close", "an answer sent before the body was read closes the connection")
			}
		})
	}
	// A fast enough upload is not cut, however long it is in total.
	rows := "price,bedrooms\n" + strings.Repeat("1,2\n", 2000)
	req, err := http.NewRequest("POST", s.url+"/v1/datasets/housing/uploads?name=fast", strings.NewReader(rows))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(out))
}

// TestUploadAtTheMinimumRatePasses: pacing extends the deadline as bytes
// arrive, so an upload slower than a flat body timeout but above the rate
// goes through.
func TestUploadAtTheMinimumRatePasses(t *testing.T) {
	// 415 bytes, 10 every 40 ms or slower: at least 1.7 s, past the flat
	// body timeout of 1 s. Each 10 bytes earn 100 ms at the minimum rate,
	// so only a pause of 2 s (the stall) could cut it: scheduling delays
	// on a loaded machine do not.
	s := newSlowServer(t, gateway.Config{BodyTimeout: time.Second, MinUploadRate: 100, UploadStall: 2 * time.Second})
	rows := []byte("price,bedrooms\n" + strings.Repeat("1,2\n", 100))
	head := fmt.Sprintf("POST /v1/datasets/housing/uploads?name=paced HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(rows))
	conn, err := net.Dial("tcp", s.addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, head)
	require.NoError(t, err)
	for i := 0; i < len(rows); i += 10 {
		_, err := conn.Write(rows[i:min(i+10, len(rows))])
		require.NoError(t, err)
		time.Sleep(40 * time.Millisecond)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	out, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(out))
}

// TestUploadCutByTheClient is issue 12's item 20: a client that goes away
// mid-upload is its own doing: logged below ERROR, counted apart from 5xx.
func TestUploadCutByTheClient(t *testing.T) {
	s := newSlowServer(t, gateway.Config{})
	conn, err := net.Dial("tcp", s.addr)
	require.NoError(t, err)
	_, err = io.WriteString(conn, "POST /v1/datasets/housing/uploads?name=cut HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 100000\r\n\r\nprice,bedrooms\n1,2\n")
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, conn.Close())
	metric := func() string {
		resp, err := http.Get(s.url + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "refit_upload_requests_total{") {
				return line
			}
		}
		return ""
	}
	require.Eventually(t, func() bool { return metric() != "" }, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, `refit_upload_requests_total{dataset="housing",status="client_closed"} 1`, metric())
	require.NotContains(t, s.logs.String(), "level=ERROR")
	require.Contains(t, s.logs.String(), "upload cut short by the client")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// TestDatasetIngestsArePaged is issue 12's item 20: GET /v1/datasets/{d}
// lists its ingests a page at a time, with the counts over all of them.
func TestDatasetIngestsArePaged(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 120
	for i := range n {
		// Pairs share a time: the cursor must tell them apart by ID.
		in := registry.Ingest{ID: fmt.Sprintf("i%03d", i), Dataset: "housing", Accepted: 2, Rejected: 1,
			Source: registry.Source{Kind: registry.SourceCorrection, CorrectionID: fmt.Sprint(i)}, StagedAt: t0.Add(time.Duration(i/2) * time.Second)}
		require.NoError(t, f.reg.RecordIngest(ctx, in))
	}
	type page struct {
		Ingests []struct {
			ID       string    `json:"id"`
			StagedAt time.Time `json:"staged_at"`
		} `json:"ingests"`
		Next string `json:"ingests_next"`
		Rows struct{ Accepted, Rejected, Sources int }
	}
	get := func(query string) (int, page, int) {
		code, _, body := f.call(t, "GET", "/v1/datasets/housing"+query, "", "")
		var p page
		if code == http.StatusOK {
			require.NoError(t, json.Unmarshal(body, &p))
		}
		return code, p, len(body)
	}
	code, first, size := get("")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, first.Ingests, 50, "the default page")
	require.Equal(t, "i119", first.Ingests[0].ID, "newest first")
	require.Equal(t, n, first.Rows.Sources)
	require.Equal(t, 2*n, first.Rows.Accepted, "counts cover every ingest, not the page")
	t.Logf("first page: %d bytes for %d of %d ingests", size, len(first.Ingests), n)

	seen := map[string]bool{}
	var last time.Time
	cursor, pages := "", 0
	for {
		code, p, _ := get("?limit=7&cursor=" + cursor)
		require.Equal(t, http.StatusOK, code)
		pages++
		for _, in := range p.Ingests {
			require.False(t, seen[in.ID], "ingest %s on two pages", in.ID)
			seen[in.ID] = true
			if !last.IsZero() {
				require.False(t, in.StagedAt.After(last), "newest first across pages")
			}
			last = in.StagedAt
		}
		if p.Next == "" {
			break
		}
		if pages == 1 {
			// An ingest arriving between two pages shifts nothing.
			require.NoError(t, f.reg.RecordIngest(ctx, registry.Ingest{ID: "new", Dataset: "housing",
				Source: registry.Source{Kind: registry.SourceCorrection, CorrectionID: "new"}, StagedAt: t0.Add(time.Hour)}))
		}
		cursor = p.Next
	}
	require.Len(t, seen, n, "every ingest once")
	require.Equal(t, 18, pages)

	for _, q := range []string{"?limit=0", "?limit=x", "?limit=100000", "?cursor=bogus"} {
		code, _, _ := get(q)
		require.Equal(t, http.StatusBadRequest, code, q)
	}
}

// TestClientUploadOverTheLimitGetsTheReason: the refit client offers a
// large upload with Expect: 100-continue, so the gateway's refusal, sent
// before it reads the body, is what the user sees, every time (without it
// the answer raced the server's close and was sometimes a reset).
func TestClientUploadOverTheLimitGetsTheReason(t *testing.T) {
	f := newFixtureWith(t, gateway.Config{MaxBodyBytes: 64 << 10, MaxUploadBytes: 1 << 20}, func(*serve.Models) gateway.Publisher { return nopPublisher{} })
	c := client.New(f.srv.URL)
	body := bytes.Repeat([]byte("x"), 8<<20) // well past the 256 KiB net/http drains before closing
	for range 20 {
		_, err := c.Upload(context.Background(), "housing", "big.csv", bytes.NewReader(body), int64(len(body)))
		require.Error(t, err)
		require.Contains(t, err.Error(), "larger than the limit of 1048576 bytes")
	}
}
