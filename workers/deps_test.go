package workers

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
)

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, events.Event) error { return nil }

func TestCheckNamesTheMissingDependency(t *testing.T) {
	bucket, err := local.New(t.TempDir(), "b")
	require.NoError(t, err)
	catalog, err := dataset.NewCatalog()
	require.NoError(t, err)
	full := Deps{Datasets: catalog, Bucket: bucket, Registry: registry.New(memory.New()), Publisher: nopPublisher{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry()}
	require.NoError(t, full.Check())
	for _, tt := range []struct {
		name string
		drop func(*Deps)
	}{
		{"Datasets", func(d *Deps) { d.Datasets = nil }},
		{"Bucket", func(d *Deps) { d.Bucket = nil }},
		{"Registry", func(d *Deps) { d.Registry = nil }},
		{"Publisher", func(d *Deps) { d.Publisher = nil }},
		{"Logger", func(d *Deps) { d.Logger = nil }},
		{"Metrics", func(d *Deps) { d.Metrics = nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := full
			tt.drop(&d)
			require.EqualError(t, d.Check(), "workers: Deps."+tt.name+" is nil")
		})
	}
}

func TestNowReadsTheClockInUTC(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	now := Deps{Clock: ClockFunc(func() time.Time { return at })}.Now()
	require.Equal(t, at.UTC(), now())
	require.Equal(t, time.UTC, now().Location())
	sys := Deps{}.Now()()
	require.WithinDuration(t, time.Now(), sys, time.Minute)
}
