package bus_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/ThreeDotsLabs/watermill-googlecloud/v2/pkg/googlecloud"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/bus/bustest"
	"github.com/refit-ml/refit/internal/testenv"
)

// TestPubSub runs the same tests against pstest (in-process) and Google's
// emulator (one per run; tests are isolated by project ID).
func TestPubSub(t *testing.T) {
	backends := []struct {
		name  string
		start func(t *testing.T) string
		// The emulator honours the subscriptions' 10s minimum retry
		// backoff, so dead-lettering by delivery attempts takes a minute
		// there; pstest redelivers at once.
		fastRedelivery bool
	}{
		{"pstest", func(t *testing.T) string {
			srv := pstest.NewServer()
			t.Cleanup(func() { _ = srv.Close() })
			return srv.Addr
		}, true},
		{"emulator", func(t *testing.T) string { return testenv.StartPubSubEmulator(t) }, false},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			env := pubsubEnv{endpoint: be.start(t), fastRedelivery: be.fastRedelivery}
			t.Run("Conformance", env.testConformance)
			t.Run("ObjectNotifications", env.testObjectNotifications)
			t.Run("SetupIsIdempotent", env.testSetup)
			t.Run("CloudEventsAttributes", env.testCloudEventsAttributes)
			t.Run("LongAttributesClipped", env.testLongAttributes)
			if env.fastRedelivery {
				t.Run("CrashingConsumerDeadLetters", env.testCrashDeadLetters)
			}
		})
	}
}

type pubsubEnv struct {
	endpoint       string
	fastRedelivery bool
}

// project isolates a test: one Pub/Sub project per test name.
func (env pubsubEnv) project(t *testing.T) string {
	sum := sha256.Sum256([]byte(t.Name()))
	return "refit-test-" + hex.EncodeToString(sum[:6])
}

