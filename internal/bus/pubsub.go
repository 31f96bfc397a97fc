package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-googlecloud/v2/pkg/googlecloud"
	"github.com/ThreeDotsLabs/watermill/message"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/refit-ml/refit/events"
)

// GatewayGroupPrefix starts the name of a per-replica group: each gateway
// replica hears every message, and its subscription expires once the
// replica is gone.
const GatewayGroupPrefix = "gateway-"

// PubSubConfig configures the Google Pub/Sub bus.
type PubSubConfig struct {
	Project string
	// TopicPrefix starts every topic and subscription name (default "refit").
	TopicPrefix string
	// Endpoint is an emulator's host:port (plain gRPC, no credentials).
	// Empty: Google's library decides, honouring PUBSUB_EMULATOR_HOST.
	Endpoint string
	// AckDeadline of created subscriptions (10s-600s, default 60s). The
	// subscriber extends leases while a handler runs, so a long training
	// run keeps its message; a crashed one gets it back within this time.
	AckDeadline time.Duration
	// MaxExtension bounds the lease extension of one message (default 2h).
	MaxExtension time.Duration
	// MaxOutstandingMessages one subscriber leases, and so handles
	// concurrently, at once (default 10). More would hoard work the other
	// members of the group could do.
	MaxOutstandingMessages int
	// MaxDeliveryAttempts before Pub/Sub dead-letters a message that keeps
	// crashing its consumer (5-100, default 10).
	MaxDeliveryAttempts int
	// GatewayExpiration deletes a gateway-* subscription idle this long
	// (default and minimum 24h).
	GatewayExpiration time.Duration
	// ObjectTopic receives the bucket's notifications (default
	// TopicPrefix+"-objects").
	ObjectTopic string
}

const (
	maxAttributeValue = 1024 // Pub/Sub's limit, in bytes
	maxResourceName   = 255
	// gatewayRetention is how long a gateway subscription keeps unacked
	// messages. Pub/Sub wants it below the expiration TTL; a replica away
	// longer reloads the served model when it starts anyway.
	gatewayRetention = time.Hour
	// publishTimeKey is the metadata key the adapter's default unmarshaler
	// uses for the publish time.
	publishTimeKey = "publishTime"
)

func (c *PubSubConfig) setDefaults() {
	if c.TopicPrefix == "" {
		c.TopicPrefix = "refit"
	}
	if c.AckDeadline == 0 {
		c.AckDeadline = 60 * time.Second
	}
	if c.MaxExtension == 0 {
		c.MaxExtension = 2 * time.Hour
	}
	if c.MaxOutstandingMessages == 0 {
		c.MaxOutstandingMessages = 10
	}
	if c.MaxDeliveryAttempts == 0 {
		c.MaxDeliveryAttempts = 10
	}
	if c.GatewayExpiration == 0 {
		c.GatewayExpiration = 24 * time.Hour
	}
	if c.ObjectTopic == "" {
		c.ObjectTopic = c.TopicPrefix + "-objects"
	}
}

// ValidAckDeadline: Pub/Sub takes a subscription's ack deadline in whole
// seconds, from 10 to 600.
func ValidAckDeadline(d time.Duration) bool {
	return d >= 10*time.Second && d <= 600*time.Second && d%time.Second == 0
}

// Validate reports a configuration Pub/Sub would refuse. Zero fields
// take their defaults.
func (c PubSubConfig) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Project == "" {
		errs = append(errs, errors.New("project is required"))
	}
	if !validResourceName(c.TopicPrefix + ".x") {
		errs = append(errs, fmt.Errorf("topic prefix %q: must start with a letter and hold only letters, digits and -_.~+%%", c.TopicPrefix))
	}
	if !validResourceName(c.ObjectTopic) {
		errs = append(errs, fmt.Errorf("object topic %q is not a valid Pub/Sub topic name", c.ObjectTopic))
	}
	if !ValidAckDeadline(c.AckDeadline) {
		errs = append(errs, fmt.Errorf("ack deadline %s: must be whole seconds between 10s and 600s", c.AckDeadline))
	}
	if c.MaxExtension < 0 || c.MaxOutstandingMessages < 0 {
		errs = append(errs, errors.New("max extension and max outstanding messages must not be negative"))
	}
	if c.MaxDeliveryAttempts < 5 || c.MaxDeliveryAttempts > 100 {
		errs = append(errs, fmt.Errorf("max delivery attempts %d: must be between 5 and 100", c.MaxDeliveryAttempts))
	}
	if c.GatewayExpiration < 24*time.Hour {
		errs = append(errs, fmt.Errorf("gateway expiration %s: Pub/Sub's minimum is 24h", c.GatewayExpiration))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bus: pubsub config: %w", err)
	}
	return nil
}

