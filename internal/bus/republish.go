package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/refit-ml/refit/events"
)

// replayable are the event topics a dead letter may be replayed on (never
// the dead-letter topic itself).
func replayable() []string {
	return []string{events.TopicObjectFinalized, events.TopicCorrectionSubmitted, events.TopicRowsStaged,
		events.TopicDatasetVersioned, events.TopicBlobWritten, events.TopicModelTrained, events.TopicModelPromoted}
}

// Republish sends a dead letter's message again on topic (the bus's topic
// name, as the dead letter recorded it) with its payload and metadata,
// less the poison queue's, under a new message ID: if it fails again it
// is a new dead letter. ReplayOfKey in its metadata names the original.
// It returns the new message's ID.
func (p *EventPublisher) Republish(ctx context.Context, topic string, payload []byte, metadata map[string]string, replayOf string) (string, error) {
	ok := false
	for _, t := range replayable() {
		ok = ok || p.bus.Topic(t) == topic
	}
	if !ok {
		return "", fmt.Errorf("%w: topic %q is not an event topic of this bus", ErrNotReplayable, topic)
	}
	msg := message.NewMessage(watermill.NewUUID(), payload)
	for k, v := range metadata {
		switch k {
		case middleware.PoisonedTopicKey, middleware.PoisonedHandlerKey, middleware.PoisonedSubscriberKey, middleware.ReasonForPoisonedKey:
		default:
			msg.Metadata.Set(k, v)
		}
	}
	msg.Metadata.Set(ReplayOfKey, replayOf)
	msg.SetContext(ctx)
	if err := p.bus.Publisher().Publish(topic, msg); err != nil {
		return "", fmt.Errorf("republish on %s: %w", topic, err)
	}
	return msg.UUID, nil
}

// ReplayOfKey is the metadata key naming the dead letter a message replays.
const ReplayOfKey = "refit_replay_of"

// ErrNotReplayable marks a dead letter that cannot be sent again.
var ErrNotReplayable = errors.New("not replayable")
