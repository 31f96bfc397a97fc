package mongo

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/store"
	"github.com/refit-ml/refit/internal/testenv"
)

// TestMongoDBPaths covers, on FerretDB, the paths Store takes on MongoDB
// (GetMany with $in; InsertMany's duplicate mask from E11000 write errors
// alone), which the FerretDB conformance run does not reach. The data is
// kept small: FerretDB is slow on these paths.
func TestMongoDBPaths(t *testing.T) {
	s, err := Open(t.Context(), testenv.StartFerretDB(t), "mongodbpaths")
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	require.True(t, s.ferret, "FerretDB detected")
	s.ferret = false
	s.inChunk = 7
	ctx := t.Context()

	t.Run("InsertMany dup mask", func(t *testing.T) {
		require.NoError(t, s.Insert(ctx, "mask", "k1", json.RawMessage(`{"v":"old"}`)))
		docs := []store.Doc{
			{Key: "k1", Body: json.RawMessage(`{"v":"new"}`)},
			{Key: "k2", Body: json.RawMessage(`{"v":"first"}`)},
			{Key: "k2", Body: json.RawMessage(`{"v":"second"}`)},
			{Key: "k3", Body: json.RawMessage(`{}`)},
			{Key: "k1", Body: json.RawMessage(`{}`)},
		}
		dup, err := s.InsertMany(ctx, "mask", docs)
		require.NoError(t, err)
		require.Equal(t, []bool{true, false, true, false, true}, dup)
		got, err := s.GetMany(ctx, "mask", []string{"k1", "k2", "k3"})
		require.NoError(t, err)
		require.JSONEq(t, `{"v":"old"}`, string(got["k1"]))
		require.JSONEq(t, `{"v":"first"}`, string(got["k2"]))
		require.Contains(t, got, "k3")
	})

	t.Run("InsertMany race", func(t *testing.T) {
		const writers, keys = 8, 50
		wins := make([]int, writers)
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for w := range writers {
			docs := make([]store.Doc, keys)
			for k := range docs {
				docs[k] = store.Doc{Key: fmt.Sprintf("claim/%03d", (k+w*7)%keys), Body: json.RawMessage(`{}`)}
			}
			wg.Go(func() {
				dup, err := s.InsertMany(ctx, "race", docs)
				errs[w] = err
				for _, d := range dup {
					if !d {
						wins[w]++
					}
				}
			})
		}
		wg.Wait()
		total := 0
		for w := range writers {
			require.NoError(t, errs[w])
			total += wins[w]
		}
		require.Equal(t, keys, total)
	})

	t.Run("GetMany in chunks", func(t *testing.T) {
		var docs []store.Doc
		var keys []string
		for i := range 30 {
			k := fmt.Sprintf("k%06d", i)
			keys = append(keys, k)
			if i%3 == 0 {
				docs = append(docs, store.Doc{Key: k, Body: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
			}
		}
		_, err = s.InsertMany(ctx, "chunks", docs)
		require.NoError(t, err)

		got, err := s.GetMany(ctx, "chunks", append(keys, "k000000", "missing"))
		require.NoError(t, err)
		require.Len(t, got, len(docs))
		for _, d := range docs {
			require.JSONEq(t, string(d.Body), string(got[d.Key]))
		}
	})
}
