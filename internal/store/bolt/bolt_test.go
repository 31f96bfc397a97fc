package bolt_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/store"
	"github.com/refit-ml/refit/internal/store/bolt"
	"github.com/refit-ml/refit/internal/store/storetest"
)

func open(t testing.TB, path string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Docs {
		return open(t, filepath.Join(t.TempDir(), "refit.db"))
	})
}

func TestSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "refit.db")
	ctx := t.Context()

	s, err := bolt.Open(path)
	require.NoError(t, err)
	require.NoError(t, s.Insert(ctx, "runs", "r/1", json.RawMessage(`{"n":1}`)))
	require.NoError(t, s.Insert(ctx, "runs", "r/2", json.RawMessage(`{"n":2}`)))
	require.NoError(t, s.Close())

	s = open(t, path)
	docs, err := s.List(ctx, "runs", "r/")
	require.NoError(t, err)
	require.Len(t, docs, 2)
	require.Equal(t, "r/1", docs[0].Key)
	require.JSONEq(t, `{"n":1}`, string(docs[0].Body))
	require.Equal(t, "r/2", docs[1].Key)
	require.JSONEq(t, `{"n":2}`, string(docs[1].Body))
	require.ErrorIs(t, s.Insert(ctx, "runs", "r/2", json.RawMessage(`{}`)), store.ErrDuplicate)
}

func TestLastAtByteEdges(t *testing.T) {
	// Keys whose prefix range ends at 0xff bytes, where Last cannot seek
	// past the range and must start from the end of the bucket.
	s := open(t, filepath.Join(t.TempDir(), "refit.db"))
	ctx := t.Context()
	for _, k := range []string{"a", "\u00ff", "\u00ff\u00ff", "\U0010ffff"} {
		require.NoError(t, s.Insert(ctx, "c", k, json.RawMessage(`{}`)))
	}
	tests := []struct{ prefix, want string }{
		{"", "\U0010ffff"},
		{"\u00ff", "\u00ff\u00ff"},
		{"\xf4", "\U0010ffff"},
		{"a", "a"},
	}
	for _, tt := range tests {
		doc, err := s.Last(ctx, "c", tt.prefix)
		require.NoError(t, err, "prefix %q", tt.prefix)
		require.Equal(t, tt.want, doc.Key, "prefix %q", tt.prefix)
	}
}
