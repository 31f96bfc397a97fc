// Package store defines the document store seam that Refit's registry
// (ingest ledger, corrections, versions, runs, decisions, promotions, dead
// letters) is built on.
//
// The contract is deliberately small: documents are JSON values under a
// unique string key inside a named collection, and the only write is an
// insert. Races are settled by inserting under a unique key: whoever inserts
// first wins and everyone else gets ErrDuplicate. There is no update, so no
// read-modify-write can double-claim (FerretDB's conditional updates are not
// atomic under concurrent writers; inserts under a unique key are, on every
// store here).
//
// Implementations: store/memory (tests), store/bolt (embedded default, on
// disk) and store/mongo (MongoDB, and FerretDB in tests). All pass
// storetest.Run.
package store

import (
	"context"
	"encoding/json"
	"errors"
)

var (
	// ErrDuplicate: a document with that key already exists.
	ErrDuplicate = errors.New("store: duplicate key")
	// ErrNotFound: no document with that key.
	ErrNotFound = errors.New("store: not found")
)

// Doc is one stored document.
type Doc struct {
	Key  string
	Body json.RawMessage // a JSON object
}

// Docs is the store seam.
type Docs interface {
	// Insert stores body under key in collection. ErrDuplicate if the key exists.
	Insert(ctx context.Context, collection, key string, body json.RawMessage) error
	// Get returns the body stored under key. ErrNotFound if absent.
	Get(ctx context.Context, collection, key string) (json.RawMessage, error)
	// List returns the documents whose key starts with prefix, in ascending
	// key order (byte-wise).
	List(ctx context.Context, collection, prefix string) ([]Doc, error)
	// Last returns the document with the greatest key starting with prefix.
	// ErrNotFound if there is none.
	Last(ctx context.Context, collection, prefix string) (Doc, error)
}
