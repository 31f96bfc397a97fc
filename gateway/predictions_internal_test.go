package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// keepOne stores one instance given as text by column name of sch.
func keepOne(t testing.TB, ps *predictionStore, sch *instanceSchema, values map[string]string) string {
	t.Helper()
	var text strings.Builder
	var fields []storedField
	for name, v := range values {
		col, ok := sch.index[name]
		require.True(t, ok, name)
		fields = append(fields, storedField{col: int32(col), start: int32(text.Len()), end: int32(text.Len() + len(v))})
		text.WriteString(v)
	}
	ids := ps.add(sch, text.String(), fields, []int{len(fields)}, []float64{1}, nil)
	require.Len(t, ids, 1)
	return ids[0].String()
}

func TestPredictionStoreBoundsAndExpiry(t *testing.T) {
	sch, _ := decodeTestSchema(t)
	ds := sch.def.Name
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	x1 := map[string]string{"x": "1"}
	tests := []struct {
		name    string
		run     func(ps *predictionStore) (string, string) // returns dataset, id to look up
		found   bool
		entries int
	}{
		{"kept", func(ps *predictionStore) (string, string) {
			return ds, keepOne(t, ps, sch, x1)
		}, true, 1},
		{"other dataset", func(ps *predictionStore) (string, string) {
			return "reviews", keepOne(t, ps, sch, x1)
		}, false, 1},
		{"oldest evicted at capacity", func(ps *predictionStore) (string, string) {
			first := keepOne(t, ps, sch, nil)
			for range 3 {
				keepOne(t, ps, sch, nil)
			}
			return ds, first
		}, false, 3},
		{"newest kept after the ring wraps", func(ps *predictionStore) (string, string) {
			var last string
			for range 10 {
				last = keepOne(t, ps, sch, x1)
			}
			return ds, last
		}, true, 3},
		{"a request larger than the store keeps its newest", func(ps *predictionStore) (string, string) {
			ids := ps.add(sch, "", nil, []int{0, 0, 0, 0, 0}, []float64{1, 2, 3, 4, 5}, nil)
			return ds, ids[4].String()
		}, true, 3},
		{"expired after the TTL", func(ps *predictionStore) (string, string) {
			id := keepOne(t, ps, sch, nil)
			now = now.Add(time.Hour + time.Second)
			return ds, id
		}, false, 0},
		{"not the written form", func(ps *predictionStore) (string, string) {
			return ds, strings.ToUpper(keepOne(t, ps, sch, x1))
		}, false, 1},
		{"not an ID", func(ps *predictionStore) (string, string) {
			keepOne(t, ps, sch, x1)
			return ds, "nope"
		}, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := newPredictionStore(3, time.Hour, clock)
			ds, id := tt.run(ps)
			_, ok := ps.get(ds, id)
			require.Equal(t, tt.found, ok)
			require.Equal(t, tt.entries, ps.len())
		})
	}
}

func TestPredictionStoreKeepsEachInstancesValues(t *testing.T) {
	sch, _ := decodeTestSchema(t)
	ps := newPredictionStore(0, 0, nil)
	text := "Seattle1.5Tacoma"
	s, x := int32(sch.index["s"]), int32(sch.index["x"])
	fields := []storedField{{s, 0, 7}, {x, 7, 10}, {s, 10, 16}}
	ids := ps.add(sch, text, fields, []int{2, 3}, []float64{1, 2}, nil)
	require.Len(t, ids, 2)
	first, ok := ps.get(sch.def.Name, ids[0].String())
	require.True(t, ok)
	require.Equal(t, map[string]string{"s": "Seattle", "x": "1.5"}, first)
	first["s"] = "Elsewhere"
	again, _ := ps.get(sch.def.Name, ids[0].String())
	require.Equal(t, "Seattle", again["s"], "a caller cannot change what was predicted")
	second, _ := ps.get(sch.def.Name, ids[1].String())
	require.Equal(t, map[string]string{"s": "Tacoma"}, second)
}

func TestPredictionIDsAreDistinctVersion4UUIDs(t *testing.T) {
	sch, _ := decodeTestSchema(t)
	ps := newPredictionStore(0, 0, nil)
	ids := ps.add(sch, "", nil, make([]int, 1000), make([]float64, 1000), nil)
	seen := map[string]bool{}
	for _, b := range ids {
		id := b.String()
		u, err := uuid.Parse(id)
		require.NoError(t, err)
		require.Equal(t, uuid.Version(4), u.Version(), id)
		require.Equal(t, uuid.RFC4122, u.Variant(), id)
		require.Equal(t, u.String(), id, "canonical form")
		require.False(t, seen[id], "%s repeats", id)
		seen[id] = true
	}
}

// len is the number of stored predictions.
func (ps *predictionStore) len() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.n
}
