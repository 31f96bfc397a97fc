package registry_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
)

func TestAppendPromotionIsGapFreeUnderConcurrency(t *testing.T) {
	reg := registry.New(memory.New())
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for i := range 10 {
				_, err := reg.AppendPromotion(ctx, "housing", func(latest registry.Promotion, ok bool) (registry.Promotion, error) {
					return registry.Promotion{RunID: fmt.Sprintf("g%d-%d", g, i), PreviousRunID: latest.RunID}, nil
				})
				require.NoError(t, err)
			}
		})
	}
	wg.Wait()
	history, err := reg.Promotions(ctx, "housing")
	require.NoError(t, err)
	require.Len(t, history, 60)
	for i, p := range history {
		require.Equal(t, int64(i+1), p.Sequence)
		require.Equal(t, "housing", p.Dataset)
		if i > 0 {
			require.Equal(t, history[i-1].RunID, p.PreviousRunID)
		}
	}
}

func TestAppendPromotionStopsWhenNextRefuses(t *testing.T) {
	reg := registry.New(memory.New())
	refused := errors.New("refused")
	_, err := reg.AppendPromotion(context.Background(), "housing", func(registry.Promotion, bool) (registry.Promotion, error) {
		return registry.Promotion{}, refused
	})
	require.ErrorIs(t, err, refused)
	_, err = reg.LatestPromotion(context.Background(), "housing")
	require.True(t, registry.IsNotFound(err))
}

func TestWebhookDeliveryLog(t *testing.T) {
	reg := registry.New(memory.New())
	ctx := context.Background()
	rec := registry.WebhookDelivery{DeliveryID: "dlv_1", EventID: "housing/promotion/1"}
	for n := 1; n <= 2; n++ {
		a := rec
		a.Kind, a.Attempt = registry.DeliveryAttempt, n
		require.NoError(t, reg.AddWebhookDelivery(ctx, a))
	}
	out := rec
	out.Kind, out.Outcome, out.Attempt = registry.DeliveryOutcome, registry.OutcomeDelivered, 2
	require.NoError(t, reg.AddWebhookDelivery(ctx, out))
	require.True(t, registry.IsDuplicate(reg.AddWebhookDelivery(ctx, out)), "one outcome per delivery")

	log, err := reg.WebhookDelivery(ctx, "dlv_1")
	require.NoError(t, err)
	require.Len(t, log, 3)
	require.Equal(t, []string{"attempt", "attempt", "outcome"}, []string{log[0].Kind, log[1].Kind, log[2].Kind})
	other, err := reg.WebhookDelivery(ctx, "dlv_10")
	require.NoError(t, err)
	require.Empty(t, other, "a delivery's prefix does not match another's")
}

func TestLineageOfAMissingVersion(t *testing.T) {
	reg := registry.New(memory.New())
	_, err := reg.Lineage(context.Background(), "housing", 3)
	require.True(t, registry.IsNotFound(err))
}
