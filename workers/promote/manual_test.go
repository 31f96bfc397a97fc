package promote_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/workers"
	"github.com/refit-ml/refit/workers/promote"
	"github.com/refit-ml/refit/workers/workertest"
)

// The manual promoter stamps its promotions with the clock it is given, as
// the workers do, so tests and replays see the time they set.
func TestManualUsesItsClock(t *testing.T) {
	e := workertest.New(t, 150)
	runs := trained(t, e)
	at := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	m := promote.NewManual(e.Registry, e.Bucket, e.Publisher, slog.New(slog.NewTextHandler(io.Discard, nil)),
		workers.ClockFunc(func() time.Time { return at }))
	ctx := context.Background()

	p, err := m.Promote(ctx, "housing", runs[0].RunID, "ana", "")
	require.NoError(t, err)
	require.Equal(t, at, p.PromotedAt)

	at = at.Add(time.Hour)
	p, err = m.Promote(ctx, "housing", runs[1].RunID, "ana", "")
	require.NoError(t, err)
	require.Equal(t, at, p.PromotedAt)

	at = at.Add(time.Hour)
	p, err = m.Rollback(ctx, "housing", "ana", "")
	require.NoError(t, err)
	require.Equal(t, at, p.PromotedAt)
	require.Equal(t, runs[0].RunID, p.RunID)
}
