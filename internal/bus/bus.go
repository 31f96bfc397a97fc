// Package bus carries Refit's events: the publisher workers use, the
// subscribers they read from, and the Watermill router with the middleware
// every worker runs under (recoverer, bounded retry with backoff, dead
// letter with the reason, correlation ID, metrics).
//
// Implementations of Bus: InProcess (Watermill's gochannel, the embedded
// default) and PubSub (Google Pub/Sub). Both pass bustest.Run.
package bus

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/refit-ml/refit/events"
)

// Bus connects publishers and subscribers.
type Bus interface {
	// Topic maps an event topic (events.Topic*) to the bus's topic name.
	Topic(name string) string
	Publisher() message.Publisher
	// Subscriber reads as a member of a consumer group: the members of a
	// group share the messages; every group gets every message.
	Subscriber(group string) (message.Subscriber, error)
	Close() error
}

// InProcess is the embedded bus: Go channels inside one process. Messages
// are not durable; the reconcile passes recover work lost in a crash.
type InProcess struct {
	ch *gochannel.GoChannel
}

var _ Bus = (*InProcess)(nil)

// NewInProcess makes an in-process bus.
func NewInProcess(logger *slog.Logger) *InProcess {
	return &InProcess{ch: gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 1024}, watermill.NewSlogLogger(logger))}
}

func (b *InProcess) Topic(name string) string     { return name }
func (b *InProcess) Publisher() message.Publisher { return b.ch }

// Subscriber ignores the group: in one process each group has one member,
// and gochannel gives every subscriber every message.
func (b *InProcess) Subscriber(string) (message.Subscriber, error) { return b.ch, nil }
func (b *InProcess) Close() error                                  { return b.ch.Close() }

// EventPublisher publishes typed events. Workers depend on its one method.
type EventPublisher struct {
	bus    Bus
	source string
}

// NewEventPublisher publishes as source (the CloudEvents ce-source).
func NewEventPublisher(b Bus, source string) *EventPublisher {
	return &EventPublisher{bus: b, source: source}
}

// Publish encodes and sends one event.
func (p *EventPublisher) Publish(ctx context.Context, e events.Event) error {
	msg, err := events.Encode(e, p.source)
	if err != nil {
		return err
	}
	msg.SetContext(ctx)
	if err := p.bus.Publisher().Publish(p.bus.Topic(e.Topic()), msg); err != nil {
		return fmt.Errorf("publish %s: %w", e.Topic(), err)
	}
	return nil
}

// Handle adapts a typed event handler to Watermill. An undecodable message
// is a permanent failure.
func Handle[E any, PE interface {
	*E
	events.Event
}](fn func(ctx context.Context, e PE) error) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		e := PE(new(E))
		if err := events.Decode(msg, e); err != nil {
			return Permanent(err)
		}
		return fn(msg.Context(), e)
	}
}