func (env pubsubEnv) newBus(t *testing.T, cfg bus.PubSubConfig) *bus.PubSub {
	t.Helper()
	if cfg.Project == "" {
		cfg.Project = env.project(t)
	}
	cfg.Endpoint = env.endpoint
	b, err := bus.NewPubSub(context.Background(), cfg, quiet())
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// rawClient is a plain Pub/Sub client: what a consumer without Refit's
// code sees.
func (env pubsubEnv) rawClient(t *testing.T, project string) *pubsub.Client {
	t.Helper()
	c, err := pubsub.NewClient(context.Background(), project,
		option.WithEndpoint(env.endpoint), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (env pubsubEnv) testConformance(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bus.Bus { return env.newBus(t, bus.PubSubConfig{}) }, bustest.Features{
		SharedGroups: true,
		Prepare: func(t *testing.T, b bus.Bus, _ ...string) {
			_, _, err := b.(*bus.PubSub).Setup(context.Background(), nil)
			require.NoError(t, err)
		},
	})
}

// runRouter runs a router with the handlers add registers until the test
// ends.
func runRouter(t *testing.T, b bus.Bus, add func(r *message.Router)) {
	t.Helper()
	r, err := bus.NewRouter(bus.RouterConfig{Retries: 1, CloseTimeout: 5 * time.Second}, b, bus.NewMetrics(prometheus.NewRegistry()), quiet())
	require.NoError(t, err)
	add(r)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	select {
	case <-r.Running():
	case <-time.After(30 * time.Second):
		t.Fatal("router did not start")
	}
}

// gcsNotification is what Cloud Storage publishes (payload format
// JSON_API_V1): identity in attributes, the object resource as the data,
// int64 fields as strings.
func gcsNotification(t *testing.T, eventType, bucket, name string, generation int64) *pubsub.Message {
	t.Helper()
	golden, err := os.ReadFile("../../events/testdata/object.finalized.json")
	require.NoError(t, err)
	var obj map[string]any
	require.NoError(t, json.Unmarshal(golden, &obj))
	gen := strconv.FormatInt(generation, 10)
	obj["bucket"], obj["name"], obj["generation"] = bucket, name, gen
	obj["id"] = bucket + "/" + name + "/" + gen
	obj["metageneration"] = "1"
	data, err := json.Marshal(obj)
	require.NoError(t, err)
	return &pubsub.Message{Data: data, Attributes: map[string]string{
		"eventType":          eventType,
		"bucketId":           bucket,
		"objectId":           name,
		"objectGeneration":   gen,
		"eventTime":          "2026-11-23T10:14:58.612345Z",
		"payloadFormat":      "JSON_API_V1",
		"notificationConfig": "projects/_/buckets/" + bucket + "/notificationConfigs/1",
	}}
}

type received struct {
	uuid, messageID string
	event           *events.ObjectFinalized
}

func (env pubsubEnv) testObjectNotifications(t *testing.T) {
	ctx := context.Background()
	project := env.project(t)
	b := env.newBus(t, bus.PubSubConfig{Project: project})
	got := make(chan received, 16)
	runRouter(t, b, func(r *message.Router) {
		sub, err := b.Subscriber("preprocess")
		require.NoError(t, err)
		r.AddConsumerHandler("objects", b.Topic(events.TopicObjectFinalized), sub, func(m *message.Message) error {
			return bus.Handle(func(ctx context.Context, e *events.ObjectFinalized) error {
				got <- received{uuid: m.UUID, messageID: m.Metadata.Get(googlecloud.GoogleMessageIDHeaderKey), event: e}
				return nil
			})(m)
		})
	})
	raw := env.rawClient(t, project).Publisher(b.Topic(events.TopicObjectFinalized))
	t.Cleanup(raw.Stop)
	publish := func(m *pubsub.Message) string {
		id, err := raw.Publish(ctx, m).Get(ctx)
		require.NoError(t, err)
		return id
	}
	// next returns the next event about object name, skipping
	// redeliveries of earlier ones.
	next := func(name string) received {
		t.Helper()
		for {
			select {
			case r := <-got:
				if r.event.Name == name {
					return r
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("no event for %s", name)
			}
		}
	}

	t.Run("FinalizeDecodes", func(t *testing.T) {
		publish(gcsNotification(t, "OBJECT_FINALIZE", "refit-data", "incoming/housing/houses.csv", 1700000000000000))
		r := next("incoming/housing/houses.csv")
		require.Equal(t, "gs://refit-data/incoming/housing/houses.csv#1700000000000000", r.event.ID)
		require.Equal(t, r.event.ID, r.uuid)
		require.Equal(t, "OBJECT_FINALIZE", r.event.EventType)
		require.Equal(t, "housing", r.event.Dataset)
		require.Equal(t, int64(52311), r.event.Size)
		require.Equal(t, int64(1700000000000000), r.event.Generation)
		require.Equal(t, time.Date(2026, 11, 23, 10, 14, 58, 612345000, time.UTC), r.event.Time)
	})
	t.Run("DuplicatesShareTheEventID", func(t *testing.T) {
		const name = "incoming/housing/twice.csv"
		published := map[string]bool{}
		for range 3 {
			published[publish(gcsNotification(t, "OBJECT_FINALIZE", "refit-data", name, 42))] = true
		}
		require.Len(t, published, 3, "the server gives each publish its own message ID")
		delivered := map[string]bool{}
		for range 3 {
			r := next(name)
			require.Equal(t, "gs://refit-data/"+name+"#42", r.event.ID)
			require.Equal(t, r.event.ID, r.uuid)
			delivered[r.messageID] = true
		}
		require.Equal(t, published, delivered)
	})
	t.Run("DeleteDecodes", func(t *testing.T) {
		publish(gcsNotification(t, "OBJECT_DELETE", "refit-data", "incoming/housing/gone.csv", 7))
		r := next("incoming/housing/gone.csv")
		require.Equal(t, "OBJECT_DELETE", r.event.EventType)
		require.Equal(t, "gs://refit-data/incoming/housing/gone.csv#7", r.event.ID)
	})
	t.Run("OutsideIncomingDecodes", func(t *testing.T) {
		publish(gcsNotification(t, "OBJECT_FINALIZE", "refit-data", "models/m.bin", 9))
		r := next("models/m.bin")
		require.Empty(t, r.event.Dataset)
		require.Equal(t, "gs://refit-data/models/m.bin#9", r.event.ID)
	})
}

func (env pubsubEnv) testSetup(t *testing.T) {
	ctx := context.Background()
	project := env.project(t)
	b := env.newBus(t, bus.PubSubConfig{Project: project, TopicPrefix: "rf"})
	groups := map[string][]string{
		"preprocess": {events.TopicObjectFinalized, events.TopicCorrectionSubmitted},
		"gateway-r1": {events.TopicModelPromoted},
		"audit":      {events.TopicDeadLetter},
	}
	created, found, err := b.Setup(ctx, groups)
	require.NoError(t, err)
	require.Empty(t, found)
	topic := func(id string) string { return "projects/" + project + "/topics/" + id }
	sub := func(id string) string { return "projects/" + project + "/subscriptions/" + id }
	require.ElementsMatch(t, []string{
		topic("rf.dead-letter"), topic("rf-objects"), topic("rf.correction.submitted"), topic("rf.rows.staged"),
		topic("rf.dataset.versioned"), topic("rf.blob.written"), topic("rf.model.trained"), topic("rf.model.promoted"),
		sub("rf.preprocess.rf-objects"), sub("rf.preprocess.correction.submitted"),
		sub("rf.gateway-r1.model.promoted"), sub("rf.audit.dead-letter"),
	}, created)

	again, found, err := b.Setup(ctx, groups)
	require.NoError(t, err)
	require.Empty(t, again)
	require.ElementsMatch(t, created, found)

	admin := env.rawClient(t, project).SubscriptionAdminClient
	get := func(id string) *pubsubpb.Subscription {
		s, err := admin.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: sub(id)})
		require.NoError(t, err)
		return s
	}
	for _, id := range []string{"rf.preprocess.rf-objects", "rf.preprocess.correction.submitted", "rf.gateway-r1.model.promoted"} {
		s := get(id)
		require.Equal(t, int32(60), s.AckDeadlineSeconds, id)
		require.NotNil(t, s.DeadLetterPolicy, id)
		require.Equal(t, topic("rf.dead-letter"), s.DeadLetterPolicy.DeadLetterTopic, id)
		require.Equal(t, int32(10), s.DeadLetterPolicy.MaxDeliveryAttempts, id)
	}
	require.Equal(t, topic("rf-objects"), get("rf.preprocess.rf-objects").Topic)
	never := get("rf.preprocess.correction.submitted").ExpirationPolicy
	require.NotNil(t, never, "unset, Pub/Sub expires the subscription after 31 idle days")
	require.Nil(t, never.Ttl, "consumer groups never expire")
	gw := get("rf.gateway-r1.model.promoted")
	require.Equal(t, 24*time.Hour, gw.GetExpirationPolicy().GetTtl().AsDuration())
	require.Less(t, gw.GetMessageRetentionDuration().AsDuration(), 24*time.Hour)
	require.Nil(t, get("rf.audit.dead-letter").DeadLetterPolicy, "dead letters are not dead-lettered again")
}

func (env pubsubEnv) testCloudEventsAttributes(t *testing.T) {
	ctx := context.Background()
	project := env.project(t)
	b := env.newBus(t, bus.PubSubConfig{Project: project})
	_, _, err := b.Setup(ctx, nil)
	require.NoError(t, err)
	raw := env.rawClient(t, project)
	subID := "plain-reader"
	_, err = raw.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:  "projects/" + project + "/subscriptions/" + subID,
		Topic: "projects/" + project + "/topics/" + b.Topic(events.TopicModelPromoted),
	})
	require.NoError(t, err)

	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	e := &events.ModelPromoted{Meta: events.Meta{ID: "housing/promotion/3", Dataset: "housing", Time: now, CorrelationID: "upload-1"},
		Sequence: 3, ModelID: "0123456789abcdef", Spec: "linear", Actor: "auto", Reason: "better", PromotedAt: now}
	require.NoError(t, bus.NewEventPublisher(b, "refit/promote").Publish(ctx, e))

	m := pullOne(t, raw, subID)
	require.Equal(t, "1.0", m.Attributes["ce-specversion"])
	require.Equal(t, "dev.refit.model.promoted.v1", m.Attributes["ce-type"])
	require.Equal(t, "refit/promote", m.Attributes["ce-source"])
	require.Equal(t, "housing/promotion/3", m.Attributes["ce-id"])
	require.Equal(t, "2026-11-23T10:00:00Z", m.Attributes["ce-time"])
	require.Equal(t, "housing", m.Attributes["ce-subject"])
	require.Equal(t, "application/json", m.Attributes["content-type"])
	require.Equal(t, "upload-1", m.Attributes["correlation_id"])
	var body map[string]any
	require.NoError(t, json.Unmarshal(m.Data, &body))
	require.Equal(t, "housing/promotion/3", body["id"])
	require.EqualValues(t, 3, body["sequence"])
}

