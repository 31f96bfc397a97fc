// Package client is a typed client of Refit's HTTP API: what the refit
// CLI, the benchmarks and the tests use, and what another Go program can
// import to upload files, ask for predictions, send corrections and read
// or change the model registry.
//
//	c := client.New("http://localhost:8080", client.WithToken(os.Getenv("REFIT_ADMIN_TOKEN")))
//	ds, err := c.Dataset(ctx, "housing")
//
// Every error from the gateway is an *Error with the HTTP status and the
// gateway's message; a gateway that cannot be reached gives a
// *ConnectError naming the address and where it came from.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Client calls one gateway. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	// origin says where base came from (a flag, a variable, the default),
	// so an unreachable gateway is reported with the setting to change.
	origin string
	hc     *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token as "Authorization: Bearer <token>": admin calls
// need it when the gateway has REFIT_ADMIN_TOKEN; other calls ignore it.
func WithToken(token string) Option { return func(c *Client) { c.token = strings.TrimSpace(token) } }

// WithHTTPClient uses hc instead of http.DefaultClient.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithOrigin names where the base URL came from (e.g. "REFIT_SERVER"), for
// the message when the gateway cannot be reached.
func WithOrigin(origin string) Option { return func(c *Client) { c.origin = origin } }

// New calls the gateway at base, e.g. http://localhost:8080.
func New(base string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(base, "/"), hc: http.DefaultClient}
	for _, o := range opts {
		o(c)
	}
	return c
}

// DefaultServer is the gateway's address when nothing says otherwise.
const DefaultServer = "http://localhost:8080"

// FromEnv builds the client the refit CLI uses: server (a --server flag)
// when set, else REFIT_SERVER, else the address REFIT_HTTP_ADDR makes the
// gateway listen on (so moving the port moves the client too), else
// DefaultServer; REFIT_ADMIN_TOKEN as the bearer token.
func FromEnv(getenv func(string) string, server string, opts ...Option) *Client {
	base, origin := DefaultServer, "the default"
	switch {
	case strings.TrimSpace(server) != "":
		base, origin = strings.TrimSpace(server), "--server"
	case strings.TrimSpace(getenv("REFIT_SERVER")) != "":
		base, origin = strings.TrimSpace(getenv("REFIT_SERVER")), "REFIT_SERVER"
	case strings.TrimSpace(getenv("REFIT_HTTP_ADDR")) != "":
		if u, ok := URLForListenAddr(strings.TrimSpace(getenv("REFIT_HTTP_ADDR"))); ok {
			base, origin = u, "REFIT_HTTP_ADDR="+strings.TrimSpace(getenv("REFIT_HTTP_ADDR"))
		}
	}
	return New(base, append([]Option{WithToken(getenv("REFIT_ADMIN_TOKEN")), WithOrigin(origin)}, opts...)...)
}

// URLForListenAddr turns a listen address (":8080", "0.0.0.0:9000",
// "127.0.0.1:9000") into the URL a client on the same machine calls.
func URLForListenAddr(addr string) (string, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "", false
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return "", false
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port), true
}

// Base is the gateway's URL.
func (c *Client) Base() string { return c.base }

// Error is an answer of the gateway other than the one expected: its
// status and the gateway's message ({"error", "field"}).
type Error struct {
	Method, Path string
	StatusCode   int
	Status       string // e.g. "404 Not Found"
	Message      string
	Field        string // the request field at fault, when the gateway names one
}

func (e *Error) Error() string { return e.Status + ": " + e.Message }

// StatusCode returns the HTTP status of an *Error in err's chain, else 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// ConnectError is a gateway that could not be reached.
type ConnectError struct {
	Base, Origin string
	Err          error
}

