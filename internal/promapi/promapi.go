// Package promapi is a small client for Prometheus's HTTP query API
// (/api/v1/query and /api/v1/query_range): a timeout on every call, a cap on
// the body it will read, and errors that tell a bad query (the caller's
// fault, permanent) from Prometheus being unreachable (worth retrying).
package promapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults.
const (
	DefaultTimeout = 10 * time.Second
	DefaultMaxBody = 16 << 20
)

// Sample is one value at one time.
type Sample struct {
	T time.Time
	V float64
}

// Series is one labelled series of a result.
type Series struct {
	Labels  map[string]string
	Samples []Sample
}

// BadQueryError is Prometheus refusing the query (HTTP 400/422): retrying
// will not help.
type BadQueryError struct {
	Type, Msg string
}

func (e *BadQueryError) Error() string { return "prometheus: " + e.Type + ": " + e.Msg }

// ErrUnavailable wraps every failure to reach Prometheus or to get a usable
// answer from it (network, timeout, 5xx, truncated body).
var ErrUnavailable = errors.New("prometheus unavailable")

// Client talks to one Prometheus.
type Client struct {
	base    *url.URL
	http    *http.Client
	timeout time.Duration
	maxBody int64
}

// Config of a Client; zero fields take the defaults.
type Config struct {
	URL     string
	HTTP    *http.Client
	Timeout time.Duration
	MaxBody int64
}

// New checks the URL and returns a client.
func New(c Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(c.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus URL %q: want http(s)://host[:port][/path]", c.URL)
	}
	cl := &Client{base: u, http: c.HTTP, timeout: c.Timeout, maxBody: c.MaxBody}
	if cl.http == nil {
		cl.http = &http.Client{}
	}
	if cl.timeout <= 0 {
		cl.timeout = DefaultTimeout
	}
	if cl.maxBody <= 0 {
		cl.maxBody = DefaultMaxBody
	}
	return cl, nil
}

// QueryRange evaluates query over [start, end] every step.
func (c *Client) QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]Series, error) {
	v := url.Values{
		"query": {query},
		"start": {formatTime(start)},
		"end":   {formatTime(end)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	return c.do(ctx, "/api/v1/query_range", v)
}

// Query evaluates query at t.
func (c *Client) Query(ctx context.Context, query string, t time.Time) ([]Series, error) {
	return c.do(ctx, "/api/v1/query", url.Values{"query": {query}, "time": {formatTime(t)}})
}

type response struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	} `json:"data"`
}

type rawSeries struct {
	Metric map[string]string `json:"metric"`
	Value  []json.RawMessage `json:"value"`
	Values [][]json.RawMessage
}

func (c *Client) do(ctx context.Context, path string, v url.Values) ([]Series, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.JoinPath(path).String(), strings.NewReader(v.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, c.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrUnavailable, path, err)
	}
	if int64(len(body)) > c.maxBody {
		return nil, fmt.Errorf("%w: %s answered more than %d bytes (narrow the query or the history)", ErrUnavailable, path, c.maxBody)
	}
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: HTTP %d, not the query API's JSON: %.200s", ErrUnavailable, path, res.StatusCode, body)
	}
	if r.Status != "success" {
		if res.StatusCode == http.StatusBadRequest || res.StatusCode == http.StatusUnprocessableEntity {
			return nil, &BadQueryError{Type: r.ErrorType, Msg: r.Error}
		}
		return nil, fmt.Errorf("%w: %s: HTTP %d: %s: %s", ErrUnavailable, path, res.StatusCode, r.ErrorType, r.Error)
	}
	return parse(r.Data.ResultType, r.Data.Result)
}

func parse(kind string, result []json.RawMessage) ([]Series, error) {
	if kind != "vector" && kind != "matrix" {
		return nil, &BadQueryError{Type: "bad_data", Msg: fmt.Sprintf("result type %q: want an instant vector expression", kind)}
	}
	out := make([]Series, 0, len(result))
	for _, raw := range result {
		var rs rawSeries
		if err := json.Unmarshal(raw, &rs); err != nil {
			return nil, fmt.Errorf("%w: bad %s result: %w", ErrUnavailable, kind, err)
		}
		s := Series{Labels: rs.Metric}
		switch kind {
		case "vector":
			p, err := sample(rs.Value)
			if err != nil {
				return nil, err
			}
			s.Samples = []Sample{p}
		case "matrix":
			s.Samples = make([]Sample, 0, len(rs.Values))
			for _, v := range rs.Values {
				p, err := sample(v)
				if err != nil {
					return nil, err
				}
				s.Samples = append(s.Samples, p)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// sample decodes [unix seconds, "value"]; "NaN" and "+Inf" are kept.
func sample(pair []json.RawMessage) (Sample, error) {
	if len(pair) != 2 {
		return Sample{}, fmt.Errorf("%w: sample of %d elements", ErrUnavailable, len(pair))
	}
	var ts float64
	var vs string
	if err := json.Unmarshal(pair[0], &ts); err != nil {
		return Sample{}, fmt.Errorf("%w: sample time: %w", ErrUnavailable, err)
	}
	if err := json.Unmarshal(pair[1], &vs); err != nil {
		return Sample{}, fmt.Errorf("%w: sample value: %w", ErrUnavailable, err)
	}
	v, err := strconv.ParseFloat(vs, 64)
	if err != nil {
		return Sample{}, fmt.Errorf("%w: sample value %q: %w", ErrUnavailable, vs, err)
	}
	sec, frac := math.Modf(ts)
	return Sample{T: time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), V: v}, nil
}

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1e3, 'f', 3, 64)
}
