package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers/promote"
)

// apiError is an error with its HTTP status. Every handler error goes
// through toStatus, the one place errors become statuses.
type apiError struct {
	status int
	msg    string
	field  string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(field, format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...), field: field}
}

func errorf(status int, format string, args ...any) error {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func toStatus(err error) (int, errorBody) {
	var ae *apiError
	var fe *dataset.FieldError
	var mbe *http.MaxBytesError
	var bte *errBodyTimeout
	var cge *errClientGone
	switch {
	case errors.As(err, &ae):
		return ae.status, errorBody{Error: ae.msg, Field: ae.field}
	case errors.As(err, &fe):
		return http.StatusBadRequest, errorBody{Error: fe.Error(), Field: fe.Field}
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("request body larger than %d bytes", mbe.Limit)}
	case errors.As(err, &bte):
		return http.StatusRequestTimeout, errorBody{Error: bte.Error()}
	case errors.As(err, &cge):
		return statusClientClosed, errorBody{Error: cge.Error()}
	case errors.Is(err, promote.ErrConflict):
		return http.StatusConflict, errorBody{Error: err.Error()}
	case registry.IsNotFound(err):
		return http.StatusNotFound, errorBody{Error: "not found"}
	default:
		return http.StatusInternalServerError, errorBody{Error: "internal error"}
	}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, body := toStatus(err)
	if status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeJSON reads a bounded JSON body into v, strictly.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	// Any Content-Type is read as JSON: `curl -d` sends form encoding.
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "multipart/") {
		return errorf(http.StatusUnsupportedMediaType, "Content-Type %q: send the JSON document as the body", ct)
	}
	if r.ContentLength > limit {
		return &http.MaxBytesError{Limit: limit}
	}
	br := bufio.NewReader(http.MaxBytesReader(w, r.Body, limit))
	if head, _ := br.Peek(3); len(head) > 0 {
		if err := checkBodyStart(head); err != nil {
			return err
		}
	}
	dec := json.NewDecoder(br)
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		var bte *errBodyTimeout
		var cge *errClientGone
		switch {
		case errors.As(err, &mbe), errors.As(err, &bte), errors.As(err, &cge):
			return err
		case errors.As(err, &se):
			return badRequest("", "malformed JSON at byte %d: %v", se.Offset, err)
		case errors.As(err, &te):
			return badRequest(te.Field, "field %q: want %s, got %s", te.Field, te.Type, te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return badRequest(field, "unknown field %q", field)
		default:
			return badRequest("", "malformed JSON: %v", err)
		}
	}
	if dec.More() {
		return badRequest("", "malformed JSON: more than one value in the body")
	}
	return nil
}

// checkBodyStart names the two ways a JSON body commonly arrives wrapped,
// which a parser would report as a stray character at byte 0.
func checkBodyStart(head []byte) error {
	switch {
	case bytes.HasPrefix(head, []byte("\xef\xbb\xbf")):
		return badRequest("", "the body starts with a UTF-8 byte order mark (EF BB BF): send the JSON without it")
	case bytes.HasPrefix(head, []byte("\x1f\x8b")):
		return errorf(http.StatusUnsupportedMediaType, "the body is gzip-compressed: send it uncompressed (Content-Encoding is not supported)")
	}
	return nil
}

// instanceValues turns a JSON instance into text values by column name, as
// a CSV would have them. checkBooleans must have passed: a boolean becomes
// 1 or 0 only for a bool column.
func instanceValues(inst map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(inst))
	for k, v := range inst {
		switch x := v.(type) {
		case nil:
			out[k] = ""
		case string:
			out[k] = x
		case json.Number:
			out[k] = x.String()
		case bool:
			out[k] = "0"
			if x {
				out[k] = "1"
			}
		default:
			return nil, badRequest(k, "field %q: want a number, string or boolean", k)
		}
	}
	return out, nil
}

// checkBooleans refuses a JSON boolean given for a column that is not a
// bool: `"price": true` was once read as a $1 sale. Unknown names are left
// to the row's validation.
func checkBooleans(d *dataset.Definition, inst map[string]any) error {
	for k, v := range inst {
		b, isBool := v.(bool)
		if !isBool {
			continue
		}
		if c, known := d.Lookup(k); known {
			if _, err := dataset.JSONBool(c, b); err != nil {
				return err
			}
		}
	}
	return nil
}