// validResourceName: Pub/Sub topic and subscription IDs.
func validResourceName(s string) bool {
	if len(s) < 3 || len(s) > maxResourceName || strings.HasPrefix(strings.ToLower(s), "goog") {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i == 0:
			return false
		case r >= '0' && r <= '9', strings.ContainsRune("-_.~+%", r):
		default:
			return false
		}
	}
	return true
}

// validGroup: group names sit between dots in subscription names, so they
// hold no dots themselves.
func validGroup(g string) bool {
	if g == "" {
		return false
	}
	for _, r := range g {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// PubSub is the bus on Google Pub/Sub. Topics are <prefix>.<event topic>
// (bucket notifications arrive on ObjectTopic); a consumer group is one
// subscription per topic, <prefix>.<group>.<topic suffix>, shared by the
// group's members.
type PubSub struct {
	cfg    PubSubConfig
	logger *slog.Logger
	wm     watermill.LoggerAdapter
	opts   []option.ClientOption
	admin  *pubsub.Client
	pub    *googlecloud.Publisher

	mu     sync.Mutex
	subs   []*googlecloud.Subscriber
	closed bool
}

var _ Bus = (*PubSub)(nil)

// NewPubSub connects to Pub/Sub. opts are passed to every client, after
// the ones Endpoint implies.
func NewPubSub(ctx context.Context, cfg PubSubConfig, logger *slog.Logger, opts ...option.ClientOption) (*PubSub, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Endpoint != "" {
		opts = append([]option.ClientOption{
			option.WithEndpoint(cfg.Endpoint),
			option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		}, opts...)
	}
	admin, err := pubsub.NewClient(ctx, cfg.Project, opts...)
	if err != nil {
		return nil, fmt.Errorf("bus: pubsub client: %w", err)
	}
	wm := watermill.NewSlogLogger(logger)
	// Each publish waits for its acknowledgement (an event is durable
	// before the handler that caused it acks), so the client's default 10 ms
	// batching delay would be added to every step of the pipeline.
	settings := pubsub.DefaultPublishSettings
	settings.DelayThreshold = time.Millisecond
	pub, err := googlecloud.NewPublisher(googlecloud.PublisherConfig{
		ProjectID:       cfg.Project,
		ClientOptions:   opts,
		Marshaler:       attributeMarshaler{},
		PublishSettings: &settings,
	}, wm)
	if err != nil {
		_ = admin.Close()
		return nil, fmt.Errorf("bus: pubsub publisher: %w", err)
	}
	return &PubSub{cfg: cfg, logger: logger, wm: wm, opts: opts, admin: admin, pub: pub}, nil
}

// Topic maps an event topic to its Pub/Sub topic ID.
func (b *PubSub) Topic(name string) string {
	if name == events.TopicObjectFinalized {
		return b.cfg.ObjectTopic
	}
	return b.cfg.TopicPrefix + "." + name
}

// SubscriptionName is the subscription ID of group on topic (a name
// Topic returned), e.g. for a backlog-based autoscaler.
func (b *PubSub) SubscriptionName(group, topic string) string {
	return b.cfg.TopicPrefix + "." + group + "." + strings.TrimPrefix(topic, b.cfg.TopicPrefix+".")
}

func (b *PubSub) Publisher() message.Publisher { return b.pub }

// Subscriber reads as a member of group. Subscribing creates the
// subscription (and its topics) if missing, with the policies Setup gives.
func (b *PubSub) Subscriber(group string) (message.Subscriber, error) {
	if !validGroup(group) {
		return nil, fmt.Errorf("bus: group %q: use letters, digits, - and _", group)
	}
	settings := pubsub.ReceiveSettings{
		MaxExtension: b.cfg.MaxExtension,
		// Extending by one ack deadline at a time bounds how long a dead
		// consumer's message stays leased.
		MaxDurationPerAckExtension: b.cfg.AckDeadline,
		MaxOutstandingMessages:     b.cfg.MaxOutstandingMessages,
		NumGoroutines:              1,
	}
	newSub := func(u googlecloud.Unmarshaler) (*googlecloud.Subscriber, error) {
		return googlecloud.NewSubscriber(googlecloud.SubscriberConfig{
			ProjectID:                        b.cfg.Project,
			GenerateSubscriptionName:         func(topic string) string { return b.SubscriptionName(group, topic) },
			DoNotCreateSubscriptionIfMissing: true, // ensureSubscription made it, with our policies
			ReceiveSettings:                  settings,
			ClientOptions:                    b.opts,
			Unmarshaler:                      u,
		}, b.wm)
	}
	evs, err := newSub(googlecloud.DefaultMarshalerUnmarshaler{})
	if err != nil {
		return nil, err
	}
	objs, err := newSub(objectUnmarshaler{})
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errors.New("bus: pubsub bus is closed")
	}
	b.subs = append(b.subs, evs, objs)
	return &groupSubscriber{b: b, group: group, events: evs, objects: objs}, nil
}

// Close stops the subscribers and the publisher.
func (b *PubSub) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := b.subs
	b.subs = nil
	b.mu.Unlock()

	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Close())
	}
	errs = append(errs, b.pub.Close(), b.admin.Close())
	return errors.Join(errs...)
}

