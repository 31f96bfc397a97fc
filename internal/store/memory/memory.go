// Package memory is an in-memory store.Docs for fast tests.
package memory

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/refit-ml/refit/internal/store"
	"github.com/refit-ml/refit/internal/store/docvalid"
)

// Store keeps documents in maps; List sorts on every call.
type Store struct {
	mu          sync.RWMutex
	collections map[string]map[string]json.RawMessage
}

var _ store.Docs = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{collections: make(map[string]map[string]json.RawMessage)}
}

// Insert implements store.Docs.
func (s *Store) Insert(ctx context.Context, collection, key string, body json.RawMessage) error {
	if err := docvalid.Doc(collection, key, body); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.collection(collection)
	if _, ok := c[key]; ok {
		return store.ErrDuplicate
	}
	c[key] = slices.Clone(body)
	return nil
}

// Get implements store.Docs.
func (s *Store) Get(ctx context.Context, collection, key string) (json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	body, ok := s.collections[collection][key]
	if !ok {
		return nil, store.ErrNotFound
	}
	return slices.Clone(body), nil
}

// List implements store.Docs.
func (s *Store) List(ctx context.Context, collection, prefix string) ([]store.Doc, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var docs []store.Doc
	for k, body := range s.collections[collection] {
		if strings.HasPrefix(k, prefix) {
			docs = append(docs, store.Doc{Key: k, Body: slices.Clone(body)})
		}
	}
	slices.SortFunc(docs, func(a, b store.Doc) int { return strings.Compare(a.Key, b.Key) })
	return docs, nil
}

// Last implements store.Docs.
func (s *Store) Last(ctx context.Context, collection, prefix string) (store.Doc, error) {
	if err := ctx.Err(); err != nil {
		return store.Doc{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var last store.Doc
	found := false
	for k, body := range s.collections[collection] {
		if strings.HasPrefix(k, prefix) && (!found || k > last.Key) {
			last, found = store.Doc{Key: k, Body: body}, true
		}
	}
	if !found {
		return store.Doc{}, store.ErrNotFound
	}
	last.Body = slices.Clone(last.Body)
	return last, nil
}

// collection returns the named collection, creating it. Callers hold s.mu.
func (s *Store) collection(name string) map[string]json.RawMessage {
	c, ok := s.collections[name]
	if !ok {
		c = make(map[string]json.RawMessage)
		s.collections[name] = c
	}
	return c
}
