package main

import (
	"cloud.google.com/go/storage"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/store"
	"github.com/refit-ml/refit/internal/store/bolt"
)

// stack is the infrastructure a profile provides: where files, records and
// events go.
type stack struct {
	bucket blob.Bucket
	docs   store.Docs
	bus    bus.Bus
	// watch, when set, reports objects written to the bucket (a folder has
	// no notifications of its own).
	watch  func(ctx context.Context, notify func(blob.Object)) error
	closes []func() error
	// gcp profile only: for setup.
	gcs    *storage.Client
	pubsub *bus.PubSub
}

func (s *stack) Close() error {
	var errs []error
	for i := len(s.closes) - 1; i >= 0; i-- {
		errs = append(errs, s.closes[i]())
	}
	return errors.Join(errs...)
}

func openStack(ctx context.Context, cfg Config, datasets []string, logger *slog.Logger) (*stack, error) {
	switch cfg.Profile {
	case profileEmbedded:
		return openEmbedded(cfg, datasets, logger)
	case profileGCP:
		return openGCP(ctx, cfg, logger)
	}
	return nil, fmt.Errorf("unknown profile %q", cfg.Profile)
}

// openEmbedded: a folder as the bucket, bbolt as the store, Go channels as
// the bus. One process owns the data directory.
func openEmbedded(cfg Config, datasets []string, logger *slog.Logger) (*stack, error) {
	// The upload folders exist from the start, so `cp file var/bucket/incoming/<dataset>/` works.
	for _, ds := range datasets {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, "bucket", "incoming", ds), 0o755); err != nil {
			return nil, fmt.Errorf("REFIT_DATA_DIR: %w", err)
		}
	}
	bucket, err := local.New(filepath.Join(cfg.DataDir, "bucket"), "local")
	if err != nil {
		return nil, err
	}
	docs, err := bolt.Open(filepath.Join(cfg.DataDir, "refit.db"))
	if err != nil {
		return nil, fmt.Errorf("open store %s (is another refit running on this data directory?): %w", filepath.Join(cfg.DataDir, "refit.db"), err)
	}
	b := bus.NewInProcess(watermillLogger(logger))
	s := &stack{bucket: bucket, docs: docs, bus: b, closes: []func() error{docs.Close, b.Close}}
	s.watch = func(ctx context.Context, notify func(blob.Object)) error {
		return bucket.Watch(ctx, "incoming/", local.WatchOptions{Interval: cfg.WatchInterval, Quiet: cfg.WatchQuiet, TempMaxAge: cfg.WatchTempMaxAge}, notify)
	}
	return s, nil
}

// watermillLogger keeps Watermill's per-handler chatter at debug level.
func watermillLogger(logger *slog.Logger) *slog.Logger {
	return slog.New(levelShift{logger.Handler()}).With("component", "watermill")
}

// levelShift moves info records down to debug.
type levelShift struct{ slog.Handler }

func (h levelShift) Enabled(ctx context.Context, l slog.Level) bool {
	if l == slog.LevelInfo {
		l = slog.LevelDebug
	}
	return h.Handler.Enabled(ctx, l)
}

func (h levelShift) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo {
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h levelShift) WithAttrs(a []slog.Attr) slog.Handler { return levelShift{h.Handler.WithAttrs(a)} }
func (h levelShift) WithGroup(n string) slog.Handler      { return levelShift{h.Handler.WithGroup(n)} }
