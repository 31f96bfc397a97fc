// Package docvalid checks store.Docs arguments the same way in every
// implementation, so a document one store accepts is accepted by all.
package docvalid

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrInvalid marks arguments that will never be accepted.
var ErrInvalid = errors.New("store: invalid document")

// Doc checks one insert's arguments: a non-empty collection, a non-empty
// UTF-8 key (MongoDB stores keys as BSON strings) and a JSON object body.
func Doc(collection, key string, body json.RawMessage) error {
	if collection == "" {
		return fmt.Errorf("%w: empty collection name", ErrInvalid)
	}
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: key %q is not UTF-8", ErrInvalid, key)
	}
	if !json.Valid(body) {
		return fmt.Errorf("%w: key %q: body is not JSON", ErrInvalid, key)
	}
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("%w: key %q: body is not a JSON object", ErrInvalid, key)
	}
	return nil
}
