// Package bolt is the embedded, on-disk store.Docs: one bbolt file, one
// bucket per collection, keys stored as their bytes so bbolt's cursor order
// is the byte-wise key order store.Docs promises.
package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/refit-ml/refit/internal/store"
	"github.com/refit-ml/refit/internal/store/docvalid"
)

// lockTimeout bounds the wait for the file lock, so a second process opening
// the same file fails instead of hanging.
const lockTimeout = 5 * time.Second

// ctxCheckEvery is how many documents List reads between context checks.
const ctxCheckEvery = 1024

// Store is a store.Docs backed by one bbolt file.
type Store struct {
	db *bolt.DB
}

var _ store.Docs = (*Store)(nil)

// Open opens or creates the database file at path.
func Open(path string) (*Store, error) {
	if err := checkFile(path); err != nil {
		return nil, fmt.Errorf("bolt: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the file. Writes are already durable: each commit syncs.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt: close: %w", err)
	}
	return nil
}

// Insert implements store.Docs.
func (s *Store) Insert(ctx context.Context, collection, key string, body json.RawMessage) error {
	if err := docvalid.Doc(collection, key, body); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(collection))
		if err != nil {
			return err
		}
		k := []byte(key)
		if b.Get(k) != nil {
			return store.ErrDuplicate
		}
		return b.Put(k, body)
	})
	if err != nil {
		return fmt.Errorf("bolt: insert %s/%s: %w", collection, key, err)
	}
	return nil
}

// Get implements store.Docs.
func (s *Store) Get(ctx context.Context, collection, key string) (json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var body json.RawMessage
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(collection))
		if b == nil {
			return store.ErrNotFound
		}
		v := b.Get([]byte(key))
		if v == nil {
			return store.ErrNotFound
		}
		body = bytes.Clone(v) // v is only valid inside the transaction
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get %s/%s: %w", collection, key, err)
	}
	return body, nil
}

// List implements store.Docs.
func (s *Store) List(ctx context.Context, collection, prefix string) ([]store.Doc, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var docs []store.Doc
	p := []byte(prefix)
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(collection))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if len(docs)%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			docs = append(docs, store.Doc{Key: string(k), Body: bytes.Clone(v)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list %s/%s: %w", collection, prefix, err)
	}
	return docs, nil
}

// Last implements store.Docs: it seeks to the first key past the prefix
// range and steps back one.
func (s *Store) Last(ctx context.Context, collection, prefix string) (store.Doc, error) {
	if err := ctx.Err(); err != nil {
		return store.Doc{}, err
	}
	var doc store.Doc
	p := []byte(prefix)
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(collection))
		if b == nil {
			return store.ErrNotFound
		}
		c := b.Cursor()
		var k, v []byte
		if end, ok := prefixEnd(p); ok {
			if k, _ = c.Seek(end); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Last()
		}
		if k == nil || !bytes.HasPrefix(k, p) {
			return store.ErrNotFound
		}
		doc = store.Doc{Key: string(k), Body: bytes.Clone(v)}
		return nil
	})
	if err != nil {
		return store.Doc{}, fmt.Errorf("bolt: last %s/%s: %w", collection, prefix, err)
	}
	return doc, nil
}

// prefixEnd returns the smallest key greater than every key with the prefix;
// ok is false when there is none (empty prefix or all 0xff bytes).
func prefixEnd(prefix []byte) (end []byte, ok bool) {
	end = bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1], true
		}
	}
	return nil, false
}