// Setup creates, if missing, every topic Refit uses and a subscription for
// each group and event topic (events.Topic* names) in groups. It reports
// the full resource names of what it created and of what already existed.
// Existing subscriptions are left as they are.
//
// On Google Cloud, dead-lettering also needs the Pub/Sub service agent
// (service-<project number>@gcp-sa-pubsub.iam.gserviceaccount.com) to hold
// roles/pubsub.publisher on the dead-letter topic and
// roles/pubsub.subscriber on each subscription.
func (b *PubSub) Setup(ctx context.Context, groups map[string][]string) (created, found []string, err error) {
	report := func(path string, isNew bool) {
		if isNew {
			created = append(created, path)
		} else {
			found = append(found, path)
		}
	}
	for _, t := range b.topics() {
		isNew, err := b.ensureTopic(ctx, t)
		if err != nil {
			return created, found, err
		}
		report(b.topicPath(t), isNew)
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	slices.Sort(names)
	for _, g := range names {
		if !validGroup(g) {
			return created, found, fmt.Errorf("bus: group %q: use letters, digits, - and _", g)
		}
		for _, t := range groups[g] {
			topic := b.Topic(t)
			isNew, err := b.ensureSubscription(ctx, g, topic)
			if err != nil {
				return created, found, err
			}
			report(b.subscriptionPath(b.SubscriptionName(g, topic)), isNew)
		}
	}
	return created, found, nil
}

// topics lists every topic, the dead-letter topic first: subscriptions'
// policies name it.
func (b *PubSub) topics() []string {
	return []string{
		b.Topic(events.TopicDeadLetter),
		b.Topic(events.TopicObjectFinalized),
		b.Topic(events.TopicCorrectionSubmitted),
		b.Topic(events.TopicRowsStaged),
		b.Topic(events.TopicDatasetVersioned),
		b.Topic(events.TopicBlobWritten),
		b.Topic(events.TopicModelTrained),
		b.Topic(events.TopicModelPromoted),
	}
}

func (b *PubSub) topicPath(id string) string { return "projects/" + b.cfg.Project + "/topics/" + id }
func (b *PubSub) subscriptionPath(id string) string {
	return "projects/" + b.cfg.Project + "/subscriptions/" + id
}

// ensureTopic creates topic unless it exists; created reports which.
func (b *PubSub) ensureTopic(ctx context.Context, topic string) (created bool, err error) {
	if !validResourceName(topic) {
		return false, fmt.Errorf("bus: %q is not a valid Pub/Sub topic name", topic)
	}
	path := b.topicPath(topic)
	_, err = b.admin.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: path})
	if err == nil {
		return false, nil
	}
	if status.Code(err) != codes.NotFound {
		return false, fmt.Errorf("bus: get topic %s: %w", topic, err)
	}
	_, err = b.admin.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: path})
	switch status.Code(err) {
	case codes.OK:
		return true, nil
	case codes.AlreadyExists: // another replica was faster
		return false, nil
	default:
		return false, fmt.Errorf("bus: create topic %s: %w", topic, err)
	}
}

