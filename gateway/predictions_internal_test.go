package gateway

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPredictionStoreBoundsAndExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tests := []struct {
		name    string
		run     func(ps *predictionStore) (string, string) // returns dataset, id to look up
		found   bool
		entries int
	}{
		{"kept", func(ps *predictionStore) (string, string) {
			return "housing", ps.add("housing", map[string]string{"a": "1"}, 1)
		}, true, 1},
		{"other dataset", func(ps *predictionStore) (string, string) {
			return "reviews", ps.add("housing", map[string]string{"a": "1"}, 1)
		}, false, 1},
		{"oldest evicted at capacity", func(ps *predictionStore) (string, string) {
			first := ps.add("housing", nil, 1)
			ps.add("housing", nil, 2)
			ps.add("housing", nil, 3)
			ps.add("housing", nil, 4)
			return "housing", first
		}, false, 3},
		{"expired after the TTL", func(ps *predictionStore) (string, string) {
			id := ps.add("housing", nil, 1)
			now = now.Add(time.Hour + time.Second)
			return "housing", id
		}, false, 0},
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
	id := ps.add("housing", map[string]string{"city": "Seattle"}, 1)
	p, ok := ps.get("housing", id)
	require.True(t, ok)
	p.fields["city"] = "Elsewhere"
	again, _ := ps.get("housing", id)
	require.Equal(t, "Seattle", again.fields["city"], "a caller cannot change what was predicted")
}
