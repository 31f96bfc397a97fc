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

	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/schemas"
)

const serveHelp = `refit serve runs parts of Refit in this process.

Example:
  refit serve --target=all                    # everything (what 'refit run' does)
  REFIT_PROFILE=gcp refit serve --target=train  # one worker on the production stack`

func serveCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", serveHelp, stderr)
	target := fs.String("target", "", "comma list of: all, gateway, preprocess, version, train, promote; or scaler alone (env REFIT_TARGET, default all)")
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
	if cfg.has(targetScaler) {
		return serveScaler(ctx, cfg, logger, stdout)
	}
	return serve(ctx, cfg, logger, stdout)
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// codeVersion is the revision the binary was built from, recorded with
// every run (code_version) and printed by `refit version`.
func codeVersion() string {
	info, ok := debug.ReadBuildInfo()
	return versionFrom(info, ok, buildRevision)
}

// versionFrom prefers the revision Go stamped itself; linked (the -X
// fallback that `make build` sets) covers builds Go does not stamp.
func versionFrom(info *debug.BuildInfo, ok bool, linked string) string {
	if ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	if linked != "" {
		return linked
	}
	if ok {
		if v := info.Main.Version; v != "" && v != "(devel)" {
			return v
		}
	}
	return "dev"
}

// reconciler finds work whose event was lost.
type reconciler struct {
	name string
	fn   func(context.Context) error
}

// serve runs the targets cfg enables (the table in modules.go) as actors of
// one errgroup: the event router, the HTTP server, the reconcile loop and
// each module's own actors (the folder watcher, the model refresh). The
// first to fail stops them all.
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
	var started atomic.Bool
	ready := func() bool { return started.Load() }
	e := &env{cfg: cfg, logger: logger, catalog: catalog, st: st, reg: registry.New(st.docs), metrics: metrics, ready: ready}
	mods, err := buildTargets(e, "gateway-"+uuid.NewString()[:8])
	if err != nil {
		return err
	}
	router, err := bus.NewRouter(bus.RouterConfig{}, st.bus, bus.NewMetrics(metrics), watermillLogger(logger))
	if err != nil {
		return err
	}
	idle := newIdleTracker()
	router.AddMiddleware(idle.middleware)
	proc, err := assemble(router, st.bus, mods)
	if err != nil {
		return err
	}
	handler := proc.http
	if handler == nil {
		handler = probes(metrics, ready)
	}
	httpServer := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	for _, f := range proc.shutdown {
		httpServer.RegisterOnShutdown(f)
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("REFIT_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
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
		for _, start := range proc.starting {
			start(ctx)
		}
		started.Store(true)
		if err := httpServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	for _, actor := range proc.actors {
		g.Go(func() error { return actor(ctx) })
	}
	if len(proc.reconcilers) > 0 {
		g.Go(func() error { return reconcileLoop(ctx, router, proc.reconcilers, cfg.ReconcileInterval, logger) })
	}
	err = g.Wait()
	logger.Info("refit stopped")
	return err
}

// process is what the built targets add up to.
type process struct {
	reconcilers []reconciler
	actors      []func(context.Context) error
	starting    []func(context.Context)
	shutdown    []func()
	http        http.Handler
}

// assemble subscribes every built target's routes and gathers the rest.
func assemble(router *message.Router, b subscriber, mods []built) (process, error) {
	var p process
	for _, m := range mods {
		if err := subscribe(router, b, m); err != nil {
			return p, err
		}
		if m.reconcile != nil {
			p.reconcilers = append(p.reconcilers, reconciler{m.name, m.reconcile})
		}
		p.actors = append(p.actors, m.actors...)
		if m.starting != nil {
			p.starting = append(p.starting, m.starting)
		}
		if m.shutdown != nil {
			p.shutdown = append(p.shutdown, m.shutdown)
		}
		if m.http != nil {
			p.http = m.http
		}
	}
	return p, nil
}

// subscriber makes a consumer group's subscriber.
type subscriber interface {
	Subscriber(group string) (message.Subscriber, error)
	Topic(event string) string
}

// subscribe adds a built target's routes to the router.
func subscribe(router *message.Router, b subscriber, m built) error {
	for _, r := range m.bindings {
		sub, err := b.Subscriber(r.group)
		if err != nil {
			return fmt.Errorf("%s: subscribe %s: %w", m.name, r.group, err)
		}
		router.AddConsumerHandler(r.handler, b.Topic(r.topic), sub, r.handle)
	}
	return nil
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