// ensureSubscription creates group's subscription to topic unless it
// exists, and the topics it needs first.
func (b *PubSub) ensureSubscription(ctx context.Context, group, topic string) (created bool, err error) {
	id := b.SubscriptionName(group, topic)
	if !validResourceName(id) {
		return false, fmt.Errorf("bus: %q is not a valid Pub/Sub subscription name (at most %d characters)", id, maxResourceName)
	}
	path := b.subscriptionPath(id)
	_, err = b.admin.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: path})
	if err == nil {
		return false, nil
	}
	if status.Code(err) != codes.NotFound {
		return false, fmt.Errorf("bus: get subscription %s: %w", id, err)
	}
	if _, err := b.ensureTopic(ctx, topic); err != nil {
		return false, err
	}
	sub := &pubsubpb.Subscription{
		Name:               path,
		Topic:              b.topicPath(topic),
		AckDeadlineSeconds: int32(b.cfg.AckDeadline / time.Second),
		// Redelivery after a nack or crash waits, instead of looping hot.
		RetryPolicy: &pubsubpb.RetryPolicy{MinimumBackoff: durationpb.New(10 * time.Second), MaximumBackoff: durationpb.New(10 * time.Minute)},
		// Set without a TTL: never expires. Unset, Pub/Sub would delete a
		// consumer group's subscription after 31 idle days.
		ExpirationPolicy: &pubsubpb.ExpirationPolicy{},
	}
	// Dead letters are not dead-lettered again.
	if dl := b.Topic(events.TopicDeadLetter); topic != dl {
		if _, err := b.ensureTopic(ctx, dl); err != nil {
			return false, err
		}
		sub.DeadLetterPolicy = &pubsubpb.DeadLetterPolicy{
			DeadLetterTopic:     b.topicPath(dl),
			MaxDeliveryAttempts: int32(b.cfg.MaxDeliveryAttempts),
		}
	}
	if strings.HasPrefix(group, GatewayGroupPrefix) {
		sub.ExpirationPolicy = &pubsubpb.ExpirationPolicy{Ttl: durationpb.New(b.cfg.GatewayExpiration)}
		sub.MessageRetentionDuration = durationpb.New(gatewayRetention)
	}
	_, err = b.admin.SubscriptionAdminClient.CreateSubscription(ctx, sub)
	switch status.Code(err) {
	case codes.OK:
		b.logger.Info("created subscription", "subscription", id, "topic", topic)
		return true, nil
	case codes.AlreadyExists: // another member of the group was faster
		return false, nil
	default:
		return false, fmt.Errorf("bus: create subscription %s: %w", id, err)
	}
}

// groupSubscriber is one member of a consumer group. Bucket notifications
// need their own unmarshaler, and the adapter's is per subscriber: it
// holds one subscriber for them and one for Refit's events.
type groupSubscriber struct {
	b       *PubSub
	group   string
	events  *googlecloud.Subscriber
	objects *googlecloud.Subscriber
}

var _ message.Subscriber = (*groupSubscriber)(nil)

func (s *groupSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := s.b.ensureSubscription(setupCtx, s.group, topic); err != nil {
		return nil, err
	}
	if topic == s.b.cfg.ObjectTopic {
		return s.objects.Subscribe(ctx, topic)
	}
	return s.events.Subscribe(ctx, topic)
}

func (s *groupSubscriber) Close() error {
	return errors.Join(s.events.Close(), s.objects.Close())
}

// attributeMarshaler publishes the metadata as plain attributes, as the
// adapter's default does (so the CloudEvents ce-* attributes reach any
// Pub/Sub client), and clips values to Pub/Sub's limit: a dead letter's
// reason can hold a stack trace, and an oversized attribute would fail the
// dead-letter publish itself.
type attributeMarshaler struct{}

func (attributeMarshaler) Marshal(topic string, msg *message.Message) (*pubsub.Message, error) {
	m, err := googlecloud.DefaultMarshalerUnmarshaler{}.Marshal(topic, msg)
	if err != nil {
		return nil, err
	}
	for k, v := range m.Attributes {
		if len(v) > maxAttributeValue {
			m.Attributes[k] = clip(v)
		}
	}
	return m, nil
}

func clip(v string) string {
	const marker = "…"
	n := maxAttributeValue - len(marker)
	for n > 0 && !utf8.RuneStart(v[n]) {
		n--
	}
	return v[:n] + marker
}

// objectUnmarshaler reads bucket notifications. GCS sets no Watermill
// UUID, and may notify twice under different message IDs, so the UUID is
// the object generation's key. Everything else is copied as is; a
// notification that is not an upload still decodes, and its handler
// decides to ignore it.
type objectUnmarshaler struct{}

func (objectUnmarshaler) Unmarshal(m *pubsub.Message) (*message.Message, error) {
	md := make(message.Metadata, len(m.Attributes)+3)
	for k, v := range m.Attributes {
		md[k] = v
	}
	uuid := md[googlecloud.UUIDHeaderKey]
	delete(md, googlecloud.UUIDHeaderKey)
	if key, ok := objectKey(m.Attributes); ok {
		uuid = key
	}
	if uuid == "" {
		uuid = m.ID // not a notification: events.Decode will reject it
	}
	if md.Get(events.AttrCorrelationID) == "" {
		md.Set(events.AttrCorrelationID, uuid)
	}
	md.Set(publishTimeKey, m.PublishTime.String())
	md.Set(googlecloud.GoogleMessageIDHeaderKey, m.ID)
	msg := message.NewMessage(uuid, m.Data)
	msg.Metadata = md
	return msg, nil
}

func objectKey(attrs map[string]string) (string, bool) {
	bucket, name := attrs[events.AttrBucketID], attrs[events.AttrObjectID]
	gen, err := strconv.ParseInt(attrs[events.AttrObjectGeneration], 10, 64)
	if bucket == "" || name == "" || err != nil {
		return "", false
	}
	return events.ObjectKey(bucket, name, gen), true
}