// pullOne receives and acks one message with the plain client.
func pullOne(t *testing.T, c *pubsub.Client, subID string) *pubsub.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan *pubsub.Message, 1)
	err := c.Subscriber(subID).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		select {
		case got <- m:
			cancel()
		default:
		}
	})
	require.NoError(t, err)
	select {
	case m := <-got:
		return m
	default:
		t.Fatal("no message received")
		return nil
	}
}

// A dead letter's reason can hold a stack trace; Pub/Sub takes 1024 bytes
// per attribute value.
func (env pubsubEnv) testLongAttributes(t *testing.T) {
	ctx := context.Background()
	project := env.project(t)
	b := env.newBus(t, bus.PubSubConfig{Project: project})
	_, _, err := b.Setup(ctx, nil)
	require.NoError(t, err)
	raw := env.rawClient(t, project)
	_, err = raw.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:  "projects/" + project + "/subscriptions/long-reader",
		Topic: "projects/" + project + "/topics/" + b.Topic(events.TopicDeadLetter),
	})
	require.NoError(t, err)

	msg := message.NewMessage("long", []byte("{}"))
	msg.Metadata.Set("reason_poisoned", strings.Repeat("é", 1000)) // 2000 bytes
	require.NoError(t, b.Publisher().Publish(b.Topic(events.TopicDeadLetter), msg))

	reason := pullOne(t, raw, "long-reader").Attributes["reason_poisoned"]
	require.LessOrEqual(t, len(reason), 1024)
	require.Greater(t, len(reason), 1000)
	require.True(t, utf8.ValidString(reason))
	require.True(t, strings.HasPrefix(reason, "éé"))
	require.True(t, strings.HasSuffix(reason, "…"))
}

