package gateway_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/gateway"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/workers/serve"
)

func TestNewServerNamesTheMissingDependency(t *testing.T) {
	catalog, err := dataset.NewCatalog(shipped(t, "housing"))
	require.NoError(t, err)
	bucket, err := local.New(t.TempDir(), "test")
	require.NoError(t, err)
	reg := registry.New(memory.New())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	full := gateway.Deps{Datasets: catalog, Registry: reg, Bucket: bucket, Publisher: nopPublisher{},
		Models: serve.NewModels(catalog, bucket, reg, logger, prometheus.NewRegistry()), Logger: logger, Metrics: prometheus.NewRegistry()}
	_, err = gateway.NewServer(gateway.Config{}, full)
	require.NoError(t, err)
	for _, tt := range []struct {
		name string
		drop func(*gateway.Deps)
	}{
		{"Datasets", func(d *gateway.Deps) { d.Datasets = nil }},
		{"Registry", func(d *gateway.Deps) { d.Registry = nil }},
		{"Bucket", func(d *gateway.Deps) { d.Bucket = nil }},
		{"Publisher", func(d *gateway.Deps) { d.Publisher = nil }},
		{"Models", func(d *gateway.Deps) { d.Models = nil }},
		{"Logger", func(d *gateway.Deps) { d.Logger = nil }},
		{"Metrics", func(d *gateway.Deps) { d.Metrics = nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := full
			tt.drop(&d)
			_, err := gateway.NewServer(gateway.Config{}, d)
			require.EqualError(t, err, "gateway: Deps."+tt.name+" is nil")
		})
	}
}
