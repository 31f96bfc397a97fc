package main

import (
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/schemas"
)

// recordingBus notes each subscription serve makes: subscribe asks for the
// group's subscriber, then for the topic's name.
type recordingBus struct {
	bus.Bus
	group string
	subs  map[string][]string
}

func (b *recordingBus) Subscriber(group string) (message.Subscriber, error) {
	b.group = group
	return b.Bus.Subscriber(group)
}

func (b *recordingBus) Topic(name string) string {
	b.subs[b.group] = append(b.subs[b.group], name)
	return b.Bus.Topic(name)
}

// servedSubs builds cfg's targets the way serve does and returns the
// subscriptions it made, by group.
func servedSubs(t *testing.T, cfg Config, replicaID string) map[string][]string {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	catalog, err := dataset.LoadCatalog(schemas.Files, "datasets", "")
	require.NoError(t, err)
	st, err := openEmbedded(cfg, catalog.Names(), logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	e := &env{cfg: cfg, logger: logger, catalog: catalog, st: st, reg: registry.New(st.docs),
		metrics: prometheus.NewRegistry(), ready: func() bool { return false }}
	mods, err := buildTargets(e, replicaID)
	require.NoError(t, err)
	router, err := bus.NewRouter(bus.RouterConfig{}, st.bus, bus.NewMetrics(prometheus.NewRegistry()), logger)
	require.NoError(t, err)
	rb := &recordingBus{Bus: st.bus, subs: map[string][]string{}}
	_, err = assemble(router, rb, mods)
	require.NoError(t, err)
	return rb.subs
}

func testConfig(t *testing.T, targets string, webhooks bool) Config {
	t.Helper()
	env := map[string]string{"REFIT_DATA_DIR": t.TempDir()}
	if webhooks {
		env["REFIT_WEBHOOKS"], env["REFIT_WEBHOOK_SECRET"] = "http://127.0.0.1:1/hook", "s3cret-s3cret-s3cret"
	}
	cfg, err := loadConfig(func(k string) string { return env[k] }, "embedded", targets)
	require.NoError(t, err)
	return cfg
}

// TestSetupCreatesWhatServeSubscribes: for every target alone, every
// combination and with and without webhooks, the subscriptions setup
// creates are exactly those serve makes in groups replicas share; serve's
// other groups are its own.
func TestSetupCreatesWhatServeSubscribes(t *testing.T) {
	t.Parallel()
	for _, targets := range append(slices.Clone(allTargets), "all", "gateway,train", "version,promote") {
		for _, webhooks := range []bool{false, true} {
			t.Run(targets+map[bool]string{true: "+webhooks"}[webhooks], func(t *testing.T) {
				cfg := testConfig(t, targets, webhooks)
				got := servedSubs(t, cfg, "gateway-test")
				shared := map[string][]string{}
				for group, topics := range got {
					if !strings.HasPrefix(group, "gateway-test") {
						shared[group] = topics
					}
				}
				require.Equal(t, subscriptions(cfg), shared)
				if cfg.has("gateway") {
					require.Equal(t, map[string][]string{
						"gateway-test":        {events.TopicModelPromoted},
						"gateway-test-events": {events.TopicModelPromoted, events.TopicDatasetVersioned},
					}, mapsWithPrefix(got, "gateway-test"))
				} else {
					require.Empty(t, mapsWithPrefix(got, "gateway-test"))
				}
			})
		}
	}
}

func mapsWithPrefix(m map[string][]string, prefix string) map[string][]string {
	out := map[string][]string{}
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

// TestSetupSubscriptions pins what `refit setup` creates, so a change to the
// table is a visible change here.
func TestSetupSubscriptions(t *testing.T) {
	t.Parallel()
	want := map[string][]string{
		"preprocess":   {events.TopicObjectFinalized, events.TopicCorrectionSubmitted},
		"version":      {events.TopicRowsStaged},
		"train":        {events.TopicDatasetVersioned, events.TopicBlobWritten},
		"promote":      {events.TopicModelTrained},
		"dead-letters": {events.TopicDeadLetter},
	}
	require.Equal(t, want, subscriptions(testConfig(t, "all", false)))
	want["webhooks"] = []string{events.TopicModelPromoted}
	require.Equal(t, want, subscriptions(testConfig(t, "all", true)))
	// A gateway alone shares no group: setup has nothing to create for it.
	require.Empty(t, subscriptions(testConfig(t, "gateway", true)))
	// Webhooks go with promote, dead letters with any worker.
	require.Equal(t, map[string][]string{"train": {events.TopicDatasetVersioned, events.TopicBlobWritten}, "dead-letters": {events.TopicDeadLetter}},
		subscriptions(testConfig(t, "train", true)))
}

// TestEveryRouteHasItsHandler: a route without a handler (or a handler
// without a route) is refused at start, naming the target.
func TestEveryRouteHasItsHandler(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "all", true)
	got := servedSubs(t, cfg, "gateway-a")
	other := servedSubs(t, testConfig(t, "gateway", false), "gateway-b")
	// Two replicas: groups of their own, never shared.
	for g := range other {
		require.NotContains(t, got, g)
	}
	st, err := openEmbedded(testConfig(t, "version", false), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	defer st.Close()
	bad := target{name: "broken", enabled: func(Config) bool { return true },
		routes: []route{{"broken", events.TopicRowsStaged, "broken"}},
		build:  func(*env) (*module, error) { return &module{handlers: handlerSet{"other": nil}}, nil }}
	_, err = bindTarget(bad, &env{st: st}, "r")
	require.ErrorContains(t, err, "broken: no handler for route broken")
}