// A consumer that never acks (it crashes, or its lease runs out) gets the
// message again until the subscription's dead-letter policy moves it.
func (env pubsubEnv) testCrashDeadLetters(t *testing.T) {
	ctx := context.Background()
	project := env.project(t)
	b := env.newBus(t, bus.PubSubConfig{Project: project, MaxDeliveryAttempts: 5})
	_, _, err := b.Setup(ctx, map[string][]string{"train": {events.TopicDatasetVersioned}, "audit": {events.TopicDeadLetter}})
	require.NoError(t, err)
	e := &events.DatasetVersioned{Meta: events.Meta{ID: "housing/v7", Dataset: "housing"}, Version: 7}
	require.NoError(t, bus.NewEventPublisher(b, "refit/version").Publish(ctx, e))

	raw := env.rawClient(t, project)
	var attempts atomic.Int32
	crashCtx, stop := context.WithCancel(ctx)
	defer stop()
	crashed := make(chan error, 1)
	go func() {
		crashed <- raw.Subscriber(b.SubscriptionName("train", b.Topic(events.TopicDatasetVersioned))).Receive(crashCtx, func(_ context.Context, m *pubsub.Message) {
			attempts.Add(1)
			m.Nack()
		})
	}()
	m := pullOne(t, raw, b.SubscriptionName("audit", b.Topic(events.TopicDeadLetter)))
	stop()
	require.NoError(t, <-crashed)
	require.Equal(t, "housing/v7", m.Attributes["ce-id"])
	require.GreaterOrEqual(t, attempts.Load(), int32(5))
}

