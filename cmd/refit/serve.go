package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/gateway"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/schemas"
	"github.com/refit-ml/refit/webhook"
	"github.com/refit-ml/refit/workers/preprocess"
	"github.com/refit-ml/refit/workers/promote"
	serving "github.com/refit-ml/refit/workers/serve"
	"github.com/refit-ml/refit/workers/train"
	"github.com/refit-ml/refit/workers/version"
)

const serveHelp = `refit serve runs parts of Refit in this process.

Example:
  refit serve --target=all                    # everything (what 'refit run' does)
  REFIT_PROFILE=gcp refit serve --target=train  # one worker on the production stack`

func serveCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", serveHelp, stderr)
	target := fs.String("target", "", "comma list of: all, gateway, preprocess, version, train, promote (env REFIT_TARGET, default all)")
	profile := fs.String("profile", "", "embedded or gcp (env REFIT_PROFILE, default embedded)")
	if _, err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg, err := loadConfig(getenv, *profile, *target)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	return serve(ctx, cfg, logger, stdout)
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func codeVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	return "dev"
}

// reconciler finds work whose event was lost.
type reconciler struct {
	name string
	fn   func(context.Context) error
}

// serve runs the configured targets as actors of one errgroup: the event
// router, the HTTP server, the reconcile loop and, in the embedded profile,
// the folder watcher. The first to fail stops them all.
func serve(ctx context.Context, cfg Config, logger *slog.Logger, stdout io.Writer) error {
	catalog, err := dataset.LoadCatalog(schemas.Files, "datasets", cfg.DatasetsDir)
	if err != nil {
		return err
	}
	st, err := openStack(ctx, cfg, catalog.Names(), logger)
	if err != nil {
		return err
	}
	defer st.Close()

	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg := registry.New(st.docs)
	router, err := bus.NewRouter(bus.RouterConfig{}, st.bus, bus.NewMetrics(metrics), watermillLogger(logger))
	if err != nil {
		return err
	}
	idle := newIdleTracker()
	router.AddMiddleware(idle.middleware)
	var reconcilers []reconciler
	add := func(handler, topic, group string, fn message.NoPublishHandlerFunc) error {
		sub, err := st.bus.Subscriber(group)
		if err != nil {
			return err
		}
		router.AddNoPublisherHandler(handler, st.bus.Topic(topic), sub, fn)
		return nil
	}
	pub := func(source string) *bus.EventPublisher { return bus.NewEventPublisher(st.bus, "refit/"+source) }

	if cfg.has("preprocess") {
		w, err := preprocess.New(preprocess.Config{Datasets: catalog, Bucket: st.bucket, Registry: reg, Publisher: pub("preprocess"), Logger: logger, Metrics: metrics})
		if err != nil {
			return err
		}
		if err := add("preprocess.object", events.TopicObjectFinalized, "preprocess", bus.Handle(w.HandleObject)); err != nil {
			return err
		}
		if err := add("preprocess.correction", events.TopicCorrectionSubmitted, "preprocess", bus.Handle(w.HandleCorrection)); err != nil {
			return err
		}
		reconcilers = append(reconcilers, reconciler{"preprocess", w.Reconcile})
	}
	if cfg.has("version") {
		w, err := version.New(version.Config{Datasets: catalog, Bucket: st.bucket, Registry: reg, Publisher: pub("version"), Logger: logger, Metrics: metrics})
		if err != nil {
			return err
		}
		if err := add("version", events.TopicRowsStaged, "version", bus.Handle(w.HandleRowsStaged)); err != nil {
			return err
		}
		reconcilers = append(reconcilers, reconciler{"version", w.Reconcile})
	}
	if cfg.has("train") {
		w, err := train.New(train.Config{Datasets: catalog, Bucket: st.bucket, Registry: reg, Publisher: pub("train"), Logger: logger, Metrics: metrics, CodeVersion: codeVersion()})
		if err != nil {
			return err
		}
		if err := add("train", events.TopicDatasetVersioned, "train", bus.Handle(w.HandleVersioned)); err != nil {
			return err
		}
		reconcilers = append(reconcilers, reconciler{"train", w.Reconcile})
	}
	if cfg.has("promote") {
		w, err := promote.New(promote.Config{Datasets: catalog, Bucket: st.bucket, Registry: reg, Publisher: pub("promote"), Logger: logger, Metrics: metrics})
		if err != nil {
			return err
		}
		if err := add("promote", events.TopicModelTrained, "promote", bus.Handle(w.HandleTrained)); err != nil {
			return err
		}
		reconcilers = append(reconcilers, reconciler{"promote", w.Reconcile})
		if len(cfg.Access.Webhooks) > 0 {
			// A group of its own: one replica delivers each promotion.
			d, err := webhook.NewDispatcher(webhook.Config{URLs: cfg.Access.Webhooks, Secret: cfg.Access.WebhookSecret, Log: reg, Logger: logger})
			if err != nil {
				return err
			}
			if err := add("webhooks", events.TopicModelPromoted, "webhooks", bus.Handle(d.HandlePromoted)); err != nil {
				return err
			}
		}
	}
	workers := len(reconcilers) > 0
	if workers {
		// Every worker process keeps the dead letters it can read in the
		// registry, where `refit status` and the API show them.
		if err := add("dead-letters", events.TopicDeadLetter, "dead-letters", recordDeadLetter(reg)); err != nil {
			return err
		}
	}

	var started atomic.Bool
	ready := func() bool { return started.Load() }
	var handler http.Handler
	var models *serving.Models
	hub := gateway.NewHub() // GET /v1/events
	if cfg.has("gateway") {
		models = serving.NewModels(catalog, st.bucket, reg, logger, metrics)
		// Each gateway replica hears every promotion: a group of its own.
		group := "gateway-" + uuid.NewString()[:8]
		if err := add("gateway.promoted."+group, events.TopicModelPromoted, group, bus.Handle(models.HandlePromoted)); err != nil {
			return err
		}
		if err := add("gateway.stream.promoted."+group, events.TopicModelPromoted, group+"-events", bus.Handle(hub.HandlePromoted)); err != nil {
			return err
		}
		if err := add("gateway.stream.versioned."+group, events.TopicDatasetVersioned, group+"-events", bus.Handle(hub.HandleVersioned)); err != nil {
			return err
		}
		srv, err := gateway.NewServer(gateway.Config{NotifyUploads: st.watch != nil, AdminToken: cfg.Access.AdminToken,
			ProtectPredict: cfg.Access.ProtectPredict, ProtectCorrections: cfg.Access.ProtectCorrections}, gateway.Deps{
			Datasets: catalog, Registry: reg, Bucket: st.bucket, Publisher: pub("gateway"), Models: models,
			Logger: logger, Metrics: metrics, Ready: ready, Events: hub,
			// Manual promotions are announced like automatic ones.
			Promoter: promote.NewManual(reg, st.bucket, pub("promote"), logger),
		})
		if err != nil {
			return err
		}
		handler = srv
	} else {
		handler = probes(metrics, ready)
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("REFIT_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	httpServer := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	httpServer.RegisterOnShutdown(hub.Close) // event streams end, so Shutdown does not wait on them

	ctx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	g, ctx := errgroup.WithContext(ctx)
	if cfg.ExitWhenIdle > 0 {
		g.Go(func() error {
			idle.wait(ctx, cfg.ExitWhenIdle)
			if ctx.Err() == nil {
				logger.Info("no event handled for a while; exiting", "idle", cfg.ExitWhenIdle)
				stopServing()
			}
			return nil
		})
	}
	g.Go(func() error { return router.Run(ctx) })
	g.Go(func() error {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = httpServer.Shutdown(shutdownCtx)
		return router.Close()
	})
	g.Go(func() error {
		select {
		case <-router.Running():
		case <-ctx.Done():
			return nil
		}
		// Serve only once subscriptions exist: an in-process bus drops
		// events nobody subscribed to yet.
		logger.Info("refit started", "profile", cfg.Profile, "targets", cfg.Targets, "http", ln.Addr().String(), "version", codeVersion())
		fmt.Fprintf(stdout, "refit listening on http://%s (targets: %v)\n", ln.Addr(), cfg.Targets)
		if models != nil {
			if err := models.Refresh(ctx); err != nil {
				logger.Warn("load models", "err", err)
			}
		}
		started.Store(true)
		if err := httpServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if models != nil {
		g.Go(func() error { return models.RefreshEvery(ctx, cfg.ModelRefresh) })
	}
	if workers {
		g.Go(func() error { return reconcileLoop(ctx, router, reconcilers, cfg.ReconcileInterval, logger) })
	}
	if st.watch != nil && cfg.has("preprocess") {
		p := pub("bucket")
		g.Go(func() error {
			err := st.watch(ctx, func(o blob.Object) {
				e := events.NewObjectFinalized(o.Bucket, o.Name, o.Generation, o.Size, o.Updated)
				if err := p.Publish(ctx, e); err != nil && ctx.Err() == nil {
					logger.Warn("announce upload", "object", o.Name, "err", err)
				}
			})
			if ctx.Err() != nil {
				return nil
			}
			return err
		})
	}
	err = g.Wait()
	logger.Info("refit stopped")
	return err
}

// reconcileLoop runs every reconciler in pipeline order at start and then
// every interval.
func reconcileLoop(ctx context.Context, router *message.Router, rs []reconciler, every time.Duration, logger *slog.Logger) error {
	select {
	case <-router.Running():
	case <-ctx.Done():
		return nil
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, r := range rs {
			if err := r.fn(ctx); err != nil && ctx.Err() == nil {
				logger.Warn("reconcile", "worker", r.name, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func recordDeadLetter(reg *registry.Registry) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		md := map[string]string{}
		for k, v := range msg.Metadata {
			md[k] = v
		}
		return reg.AddDeadLetter(msg.Context(), registry.DeadLetter{
			MessageID: msg.UUID, Topic: msg.Metadata.Get(middleware.PoisonedTopicKey),
			Handler: msg.Metadata.Get(middleware.PoisonedHandlerKey), Reason: msg.Metadata.Get(middleware.ReasonForPoisonedKey),
			CorrelationID: middleware.MessageCorrelationID(msg), Metadata: md, Payload: string(msg.Payload), At: time.Now().UTC(),
		})
	}
}

// probes is the HTTP surface of a worker-only process.
func probes(metrics *prometheus.Registry, ready func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, `{"status":"ok"}`) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			http.Error(w, `{"status":"starting"}`, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, `{"status":"ready"}`)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	return mux
}

// idleTracker knows when the last event was handled and how many are in
// hand, for REFIT_EXIT_WHEN_IDLE.
type idleTracker struct {
	last     atomic.Int64 // unix nanoseconds
	inFlight atomic.Int64
}

func newIdleTracker() *idleTracker {
	t := &idleTracker{}
	t.last.Store(time.Now().UnixNano())
	return t
}

func (t *idleTracker) middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		t.inFlight.Add(1)
		defer func() {
			t.last.Store(time.Now().UnixNano())
			t.inFlight.Add(-1)
		}()
		return h(msg)
	}
}

// wait returns once nothing has been in hand for d, or when ctx ends.
func (t *idleTracker) wait(ctx context.Context, d time.Duration) {
	tick := time.NewTicker(min(d/4+time.Millisecond, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if t.inFlight.Load() == 0 && time.Since(time.Unix(0, t.last.Load())) >= d {
				return
			}
		}
	}
}
