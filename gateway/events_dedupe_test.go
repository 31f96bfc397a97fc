package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/gateway"
)

// Events are hints and repeat; the stream shows each promotion and each
// version once, in order, per dataset.
func TestHubShowsEachEventOnce(t *testing.T) {
	h := gateway.NewHub()
	ch, stop := h.Subscribe("")
	defer stop()
	ctx := context.Background()
	for _, e := range []struct {
		dataset string
		seq     int64
	}{{"housing", 1}, {"housing", 1}, {"housing", 2}, {"boats", 1}, {"housing", 1}, {"housing", 2}, {"boats", 1}, {"housing", 3}} {
		id := fmt.Sprintf("%s/promotion/%d", e.dataset, e.seq)
		require.NoError(t, h.HandlePromoted(ctx, &events.ModelPromoted{Meta: events.Meta{ID: id, Dataset: e.dataset}, Sequence: e.seq}))
	}
	for _, v := range []int{1, 2, 2, 1, 3} {
		require.NoError(t, h.HandleVersioned(ctx, &events.DatasetVersioned{Meta: events.Meta{ID: fmt.Sprintf("housing/v%d", v), Dataset: "housing"}, Version: v}))
	}
	var got []string
	for len(ch) > 0 {
		e := <-ch
		var body struct {
			Sequence int64 `json:"sequence"`
			Version  int   `json:"version"`
		}
		require.NoError(t, json.Unmarshal(e.Data, &body))
		got = append(got, fmt.Sprintf("%s %s seq=%d v=%d", e.Type, e.ID, body.Sequence, body.Version))
	}
	p, v := (&events.ModelPromoted{}).Type(), (&events.DatasetVersioned{}).Type()
	require.Equal(t, []string{
		p + " housing/promotion/1 seq=1 v=0",
		p + " housing/promotion/2 seq=2 v=0",
		p + " boats/promotion/1 seq=1 v=0",
		p + " housing/promotion/3 seq=3 v=0",
		v + " housing/v1 seq=0 v=1",
		v + " housing/v2 seq=0 v=2",
		v + " housing/v3 seq=0 v=3",
	}, got)
}