// Without an Endpoint the client library honours PUBSUB_EMULATOR_HOST.
func TestPubSubEmulatorHostVariable(t *testing.T) {
	srv := pstest.NewServer()
	t.Cleanup(func() { _ = srv.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr)
	b, err := bus.NewPubSub(context.Background(), bus.PubSubConfig{Project: "env-project"}, quiet())
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	created, _, err := b.Setup(context.Background(), map[string][]string{"train": {events.TopicDatasetVersioned}})
	require.NoError(t, err)
	require.Contains(t, created, "projects/env-project/subscriptions/refit.train.dataset.versioned")
	require.Len(t, srv.Messages(), 0)
}

func TestPubSubNames(t *testing.T) {
	b, err := bus.NewPubSub(context.Background(), bus.PubSubConfig{Project: "p", Endpoint: "127.0.0.1:1"}, quiet())
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	tests := []struct{ topic, want string }{
		{events.TopicRowsStaged, "refit.rows.staged"},
		{events.TopicModelPromoted, "refit.model.promoted"},
		{events.TopicDeadLetter, "refit.dead-letter"},
		{events.TopicObjectFinalized, "refit-objects"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, b.Topic(tt.topic))
	}
	require.Equal(t, "refit.preprocess.refit-objects", b.SubscriptionName("preprocess", b.Topic(events.TopicObjectFinalized)))
	require.Equal(t, "refit.gateway-1a2b.model.promoted", b.SubscriptionName("gateway-1a2b", b.Topic(events.TopicModelPromoted)))
	for _, group := range []string{"", "a.b", "with space", "ü"} {
		_, err := b.Subscriber(group)
		require.Error(t, err, "group %q", group)
	}
}

func TestPubSubConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  bus.PubSubConfig
		ok   bool
	}{
		{"defaults", bus.PubSubConfig{Project: "p"}, true},
		{"no project", bus.PubSubConfig{}, false},
		{"prefix starts with a digit", bus.PubSubConfig{Project: "p", TopicPrefix: "1refit"}, false},
		{"prefix starts with goog", bus.PubSubConfig{Project: "p", TopicPrefix: "google"}, false},
		{"object topic too short", bus.PubSubConfig{Project: "p", ObjectTopic: "ob"}, false},
		{"ack deadline too short", bus.PubSubConfig{Project: "p", AckDeadline: 5 * time.Second}, false},
		{"ack deadline too long", bus.PubSubConfig{Project: "p", AckDeadline: 11 * time.Minute}, false},
		{"ack deadline not whole seconds", bus.PubSubConfig{Project: "p", AckDeadline: 10500 * time.Millisecond}, false},
		{"too few delivery attempts", bus.PubSubConfig{Project: "p", MaxDeliveryAttempts: 4}, false},
		{"too many delivery attempts", bus.PubSubConfig{Project: "p", MaxDeliveryAttempts: 101}, false},
		{"gateway expiration under a day", bus.PubSubConfig{Project: "p", GatewayExpiration: time.Hour}, false},
		{"everything set", bus.PubSubConfig{Project: "p", TopicPrefix: "refit-prod", AckDeadline: 600 * time.Second,
			MaxDeliveryAttempts: 5, GatewayExpiration: 48 * time.Hour, ObjectTopic: "bucket-events"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			require.Equal(t, tt.ok, err == nil, "%v", err)
			if !tt.ok {
				_, err := bus.NewPubSub(context.Background(), tt.cfg, quiet())
				require.Error(t, err)
			}
		})
	}
}
