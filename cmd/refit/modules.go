package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/gateway"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/webhook"
	"github.com/refit-ml/refit/workers"
	"github.com/refit-ml/refit/workers/preprocess"
	"github.com/refit-ml/refit/workers/promote"
	serving "github.com/refit-ml/refit/workers/serve"
	"github.com/refit-ml/refit/workers/train"
	"github.com/refit-ml/refit/workers/version"
)

// The composition root, as one table (Grafana Loki's modules.go): each
// target declares the subscriptions it makes and how it is built. `serve`
// walks the table; `setup` creates the subscriptions from the same rows, so
// the two cannot list different ones.

// replica in a route's handler name or group stands for this process's own
// identifier: a group of its own hears every message (fan-out), and setup
// does not create it (the process does, at start).
const replica = "{replica}"

// route is one subscription: the router's handler name, the topic and the
// consumer group. Replicas of a target share its groups, so each message is
// handled once per group.
type route struct {
	handler, topic, group string
}

// perReplica reports whether the route's group is the process's own.
func (r route) perReplica() bool { return strings.Contains(r.group, replica) }

// target is one row of the table.
type target struct {
	name string
	// enabled says whether this process runs the target.
	enabled func(cfg Config) bool
	// routes are the subscriptions the target makes; build gives a
	// handler for each, by handler name.
	routes []route
	// worker: a step of the pipeline; a process running one records dead
	// letters, reconciles, and serves probes when it runs no gateway.
	worker bool
	build  func(e *env) (*module, error)
}

// module is a target built for this process.
type module struct {
	handlers  handlerSet                  // by route handler name
	reconcile func(context.Context) error // finds work whose event was lost
	// The rest is optional.
	http     http.Handler                  // the process's HTTP surface (else the probes)
	actors   []func(context.Context) error // run beside the router until the process stops
	starting func(context.Context)         // once subscribed, before HTTP is served
	shutdown func()                        // when HTTP shuts down
}

// env is what targets are built from: one per process.
type env struct {
	cfg     Config
	logger  *slog.Logger
	catalog *dataset.Catalog
	st      *stack
	reg     *registry.Registry
	metrics *prometheus.Registry
	ready   func() bool
}

func (e *env) pub(source string) *bus.EventPublisher {
	return bus.NewEventPublisher(e.st.bus, "refit/"+source)
}

func (e *env) deps(source string) workers.Deps {
	return workers.Deps{Datasets: e.catalog, Bucket: e.st.bucket, Registry: e.reg, Publisher: e.pub(source),
		Logger: e.logger, Metrics: e.metrics}
}

// workerTargets are the pipeline's steps, in order.
func workerTargets() []string { return []string{"preprocess", "version", "train", "promote"} }

func selected(name string) func(Config) bool { return func(cfg Config) bool { return cfg.has(name) } }

// targets is the table, in pipeline order (reconcile passes run in it).
func targets() []target {
	return []target{
		{name: "preprocess", enabled: selected("preprocess"), worker: true,
			routes: []route{
				{"preprocess.object", events.TopicObjectFinalized, "preprocess"},
				{"preprocess.correction", events.TopicCorrectionSubmitted, "preprocess"},
			},
			build: buildPreprocess},
		{name: "version", enabled: selected("version"), worker: true,
			routes: []route{{"version", events.TopicRowsStaged, "version"}},
			build: func(e *env) (*module, error) {
				w, err := version.New(e.deps("version"))
				if err != nil {
					return nil, err
				}
				return &module{handlers: handlerSet{"version": bus.Handle(w.HandleRowsStaged)}, reconcile: w.Reconcile}, nil
			}},
		{name: "train", enabled: selected("train"), worker: true,
			// Replicas share both groups: each blob's statistics are
			// computed once, on whichever replica takes its message.
			routes: []route{
				{"train", events.TopicDatasetVersioned, "train"},
				{"train.blob", events.TopicBlobWritten, "train"},
			},
			build: func(e *env) (*module, error) {
				w, err := train.New(train.Config{Deps: e.deps("train"), CodeVersion: codeVersion()})
				if err != nil {
					return nil, err
				}
				return &module{handlers: handlerSet{
					"train":      bus.Handle(w.HandleVersioned),
					"train.blob": bus.Handle(w.HandleBlobWritten),
				}, reconcile: w.Reconcile}, nil
			}},
		{name: "promote", enabled: selected("promote"), worker: true,
			routes: []route{{"promote", events.TopicModelTrained, "promote"}},
			build: func(e *env) (*module, error) {
				w, err := promote.New(e.deps("promote"))
				if err != nil {
					return nil, err
				}
				return &module{handlers: handlerSet{"promote": bus.Handle(w.HandleTrained)}, reconcile: w.Reconcile}, nil
			}},
		// A group of its own: one replica delivers each promotion. Only when
		// webhooks are configured: nobody would drain its subscription.
		{name: "webhooks", enabled: func(cfg Config) bool { return cfg.has("promote") && len(cfg.Access.Webhooks) > 0 },
			routes: []route{{"webhooks", events.TopicModelPromoted, "webhooks"}},
			build: func(e *env) (*module, error) {
				d, err := webhook.NewDispatcher(webhook.Config{URLs: e.cfg.Access.Webhooks, Secret: e.cfg.Access.WebhookSecret, Log: e.reg, Logger: e.logger})
				if err != nil {
					return nil, err
				}
				return &module{handlers: handlerSet{"webhooks": bus.Handle(d.HandlePromoted)}, reconcile: d.Reconcile}, nil
			}},
		// Every worker process keeps the dead letters it can read in the
		// registry, where `refit status` and the API show them.
		{name: "dead-letters", enabled: anyWorker,
			routes: []route{{"dead-letters", events.TopicDeadLetter, "dead-letters"}},
			build: func(e *env) (*module, error) {
				return &module{handlers: handlerSet{"dead-letters": recordDeadLetter(e.reg)}}, nil
			}},
		// Each gateway replica hears every promotion: groups of its own.
		{name: "gateway", enabled: selected("gateway"),
			routes: []route{
				{"gateway.promoted." + replica, events.TopicModelPromoted, replica},
				{"gateway.stream.promoted." + replica, events.TopicModelPromoted, replica + "-events"},
				{"gateway.stream.versioned." + replica, events.TopicDatasetVersioned, replica + "-events"},
			},
			build: buildGateway},
	}
}

