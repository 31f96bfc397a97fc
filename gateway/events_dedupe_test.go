package gateway_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/gateway"
)

// Events are hints and repeat; the stream shows each promotion once.
func TestHubShowsEachPromotionOnce(t *testing.T) {
	h := gateway.NewHub()
	ch, stop := h.Subscribe("housing")
	defer stop()
	ctx := context.Background()
	for _, seq := range []int64{1, 1, 2, 1, 2, 3} {
		require.NoError(t, h.HandlePromoted(ctx, &events.ModelPromoted{Meta: events.Meta{ID: "p", Dataset: "housing"}, Sequence: seq}))
	}
	var got []int
	for len(ch) > 0 {
		<-ch
		got = append(got, 1)
	}
	require.Len(t, got, 3)
}
