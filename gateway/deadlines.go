package gateway

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Slow clients. The http.Server only bounds reading the headers, so
// without these a client that declares a small Content-Length and sends a
// byte a second holds a goroutine and a descriptor for as long as it
// likes, on every route, before any handler (or an admin route's 401) can
// answer. guard puts a deadline on every body, paces uploads by a minimum
// transfer rate instead, bounds writing the answer, and closes a
// connection whose body was not read.

// statusClientClosed is nginx's code for a client that went away before
// its request was complete: its doing, not a server error.
const statusClientClosed = 499

// errBodyTimeout is a body that did not arrive in time.
type errBodyTimeout struct{ what string }

func (e *errBodyTimeout) Error() string { return e.what }

// errClientGone is a client that closed the connection mid-body.
type errClientGone struct{ err error }

func (e *errClientGone) Error() string {
	return "client closed the connection mid-body: " + e.err.Error()
}
func (e *errClientGone) Unwrap() error { return e.err }

// guard serves one request under deadlines. Requests without a body only
// get a write deadline: the server's background read of an idle
// connection would cancel a long handler's context once a read deadline
// passed.
func (s *Server) guard(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	if r.URL.Path == "/v1/events" {
		// A stream: no write deadline, and none left from an earlier
		// request on this connection.
		_ = rc.SetWriteDeadline(time.Time{})
	} else {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.Timeout + s.cfg.BodyTimeout))
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		s.mux.ServeHTTP(w, r)
		return
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		w.Header().Set("Connection", "close")
		writeJSON(w, http.StatusUnsupportedMediaType, errorBody{
			Error: fmt.Sprintf("Content-Encoding %q is not supported: send the body uncompressed", ce)})
		return
	}
	g := &guardedRequest{ResponseWriter: w}
	g.body = guardedBody{body: r.Body, w: w, timeout: s.cfg.BodyTimeout, writeTimeout: s.cfg.Timeout}
	g.body.deadline = time.Now().Add(s.cfg.BodyTimeout)
	_ = rc.SetReadDeadline(g.body.deadline)
	// The body is replaced in place rather than on a copy of the request:
	// the server keeps its own reference to close, and a copy would cost
	// the predict path an allocation of the whole request.
	r.Body = &g.body
	s.mux.ServeHTTP(g, r)
}

// guardedRequest answers with "Connection: close" when the body was not
// read to its end: the server would otherwise read what is left before
// taking the next request, at the client's pace.
type guardedRequest struct {
	http.ResponseWriter
	body        guardedBody
	wroteHeader bool
}

func (g *guardedRequest) WriteHeader(code int) {
	if !g.wroteHeader {
		g.wroteHeader = true
		if !g.body.eof.Load() {
			g.Header().Set("Connection", "close")
		}
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *guardedRequest) Write(b []byte) (int, error) {
	if !g.wroteHeader {
		g.WriteHeader(http.StatusOK)
	}
	return g.ResponseWriter.Write(b)
}

func (g *guardedRequest) Flush() {
	if !g.wroteHeader {
		g.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(g.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (g *guardedRequest) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// guardedBody reads a request body under a read deadline. In paced mode
// (uploads) each byte earns 1/rate seconds more, up to stall ahead of now:
// a client must average the rate and never pause longer than stall.
type guardedBody struct {
	body         io.ReadCloser
	w            http.ResponseWriter // for its ResponseController, made per call so it stays on the stack
	timeout      time.Duration
	writeTimeout time.Duration
	deadline     time.Time
	rate         float64 // bytes per second; 0: a flat deadline
	stall        time.Duration
	eof          atomic.Bool
}

func (b *guardedBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if n > 0 && b.rate > 0 {
		now := time.Now()
		b.deadline = b.deadline.Add(time.Duration(float64(n) / b.rate * float64(time.Second)))
		if limit := now.Add(b.stall); b.deadline.After(limit) {
			b.deadline = limit
		}
		_ = http.NewResponseController(b.w).SetReadDeadline(b.deadline)
	}
	switch {
	case err == nil:
	case err == io.EOF:
		b.eof.Store(true)
		// Read in full: clear the deadline so that the server's background
		// read does not cancel the handler's context when it passes, and
		// give the answer its own time.
		rc := http.NewResponseController(b.w)
		_ = rc.SetReadDeadline(time.Time{})
		_ = rc.SetWriteDeadline(time.Now().Add(b.writeTimeout + b.timeout))
	case errors.Is(err, os.ErrDeadlineExceeded):
		if b.rate > 0 {
			err = &errBodyTimeout{fmt.Sprintf("the upload arrived slower than %.0f bytes/s, or paused longer than %s: the connection is closed", b.rate, b.stall)}
		} else {
			err = &errBodyTimeout{fmt.Sprintf("the body did not arrive within %s", b.timeout)}
		}
	case errors.Is(err, io.ErrUnexpectedEOF), isConnReset(err):
		err = &errClientGone{err}
	}
	return n, err
}

func (b *guardedBody) Close() error { return b.body.Close() }

// pace switches the body to a minimum transfer rate, from now.
func (b *guardedBody) pace(rate int64, stall time.Duration) {
	b.rate, b.stall = float64(rate), stall
	b.deadline = time.Now().Add(stall)
	rc := http.NewResponseController(b.w)
	_ = rc.SetReadDeadline(b.deadline)
	// The answer comes once the body is in: until then only the read
	// deadline bounds the request.
	_ = rc.SetWriteDeadline(time.Time{})
}

// paceUpload puts an upload's body on the minimum rate; a request that did
// not come through guard is left as it is.
func (s *Server) paceUpload(r *http.Request) {
	if b, ok := r.Body.(*guardedBody); ok {
		b.pace(s.cfg.MinUploadRate, s.cfg.UploadStall)
	}
}

func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}