func anyWorker(cfg Config) bool {
	for _, w := range workerTargets() {
		if cfg.has(w) {
			return true
		}
	}
	return false
}

// handlerSet holds a module's handlers by route handler name.
type handlerSet = map[string]message.NoPublishHandlerFunc

func buildPreprocess(e *env) (*module, error) {
	w, err := preprocess.New(preprocess.Config{Deps: e.deps("preprocess"), IncomingRetention: e.cfg.IncomingRetention})
	if err != nil {
		return nil, err
	}
	m := &module{reconcile: w.Reconcile, handlers: handlerSet{
		"preprocess.object":     bus.Handle(w.HandleObject),
		"preprocess.correction": bus.Handle(w.HandleCorrection),
	}}
	if e.st.watch != nil {
		// A folder has no notifications: the watcher announces its uploads.
		p := e.pub("bucket")
		m.actors = append(m.actors, func(ctx context.Context) error {
			err := e.st.watch(ctx, func(o blob.Object) {
				ev := events.NewObjectFinalized(o.Bucket, o.Name, o.Generation, o.Size, o.Updated)
				if err := p.Publish(ctx, ev); err != nil && ctx.Err() == nil {
					e.logger.Warn("announce upload", "object", o.Name, "err", err)
				}
			})
			if ctx.Err() != nil {
				return nil
			}
			return err
		})
	}
	return m, nil
}

func buildGateway(e *env) (*module, error) {
	models := serving.NewModels(e.catalog, e.st.bucket, e.reg, e.logger, e.metrics)
	hub := gateway.NewHub() // GET /v1/events
	srv, err := gateway.NewServer(gateway.Config{NotifyUploads: e.st.watch != nil, AdminToken: e.cfg.Access.AdminToken,
		ProtectPredict: e.cfg.Access.ProtectPredict, ProtectCorrections: e.cfg.Access.ProtectCorrections}, gateway.Deps{
		Datasets: e.catalog, Registry: e.reg, Bucket: e.st.bucket, Publisher: e.pub("gateway"), Models: models,
		Logger: e.logger, Metrics: e.metrics, Ready: e.ready, Events: hub,
		// Manual promotions are announced like automatic ones.
		Promoter: promote.NewManual(e.reg, e.st.bucket, e.pub("promote"), e.logger, nil),
	})
	if err != nil {
		return nil, err
	}
	return &module{
		handlers: handlerSet{
			"gateway.promoted." + replica:         bus.Handle(models.HandlePromoted),
			"gateway.stream.promoted." + replica:  bus.Handle(hub.HandlePromoted),
			"gateway.stream.versioned." + replica: bus.Handle(hub.HandleVersioned),
		},
		http: srv,
		starting: func(ctx context.Context) {
			if err := models.Refresh(ctx); err != nil {
				e.logger.Warn("load models", "err", err)
			}
		},
		actors:   []func(context.Context) error{func(ctx context.Context) error { return models.RefreshEvery(ctx, e.cfg.ModelRefresh) }},
		shutdown: hub.Close, // event streams end, so Shutdown does not wait on them
	}, nil
}

// built is a target built, with its routes bound for this replica.
type built struct {
	target
	*module
	bindings []binding
}

// binding is a route of this replica and its handler.
type binding struct {
	route
	handle message.NoPublishHandlerFunc
}

// buildTargets builds the targets cfg enables, in table order.
func buildTargets(e *env, replicaID string) ([]built, error) {
	var out []built
	for _, t := range targets() {
		if !t.enabled(e.cfg) {
			continue
		}
		b, err := bindTarget(t, e, replicaID)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// bindTarget builds t and binds each of its routes to its handler, with
// {replica} replaced by replicaID.
func bindTarget(t target, e *env, replicaID string) (built, error) {
	m, err := t.build(e)
	if err != nil {
		return built{}, fmt.Errorf("%s: %w", t.name, err)
	}
	b := built{target: t, module: m}
	for _, r := range t.routes {
		h := m.handlers[r.handler]
		if h == nil {
			return built{}, fmt.Errorf("%s: no handler for route %s", t.name, r.handler)
		}
		b.bindings = append(b.bindings, binding{route: route{
			handler: strings.ReplaceAll(r.handler, replica, replicaID),
			topic:   r.topic,
			group:   strings.ReplaceAll(r.group, replica, replicaID),
		}, handle: h})
	}
	if len(m.handlers) != len(t.routes) {
		return built{}, fmt.Errorf("%s: %d handlers for %d routes", t.name, len(m.handlers), len(t.routes))
	}
	return b, nil
}

// subscriptions lists each consumer group that cfg's targets share and the
// topics it reads: what setup creates. Per-replica groups are left out
// (each process makes its own at start).
func subscriptions(cfg Config) map[string][]string {
	subs := map[string][]string{}
	for _, t := range targets() {
		if !t.enabled(cfg) {
			continue
		}
		for _, r := range t.routes {
			if !r.perReplica() {
				subs[r.group] = append(subs[r.group], r.topic)
			}
		}
	}
	return subs
}
