package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"cloud.google.com/go/storage"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob/gcs"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/mongo"
)

// openGCP: GCS for files, MongoDB for records, Pub/Sub for events. The
// bucket notifies Pub/Sub of uploads itself, so there is no watcher.
func openGCP(ctx context.Context, cfg Config, logger *slog.Logger) (*stack, error) {
	client, err := gcs.NewClient(ctx, storageEndpoint(cfg.GCSEmulator))
	if err != nil {
		return nil, fmt.Errorf("storage client: %w", err)
	}
	s := &stack{bucket: gcs.New(client, cfg.Bucket), gcs: client, closes: []func() error{client.Close}}
	docs, err := mongo.Open(ctx, cfg.MongoURI, cfg.MongoDatabase)
	if err != nil {
		s.Close()
		// The URI may hold a password: name the setting, not its value.
		return nil, fmt.Errorf("REFIT_MONGODB_URI: cannot connect to MongoDB: %w", redact(err, cfg.MongoURI))
	}
	s.docs = docs
	s.closes = append(s.closes, func() error { return docs.Close(context.Background()) })
	b, err := bus.NewPubSub(ctx, bus.PubSubConfig{Project: cfg.GCPProject, TopicPrefix: cfg.TopicPrefix, Endpoint: cfg.PubSubEmulator, AckDeadline: cfg.AckDeadline}, watermillLogger(logger))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("pubsub: %w", err)
	}
	s.bus, s.pubsub = b, b
	s.closes = append(s.closes, b.Close)
	return s, nil
}

// storageEndpoint reads STORAGE_EMULATOR_HOST as Google's library does:
// host:port, with or without a scheme.
func storageEndpoint(host string) string {
	if host == "" || strings.Contains(host, "://") {
		return host
	}
	return "http://" + host
}

func redact(err error, secret string) error {
	if secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, "<REFIT_MONGODB_URI>"))
}

// setupGCP creates what the gcp profile needs, idempotently, and reports
// what it created and what it found.
func setupGCP(ctx context.Context, cfg Config, st *stack, report func(created bool, what string)) error {
	created, found, err := st.pubsub.Setup(ctx, subscriptions(cfg))
	for _, c := range created {
		report(true, c)
	}
	for _, f := range found {
		report(false, f)
	}
	if err != nil {
		return err
	}
	bkt := st.gcs.Bucket(cfg.Bucket)
	if _, err := bkt.Attrs(ctx); errors.Is(err, storage.ErrBucketNotExist) {
		if err := bkt.Create(ctx, cfg.GCPProject, nil); err != nil {
			return fmt.Errorf("create bucket %s: %w", cfg.Bucket, err)
		}
		report(true, "gs://"+cfg.Bucket)
	} else if err != nil {
		return fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
	} else {
		report(false, "gs://"+cfg.Bucket)
	}
	topic := st.bus.Topic(events.TopicObjectFinalized)
	notes, err := bkt.Notifications(ctx)
	if err != nil {
		return fmt.Errorf("bucket %s notifications: %w", cfg.Bucket, err)
	}
	exists := false
	for _, n := range notes {
		if n.TopicID == topic && n.ObjectNamePrefix == events.IncomingPrefix {
			exists = true
			report(false, fmt.Sprintf("notification gs://%s/%s* -> %s", cfg.Bucket, events.IncomingPrefix, topic))
		}
	}
	if !exists {
		_, err := bkt.AddNotification(ctx, &storage.Notification{
			TopicProjectID: cfg.GCPProject, TopicID: topic, PayloadFormat: storage.JSONPayload,
			EventTypes: []string{storage.ObjectFinalizeEvent}, ObjectNamePrefix: events.IncomingPrefix,
		})
		if err != nil {
			return fmt.Errorf("bucket %s: add notification: %w", cfg.Bucket, err)
		}
		report(true, fmt.Sprintf("notification gs://%s/%s* -> %s", cfg.Bucket, events.IncomingPrefix, topic))
	}
	docs := st.docs.(*mongo.Store)
	made, had, err := docs.EnsureCollections(ctx, registry.Collections())
	for _, c := range made {
		report(true, "mongodb collection "+c)
	}
	for _, c := range had {
		report(false, "mongodb collection "+c)
	}
	return err
}
