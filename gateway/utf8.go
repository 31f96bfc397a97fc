package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"unicode/utf8"
)

// decodeJSONStrict is decodeJSON for a body that is stored (a correction):
// invalid UTF-8 is refused, naming its field, rather than replaced.
func decodeJSONStrict(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if r.ContentLength > limit {
		return &http.MaxBytesError{Limit: limit}
	}
	body, err := readValidUTF8(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return err // a 400 from readValidUTF8, or the read's own (size, timeout, client gone)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return decodeJSON(w, r, limit, v)
}

// readValidUTF8 reads a JSON body whole and refuses invalid UTF-8, naming
// the field whose value holds it: encoding/json would silently replace the
// bytes with U+FFFD, storing a text other than the one sent (a CSV row
// with such bytes is quarantined; JSON gets the same answer, as a 400).
func readValidUTF8(r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if utf8.Valid(body) {
		return body, nil
	}
	field, at := invalidUTF8Field(body)
	if field == "" {
		return nil, badRequest("", "the body is not valid UTF-8 (at byte %d)", at)
	}
	return nil, badRequest(field, "%s: not valid UTF-8 (at byte %d of the body)", field, at)
}

// invalidUTF8Field finds the first token holding invalid UTF-8, the key of
// the object member whose value it is ("" for a key itself or a bare
// value), and its offset in body.
func invalidUTF8Field(body []byte) (string, int) {
	type frame struct {
		object, wantKey bool
		key             string
	}
	var stack []frame
	// done marks the current object member's value complete.
	done := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		start := int(dec.InputOffset())
		tok, err := dec.Token()
		if err != nil {
			return "", firstInvalid(body)
		}
		raw := body[start:int(dec.InputOffset())]
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				stack = append(stack, frame{object: d == '{', wantKey: d == '{'})
			default:
				stack = stack[:len(stack)-1]
				done()
			}
			continue
		}
		top := -1
		if len(stack) > 0 {
			top = len(stack) - 1
		}
		isKey := top >= 0 && stack[top].object && stack[top].wantKey
		if !utf8.Valid(raw) {
			field := ""
			if !isKey {
				for j := top; j >= 0; j-- {
					if stack[j].object {
						field = stack[j].key
						break
					}
				}
			}
			return field, start + firstInvalid(raw)
		}
		if isKey {
			stack[top].key, _ = tok.(string)
			stack[top].wantKey = false
			continue
		}
		done()
	}
}

func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return 0
}
