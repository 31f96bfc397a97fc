package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/client"
	"github.com/refit-ml/refit/internal/synth"
)

// syncBuffer collects a program's output while it runs.
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

// program is refit started through run(), as main would.
type program struct {
	t      *testing.T
	base   string
	cancel context.CancelFunc
	done   chan error
	stderr *syncBuffer
}

var listening = regexp.MustCompile(`refit listening on (http://\S+)`)

func startProgram(t *testing.T, dataDir string, args ...string) *program {
	t.Helper()
	return startProgramEnv(t, dataDir, nil, args...)
}

// startProgramEnv starts refit with extra settings.
func startProgramEnv(t *testing.T, dataDir string, extra map[string]string, args ...string) *program {
	t.Helper()
	env := map[string]string{
		"REFIT_DATA_DIR":           dataDir,
		"REFIT_HTTP_ADDR":          "127.0.0.1:0",
		"REFIT_RECONCILE_INTERVAL": "1s",
		"REFIT_WATCH_INTERVAL":     "50ms",
		"REFIT_MODEL_REFRESH":      "1s",
		"REFIT_LOG_LEVEL":          "warn",
	}
	for k, v := range extra {
		env[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	p := &program{t: t, cancel: cancel, done: make(chan error, 1), stderr: stderr}
	if len(args) == 0 {
		args = []string{"run"}
	}
	go func() { p.done <- run(ctx, args, func(k string) string { return env[k] }, stdout, stderr) }()
	t.Cleanup(p.stop)
	deadline := time.Now().Add(30 * time.Second)
	for p.base == "" {
		if m := listening.FindStringSubmatch(stdout.String()); m != nil {
			p.base = m[1]
			break
		}
		select {
		case err := <-p.done:
			t.Fatalf("refit exited at start: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "refit did not start:\n%s", stderr.String())
	}
	p.eventually("ready", func() bool { return p.api().Ready(context.Background()) == nil })
	return p
}

func (p *program) stop() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		require.NoError(p.t, err, p.stderr.String())
	case <-time.After(30 * time.Second):
		p.t.Fatal("refit did not stop within 30 s of its context ending")
	}
}

// api is the typed client the CLI uses, on this program's gateway.
func (p *program) api() *client.Client { return client.New(p.base) }

// admin is api with the admin token.
func (p *program) admin() *client.Client { return client.New(p.base, client.WithToken(adminToken)) }

// upload sends content through c as incoming/<ds>/<name>.csv.
func (p *program) upload(c *client.Client, ds, name string, content []byte) client.Uploaded {
	p.t.Helper()
	u, err := c.Upload(context.Background(), ds, name, bytes.NewReader(content), int64(len(content)))
	require.NoError(p.t, err)
	return u
}

// promotions is the dataset's promotion history, oldest first.
func (p *program) promotions() []client.Promotion {
	p.t.Helper()
	h, err := p.api().Promotions(context.Background(), "housing")
	require.NoError(p.t, err)
	return h.Promotions
}

// do sends a request by hand, for the tests of the wire itself (bodies
// and headers the typed client never sends); the rest use api().
func (p *program) do(method, path, contentType string, body []byte) (int, []byte) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.base+path, bytes.NewReader(body))
	require.NoError(p.t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	client := http.DefaultClient
	if len(body) > 1<<20 {
		// As curl does past 1 MiB: the gateway may refuse the body on its
		// Content-Length (413) and close, and a client still sending it
		// then meets a reset that can discard the answer (flaky under
		// load). Waiting for "100 Continue" sends nothing it will refuse.
		req.Header.Set("Expect", "100-continue")
		client = &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
		defer client.CloseIdleConnections()
	}
	resp, err := client.Do(req)
	require.NoError(p.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(p.t, err)
	return resp.StatusCode, b
}

func (p *program) eventually(what string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %s\n%s", what, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dataset is GET /v1/datasets/housing.
func (p *program) dataset() client.Dataset {
	p.t.Helper()
	v, err := p.api().Dataset(context.Background(), "housing")
	require.NoError(p.t, err)
	return v
}

// model is GET /v1/models/<ds>.
func (p *program) model(ds string) client.ModelStatus {
	p.t.Helper()
	m, err := p.api().Model(context.Background(), ds)
	require.NoError(p.t, err)
	return m
}

// serving reports whether the gateway serves a model: the promotion is in
// the registry before the gateway has loaded it.
func (p *program) serving() bool { return p.model("housing").Ready }

func generate(t *testing.T, seed int64, rows int) []byte {
	var buf bytes.Buffer
	require.NoError(t, synth.Housing{Seed: seed}.Write(&buf, rows))
	return buf.Bytes()
}

// houses turns a generated CSV into predict instances and true prices.
func houses(t *testing.T, content []byte) ([]map[string]any, []float64) {
	recs, err := csv.NewReader(bytes.NewReader(content)).ReadAll()
	require.NoError(t, err)
	var inst []map[string]any
	var truth []float64
	for _, rec := range recs[1:] {
		fields := map[string]string{}
		m := map[string]any{}
		for i, name := range recs[0] {
			fields[name] = rec[i]
			if name != "price" {
				m[name] = rec[i]
			}
		}
		price, err := synth.TruePrice(fields)
		require.NoError(t, err)
		inst, truth = append(inst, m), append(truth, price)
	}
	return inst, truth
}

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	p := startProgram(t, dir)
	api := p.api()

	_, err := api.PredictJSON(ctx, "housing", []byte(`{"instances":[{"bedrooms":3}]}`))
	require.Equal(t, http.StatusServiceUnavailable, client.StatusCode(err), "no model yet: %v", err)
	require.ErrorContains(t, err, "no model promoted")

	// 1. Upload through the API.
	first := generate(t, 11, 3000)
	require.Equal(t, "incoming/housing/first.csv", p.upload(api, "housing", "first", first).Object)
	p.eventually("first promotion served", p.serving)

	// 2. Predictions close to the ground truth on houses it never saw.
	inst, truth := houses(t, generate(t, 99, 200))
	pred, err := api.Predict(ctx, "housing", inst)
	require.NoError(t, err)
	require.Len(t, pred.Predictions, len(truth))
	require.Equal(t, 1, pred.Model.DatasetVersion)
	var sse float64
	for i, y := range pred.Predictions {
		sse += (y.Value - truth[i]) * (y.Value - truth[i])
	}
	rmse := math.Sqrt(sse / float64(len(truth)))
	t.Logf("RMSE against the noise-free truth: %.0f (noise sd %.0f)", rmse, synth.NoiseSD)
	require.Less(t, rmse, synth.NoiseSD/2, "the model must learn the ground truth")

	// 3. Corrections are stored and counted.
	for i := range 3 {
		_, err := api.Correct(ctx, "housing", client.Correction{Instance: inst[i], Label: truth[i] + 1000})
		require.NoError(t, err)
	}
	p.eventually("corrections staged", func() bool { return p.dataset().StagedRows == 3 })

	// 4. A second file, dropped into the bucket folder, makes version 2.
	second := generate(t, 12, 700)
	incoming := filepath.Join(dir, "bucket", "incoming", "housing")
	require.NoError(t, os.WriteFile(filepath.Join(incoming, ".second.csv.part"), second, 0o644))
	require.NoError(t, os.Rename(filepath.Join(incoming, ".second.csv.part"), filepath.Join(incoming, "second.csv")))
	p.eventually("version 2", func() bool { return len(p.dataset().Versions) == 2 })
	var runs client.RunsPage
	p.eventually("runs on version 2", func() bool {
		runs, err = api.Runs(ctx, "housing", client.RunsQuery{})
		require.NoError(t, err)
		return len(runs.Runs) == 4
	})
	var history client.History
	p.eventually("decisions on version 2", func() bool {
		history, err = api.Promotions(ctx, "housing")
		require.NoError(t, err)
		return len(history.Decisions) == 4
	})
	for _, d := range history.Decisions {
		require.NotEmpty(t, d.Reason)
	}
	v := p.dataset()
	require.Equal(t, 3000+700+3, v.Versions[1].Rows, "version 2 holds both files and the corrections")
	require.Equal(t, 0, v.StagedRows)
	before := v

	// 5. The same file again changes nothing: the overwrite with the same
	// bytes is the same generation; the copy under another name adds no
	// row, so no version is cut: its upload says its rows are duplicates
	// of version 2, and nothing trains.
	p.upload(api, "housing", "first", first)
	p.upload(api, "housing", "first-again", first)
	p.eventually("the copy is counted as duplicates", func() bool { return p.dataset().Rows.Duplicate == 3000 })
	after := p.dataset()
	require.Equal(t, before.Versions, after.Versions, "a batch of duplicates is not a version")
	require.Equal(t, before.Rows.Accepted, after.Rows.Accepted, "accepted counts the rows the dataset holds, not duplicates")
	require.Equal(t, 0, after.StagedRows)
	require.Equal(t, before.Champion, after.Champion)
	copied, err := api.Object(ctx, "housing", "first-again.csv")
	require.NoError(t, err)
	require.Len(t, copied.Generations, 1)
	require.Equal(t, "duplicate", copied.Generations[0].Status)
	require.NotNil(t, copied.Generations[0].DuplicateOf)
	require.Equal(t, 2, *copied.Generations[0].DuplicateOf)
	require.Equal(t, 2, *copied.Generations[0].FirstVersion, "a client waiting for a version returns at once")
	// Give a wrongly triggered training time to show up before counting.
	time.Sleep(300 * time.Millisecond)
	runs, err = api.Runs(ctx, "housing", client.RunsQuery{})
	require.NoError(t, err)
	require.Len(t, runs.Runs, 4, "nothing trained on the duplicate version")

	// 6. A restart serves the champion at once, from the store.
	p.stop()
	p = startProgram(t, dir)
	status := p.model("housing")
	require.True(t, status.Ready)
	require.NotNil(t, status.Model)
	require.Equal(t, before.Champion.RunID, status.Model.ID)
	require.Equal(t, after.Versions, p.dataset().Versions)
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	p := startProgram(t, t.TempDir())
	p.upload(p.api(), "housing", "seed", generate(t, 5, 800))
	p.eventually("a model served", p.serving)
	inst, _ := houses(t, generate(t, 6, 1))
	good, _ := json.Marshal(inst[0])
	withField := func(k string, v any) string {
		m := map[string]any{}
		_ = json.Unmarshal(good, &m)
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name, method, path, contentType, body string
		status                                int
		field, contains                       string
	}{
		{"predict ok", "POST", "/v1/models/housing:predict", "application/json", `{"instances":[` + string(good) + `]}`, 200, "", "predictions"},
		{"curl's form content type", "POST", "/v1/models/housing:predict", "application/x-www-form-urlencoded", `{"instances":[` + string(good) + `]}`, 200, "", "predictions"},
		{"malformed json", "POST", "/v1/models/housing:predict", "application/json", `{"instances":[`, 400, "", "malformed JSON"},
		{"no instances", "POST", "/v1/models/housing:predict", "application/json", `{"instances":[]}`, 400, "instances", "at least one"},
		{"unknown top-level field", "POST", "/v1/models/housing:predict", "application/json", `{"instance":[]}`, 400, "instance", "unknown field"},
		{"wrong type", "POST", "/v1/models/housing:predict", "application/json", `{"instances":[` + withField("bedrooms", "three") + `]}`, 400, "bedrooms", "not a number"},
		{"missing field", "POST", "/v1/models/housing:predict", "application/json", `{"instances":[` + withField("city", nil) + `]}`, 400, "city", "missing"},
		{"unknown field", "POST", "/v1/models/housing:predict", "application/json", `{"instances":[` + withField("pool", 1) + `]}`, 400, "pool", "unknown field"},
		{"out of range", "POST", "/v1/models/housing:predict", "application/json", `{"instances":[` + withField("condition", 9) + `]}`, 400, "condition", "out of range"},
		{"nested value", "POST", "/v1/models/housing:predict", "application/json", `{"instances":[` + withField("city", map[string]any{"a": 1}) + `]}`, 400, "city", "want a number"},
		{"oversized body", "POST", "/v1/models/housing:predict", "application/json", `{"instances":[` + strings.Repeat(string(good)+",", 8000) + string(good) + `]}`, 413, "", "larger than"},
		{"unknown dataset", "POST", "/v1/models/boats:predict", "application/json", `{"instances":[{}]}`, 404, "", "unknown dataset"},
		{"unknown verb", "POST", "/v1/models/housing:explain", "application/json", `{}`, 404, "", "unknown method"},
		{"correction without label", "POST", "/v1/datasets/housing/corrections", "application/json", `{"instance":` + string(good) + `}`, 400, "label", "required"},
		{"correction with bad label", "POST", "/v1/datasets/housing/corrections", "application/json", `{"instance":` + string(good) + `,"label":0}`, 400, "label", "out of range"},
		{"correction with bad field", "POST", "/v1/datasets/housing/corrections", "application/json", `{"instance":` + withField("yr_built", 1492) + `,"label":500000}`, 400, "yr_built", "out of range"},
		{"correction missing field", "POST", "/v1/datasets/housing/corrections", "application/json", `{"instance":` + withField("street", nil) + `,"label":500000}`, 400, "street", "missing"},
		{"upload wrong type", "POST", "/v1/datasets/housing/uploads", "application/json", `{}`, 415, "", "text/csv"},
		{"upload bad name", "POST", "/v1/datasets/housing/uploads?name=../../etc/passwd", "text/csv", "a,b\n", 400, "name", "name"},
		{"no route", "GET", "/v2/nothing", "", "", 404, "", "no route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := p.do(tt.method, tt.path, tt.contentType, []byte(tt.body))
			require.Equal(t, tt.status, code, string(body))
			require.Contains(t, string(body), tt.contains)
			if tt.field != "" {
				var e struct{ Field string }
				require.NoError(t, json.Unmarshal(body, &e))
				require.Equal(t, tt.field, e.Field, string(body))
			}
		})
	}
}

func TestMisconfigurationStopsWithOneLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"REFIT_PROFILE": "cloud"}, []string{"serve"}, "REFIT_PROFILE"},
		{map[string]string{"REFIT_HTTP_ADDR": "8080"}, []string{"serve"}, "REFIT_HTTP_ADDR"},
		{map[string]string{"REFIT_RECONCILE_INTERVAL": "soon"}, []string{"serve"}, "REFIT_RECONCILE_INTERVAL"},
		{map[string]string{"REFIT_PROFILE": "gcp"}, []string{"serve"}, "REFIT_GCP_PROJECT"},
		{map[string]string{"REFIT_PROFILE": "gcp", "REFIT_GCP_PROJECT": "p", "REFIT_BUCKET": "b", "REFIT_MONGODB_URI": "postgres://x"}, []string{"serve"}, "REFIT_MONGODB_URI"},
		{nil, []string{"serve", "--target=trian"}, "unknown target \"trian\""},
		{nil, []string{"frobnicate"}, "unknown command"},
		{map[string]string{"REFIT_DATASETS_DIR": "/no/such/defs"}, []string{"serve"}, "REFIT_DATASETS_DIR: /no/such/defs: no such file or directory"},
		{map[string]string{"REFIT_PROFILE": "gcp"}, []string{"run"}, "REFIT_PROFILE: \"gcp\": refit run is the embedded profile"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, &out, &errOut)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
			require.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestGenIsDeterministic(t *testing.T) {
	t.Parallel()
	var a, b bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"gen", "housing", "--rows", "50", "--seed", "4"}, os.Getenv, &a, io.Discard))
	require.NoError(t, run(context.Background(), []string{"gen", "--seed=4", "housing", "--rows=50"}, os.Getenv, &b, io.Discard))
	require.Equal(t, a.String(), b.String())
	require.Equal(t, 51, strings.Count(a.String(), "\n"))
	require.True(t, strings.HasPrefix(a.String(), "date,price,bedrooms"), fmt.Sprintf("%.60s", a.String()))
}

func TestExitWhenIdle(t *testing.T) {
	t.Parallel()
	env := map[string]string{"REFIT_DATA_DIR": t.TempDir(), "REFIT_HTTP_ADDR": "127.0.0.1:0", "REFIT_EXIT_WHEN_IDLE": "300ms", "REFIT_LOG_LEVEL": "warn"}
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"serve", "--target=train"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
	}()
	select {
	case err := <-done:
		require.NoError(t, err, "an idle trainer exits cleanly")
	case <-time.After(30 * time.Second):
		t.Fatal("an idle trainer with REFIT_EXIT_WHEN_IDLE did not exit")
	}
}