func (e *ConnectError) Error() string {
	hint := ""
	if e.Origin != "" {
		hint = " (from " + e.Origin + ")"
	}
	return fmt.Sprintf("cannot reach the gateway at %s%s: %v; is refit running there? Set REFIT_SERVER (or --server) to its URL",
		e.Base, hint, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// do sends one request and returns the response when its status is want;
// otherwise it reads the gateway's error into an *Error.
// expectContinueBytes: bodies larger than this wait for the gateway's
// "100 Continue" (http.DefaultTransport waits up to a second for it).
const expectContinueBytes = 1 << 20

func (c *Client) do(ctx context.Context, method, path, contentType string, body io.Reader, size int64, want int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if size >= 0 && body != nil {
		// A known length: the gateway sees Content-Length, not chunks.
		req.ContentLength = size
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if size > expectContinueBytes {
		// The gateway can refuse a large body (over its limit, or
		// unauthorised) before it is sent: its answer then reaches the user,
		// not a connection reset by a server that stopped reading.
		req.Header.Set("Expect", "100-continue")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var oe *net.OpError
		var dns *net.DNSError
		if ctx.Err() == nil && (errors.As(err, &oe) && oe.Op == "dial" || errors.As(err, &dns)) {
			return nil, &ConnectError{Base: c.base, Origin: c.origin, Err: err}
		}
		return nil, err
	}
	if want != 0 && resp.StatusCode != want {
		defer resp.Body.Close()
		return nil, readError(method, path, resp)
	}
	return resp, nil
}

func readError(method, path string, resp *http.Response) error {
	e := &Error{Method: method, Path: path, StatusCode: resp.StatusCode, Status: resp.Status}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	var body struct {
		Error string `json:"error"`
		Field string `json:"field"`
	}
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		e.Message, e.Field = body.Error, body.Field
	} else {
		e.Message = strings.TrimSpace(string(b))
	}
	return e
}

// call sends in as JSON (nothing when nil) and decodes a want-status
// answer into out (when not nil).
func (c *Client) call(ctx context.Context, method, path string, in any, want int, out any) error {
	var body io.Reader
	size := int64(-1)
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, size = bytes.NewReader(b), int64(len(b))
	}
	resp, err := c.do(ctx, method, path, "application/json", body, size, want)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return nil
}

func (c *Client) get(ctx context.Context, path string, out any) error {
	return c.call(ctx, http.MethodGet, path, nil, http.StatusOK, out)
}

// GetJSON returns the JSON the gateway answers to GET path, untyped: for
// printing it as it came, or a route this package does not type.
func (c *Client) GetJSON(ctx context.Context, path string) (json.RawMessage, error) {
	var raw json.RawMessage
	return raw, c.get(ctx, path, &raw)
}

func esc(s string) string { return url.PathEscape(s) }

// Ready asks /readyz: nil once the gateway serves.
func (c *Client) Ready(ctx context.Context) error {
	return c.call(ctx, http.MethodGet, "/readyz", nil, http.StatusOK, nil)
}

// Datasets lists the gateway's datasets.
func (c *Client) Datasets(ctx context.Context) ([]string, error) {
	var out struct {
		Datasets []string `json:"datasets"`
	}
	return out.Datasets, c.get(ctx, "/v1/datasets", &out)
}

// Dataset is what the pipeline has done for a dataset.
func (c *Client) Dataset(ctx context.Context, name string) (Dataset, error) {
	var d Dataset
	return d, c.get(ctx, "/v1/datasets/"+esc(name), &d)
}

// Runs returns one page of a dataset's runs, oldest first.
func (c *Client) Runs(ctx context.Context, ds string, q RunsQuery) (RunsPage, error) {
	v := url.Values{}
	if q.Spec != "" {
		v.Set("spec", q.Spec)
	}
	if q.Version > 0 {
		v.Set("version", strconv.Itoa(q.Version))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.PageToken != "" {
		v.Set("page_token", q.PageToken)
	}
	path := "/v1/datasets/" + esc(ds) + "/runs"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var p RunsPage
	return p, c.get(ctx, path, &p)
}

// AllRuns follows the pages of Runs to the end.
func (c *Client) AllRuns(ctx context.Context, ds string, q RunsQuery) ([]Run, error) {
	if q.Limit == 0 {
		q.Limit = 1000
	}
	var runs []Run
	for {
		p, err := c.Runs(ctx, ds, q)
		if err != nil {
			return runs, err
		}
		runs = append(runs, p.Runs...)
		if p.NextPageToken == "" {
			return runs, nil
		}
		q.PageToken = p.NextPageToken
	}
}

// Run returns one run with its decision, promotions and lineage.
func (c *Client) Run(ctx context.Context, id string) (RunDetail, error) {
	var r RunDetail
	return r, c.get(ctx, "/v1/runs/"+esc(id), &r)
}

// RunLineage is the version a run was trained on and every source in it.
func (c *Client) RunLineage(ctx context.Context, id string) (Lineage, error) {
	var l Lineage
	return l, c.get(ctx, "/v1/runs/"+esc(id)+"/lineage", &l)
}

// VersionLineage is version n of ds and every source in it.
func (c *Client) VersionLineage(ctx context.Context, ds string, n int) (Lineage, error) {
	var l Lineage
	return l, c.get(ctx, "/v1/datasets/"+esc(ds)+"/versions/"+strconv.Itoa(n)+"/lineage", &l)
}

// Promotions is a dataset's promotion history and every decision.
func (c *Client) Promotions(ctx context.Context, ds string) (History, error) {
	var h History
	return h, c.get(ctx, "/v1/datasets/"+esc(ds)+"/promotions", &h)
}

// Promote promotes a run by hand, or rolls back (admin).
func (c *Client) Promote(ctx context.Context, ds string, req PromoteRequest) (Promotion, error) {
	var p Promotion
	return p, c.call(ctx, http.MethodPost, "/v1/datasets/"+esc(ds)+"/promotions", req, http.StatusCreated, &p)
}

// Reproduce retrains a run from its recorded version and spec (admin).
func (c *Client) Reproduce(ctx context.Context, id string) (Reproduction, error) {
	var r Reproduction
	return r, c.call(ctx, http.MethodPost, "/v1/runs/"+esc(id)+"/reproduce", nil, http.StatusOK, &r)
}

// Upload sends a CSV of size bytes (-1: unknown) as incoming/<ds>/<name>
// (admin). name may be empty: the gateway picks one.
func (c *Client) Upload(ctx context.Context, ds, name string, body io.Reader, size int64) (Uploaded, error) {
	path := "/v1/datasets/" + esc(ds) + "/uploads"
	if name != "" {
		path += "?name=" + url.QueryEscape(name)
	}
	var u Uploaded
	resp, err := c.do(ctx, http.MethodPost, path, "text/csv", body, size, http.StatusCreated)
	if err != nil {
		return u, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&u); err != nil {
		return u, fmt.Errorf("upload %s: reading the answer: %w", name, err)
	}
	return u, nil
}

// Object tells what became of each generation of an uploaded file (a file
// name under incoming/<ds>/, or the full object name).
func (c *Client) Object(ctx context.Context, ds, name string) (ObjectHistory, error) {
	var h ObjectHistory
	name = strings.TrimPrefix(name, "incoming/"+ds+"/")
	return h, c.get(ctx, "/v1/datasets/"+esc(ds)+"/objects/"+esc(name), &h)
}

// Predict asks the champion of ds for predictions of instances (column
// name to value).
func (c *Client) Predict(ctx context.Context, ds string, instances []map[string]any) (Predictions, error) {
	var p Predictions
	return p, c.call(ctx, http.MethodPost, "/v1/models/"+esc(ds)+":predict", map[string]any{"instances": instances}, http.StatusOK, &p)
}

// PredictJSON sends a predict request body as it is ({"instances":[...]}).
func (c *Client) PredictJSON(ctx context.Context, ds string, body []byte) (Predictions, error) {
	var p Predictions
	return p, c.call(ctx, http.MethodPost, "/v1/models/"+esc(ds)+":predict", json.RawMessage(body), http.StatusOK, &p)
}

// Model says whether ds has a model serving, and which.
func (c *Client) Model(ctx context.Context, ds string) (ModelStatus, error) {
	var m ModelStatus
	return m, c.get(ctx, "/v1/models/"+esc(ds), &m)
}

// Correct sends the right label for an instance or a prediction; it
// returns the correction's ID.
func (c *Client) Correct(ctx context.Context, ds string, corr Correction) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	return out.ID, c.call(ctx, http.MethodPost, "/v1/datasets/"+esc(ds)+"/corrections", corr, http.StatusAccepted, &out)
}

// DeadLetters lists the events that failed for good, oldest first (admin).
func (c *Client) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	var out struct {
		DeadLetters []DeadLetter `json:"dead_letters"`
	}
	return out.DeadLetters, c.get(ctx, "/v1/deadletters", &out)
}

// ReplayDeadLetter republishes a dead letter's event on its topic, once
// (admin): a second call answers the first replay with Already set.
func (c *Client) ReplayDeadLetter(ctx context.Context, id, actor string) (Replay, error) {
	var r Replay
	body := map[string]string{}
	if actor != "" {
		body["actor"] = actor
	}
	return r, c.call(ctx, http.MethodPost, "/v1/deadletters/"+esc(id)+"/replay", body, http.StatusOK, &r)
}

// WebhookDeliveries is the webhook delivery log, oldest first (admin);
// eventID, when set, keeps that event's lines only.
func (c *Client) WebhookDeliveries(ctx context.Context, eventID string) ([]WebhookDelivery, error) {
	path := "/v1/webhooks/deliveries"
	if eventID != "" {
		path += "?event_id=" + url.QueryEscape(eventID)
	}
	var out struct {
		Deliveries []WebhookDelivery `json:"deliveries"`
	}
	return out.Deliveries, c.get(ctx, path, &out)
}
