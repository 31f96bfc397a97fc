package gateway

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestPredictionStoreBoundsAndExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a1 := []storedField{{"a", "1"}}
	tests := []struct {
		name    string
		run     func(ps *predictionStore) (string, string) // returns dataset, id to look up
		found   bool
		entries int
	}{
		{"kept", func(ps *predictionStore) (string, string) {
			return "housing", ps.add("housing", a1, 1).String()
		}, true, 1},
		{"other dataset", func(ps *predictionStore) (string, string) {
			return "reviews", ps.add("housing", a1, 1).String()
		}, false, 1},
		{"oldest evicted at capacity", func(ps *predictionStore) (string, string) {
			first := ps.add("housing", nil, 1)
			ps.add("housing", nil, 2)
			ps.add("housing", nil, 3)
			ps.add("housing", nil, 4)
			return "housing", first.String()
		}, false, 3},
		{"newest kept after the ring wraps", func(ps *predictionStore) (string, string) {
			var last predictionID
			for i := range 10 {
				last = ps.add("housing", a1, float64(i))
			}
			return "housing", last.String()
		}, true, 3},
		{"expired after the TTL", func(ps *predictionStore) (string, string) {
			id := ps.add("housing", nil, 1)
			now = now.Add(time.Hour + time.Second)
			return "housing", id.String()
		}, false, 0},
		{"not the written form", func(ps *predictionStore) (string, string) {
			return "housing", strings.ToUpper(ps.add("housing", a1, 1).String())
		}, false, 1},
		{"not an ID", func(ps *predictionStore) (string, string) {
			ps.add("housing", a1, 1)
			return "housing", "nope"
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

func TestPredictionStoreGetReturnsACopy(t *testing.T) {
	ps := newPredictionStore(0, 0, nil)
	id := ps.add("housing", []storedField{{"city", "Seattle"}}, 1).String()
	fields, ok := ps.get("housing", id)
	require.True(t, ok)
	fields["city"] = "Elsewhere"
	again, _ := ps.get("housing", id)
	require.Equal(t, map[string]string{"city": "Seattle"}, again, "a caller cannot change what was predicted")
}

func TestPredictionIDsAreDistinctVersion4UUIDs(t *testing.T) {
	ps := newPredictionStore(0, 0, nil)
	seen := map[string]bool{}
	for i := range 1000 {
		id := ps.add("housing", nil, float64(i)).String()
		u, err := uuid.Parse(id)
		require.NoError(t, err)
		require.Equal(t, uuid.Version(4), u.Version(), id)
		require.Equal(t, uuid.RFC4122, u.Variant(), id)
		require.Equal(t, u.String(), id, "canonical form")
		require.False(t, seen[id], "ID %d repeats", i)
		seen[id] = true
	}
	require.Len(t, seen, 1000, strconv.Itoa(len(seen)))
}
