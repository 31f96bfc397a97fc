// Package workers holds what the four pipeline workers (preprocess,
// version, train, promote) share: the dependencies they are built from and
// the clock they read.
package workers

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
)

// Datasets finds a dataset's definition.
type Datasets interface {
	Get(name string) (*dataset.Definition, bool)
	Names() []string
}

// Publisher sends events.
type Publisher interface {
	Publish(ctx context.Context, e events.Event) error
}

// Clock tells the time a worker records (staged, decided, created at).
// Tests give one that advances when they say, so they never sleep.
type Clock interface {
	Now() time.Time
}

// ClockFunc makes a function a Clock.
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }

func systemNow() time.Time { return time.Now().UTC() }

// Deps is what every worker is built from.
type Deps struct {
	Datasets  Datasets
	Bucket    blob.Bucket
	Registry  *registry.Registry
	Publisher Publisher
	Logger    *slog.Logger
	Metrics   prometheus.Registerer
	// Clock is optional: nil is the system clock.
	Clock Clock
}

// Check reports the first missing dependency by name.
func (d Deps) Check() error {
	missing := ""
	switch {
	case d.Datasets == nil:
		missing = "Datasets"
	case d.Bucket == nil:
		missing = "Bucket"
	case d.Registry == nil:
		missing = "Registry"
	case d.Publisher == nil:
		missing = "Publisher"
	case d.Logger == nil:
		missing = "Logger"
	case d.Metrics == nil:
		missing = "Metrics"
	}
	if missing != "" {
		return fmt.Errorf("workers: Deps.%s is nil", missing)
	}
	return nil
}

// Now is the function a worker reads the time from: the Clock, or the
// system clock (UTC) when none is set.
func (d Deps) Now() func() time.Time {
	if d.Clock == nil {
		return systemNow
	}
	c := d.Clock
	return func() time.Time { return c.Now().UTC() }
}
