package serve_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/workers"
	"github.com/refit-ml/refit/workers/serve"
)

// LoadedAt and Failure.At come from the injected clock, in UTC, as the
// other workers' records do; without one, from the system clock.
func TestStampsReadTheInjectedClock(t *testing.T) {
	at := time.Date(2001, 2, 3, 4, 5, 6, 0, time.FixedZone("east", 3*3600))
	fixed := workers.ClockFunc(func() time.Time { return at })
	type promotion struct {
		seq     int64
		corrupt bool
	}
	tests := []struct {
		name       string
		clock      workers.Clock
		promotions []promotion
		event      bool // load on the newest promotion's event rather than a refresh
		wantServed int64
		wantFailed []int64
	}{
		{name: "a loaded model", clock: fixed, promotions: []promotion{{1, false}}, wantServed: 1, wantFailed: []int64{}},
		{name: "a broken newest model and its fallback", clock: fixed,
			promotions: []promotion{{1, false}, {2, true}}, wantServed: 1, wantFailed: []int64{2}},
		{name: "a broken model announced, nothing to fall back to", clock: fixed,
			promotions: []promotion{{1, true}}, event: true, wantFailed: []int64{1}},
		{name: "no clock: the system clock", promotions: []promotion{{1, false}, {2, true}}, wantServed: 1, wantFailed: []int64{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.models = serve.NewModels(f.catalog, f.bucket, f.reg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(),
				serve.WithClock(tt.clock))
			for _, p := range tt.promotions {
				f.promote(t, "housing", 200, p.seq, p.corrupt)
			}
			ctx := context.Background()
			var err error
			if tt.event {
				newest := tt.promotions[len(tt.promotions)-1].seq
				err = f.models.HandlePromoted(ctx, &events.ModelPromoted{Meta: events.Meta{ID: "e", Dataset: "housing"}, Sequence: newest})
			} else {
				err = f.models.Refresh(ctx)
			}
			if len(tt.wantFailed) > 0 {
				require.ErrorIs(t, err, model.ErrInvalidArtifact)
			} else {
				require.NoError(t, err)
			}
			stamped := func(got time.Time, what string) {
				t.Helper()
				if tt.clock == nil {
					require.WithinDuration(t, time.Now(), got, time.Minute, what)
					require.Equal(t, time.UTC, got.Location(), what)
					return
				}
				require.Equal(t, at.UTC(), got, what)
			}
			require.Equal(t, tt.wantServed, f.served("housing"))
			if cur := f.models.Current("housing"); cur != nil {
				stamped(cur.LoadedAt, "LoadedAt")
			}
			st := f.state(t, "housing")
			require.Equal(t, tt.wantFailed, failedSequences(st))
			for _, fl := range st.Failed {
				stamped(fl.At, "Failure.At")
			}
		})
	}
}
