package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// CloudEvents attributes (binary content mode), so any Pub/Sub client can
// read Refit's events without Refit's code.
const (
	AttrSpecVersion   = "ce-specversion"
	AttrType          = "ce-type"
	AttrSource        = "ce-source"
	AttrID            = "ce-id"
	AttrTime          = "ce-time"
	AttrSubject       = "ce-subject"
	AttrContentType   = "content-type"
	AttrCorrelationID = "correlation_id" // Watermill's correlation middleware key
)

// ErrMalformed marks a message that can never be decoded; handlers
// dead-letter it at once.
var ErrMalformed = errors.New("malformed event")

// Encode turns an event into a message. source names the producer
// (ce-source), e.g. "refit/preprocess".
func Encode(e Event, source string) (*message.Message, error) {
	m := e.meta()
	if m.ID == "" {
		return nil, fmt.Errorf("encode %s: event has no id", e.Topic())
	}
	if m.Time.IsZero() {
		m.Time = time.Now().UTC()
	}
	if m.CorrelationID == "" {
		m.CorrelationID = m.ID
	}
	if obj, ok := e.(*ObjectFinalized); ok {
		payload, err := obj.payload()
		if err != nil {
			return nil, err
		}
		msg := message.NewMessage(m.ID, payload)
		for k, v := range obj.attributes() {
			msg.Metadata.Set(k, v)
		}
		msg.Metadata.Set(AttrCorrelationID, m.CorrelationID)
		return msg, nil
	}
	body, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.Topic(), err)
	}
	msg := message.NewMessage(m.ID, body)
	msg.Metadata.Set(AttrSpecVersion, "1.0")
	msg.Metadata.Set(AttrType, e.Type())
	msg.Metadata.Set(AttrSource, source)
	msg.Metadata.Set(AttrID, m.ID)
	msg.Metadata.Set(AttrTime, m.Time.UTC().Format(time.RFC3339Nano))
	msg.Metadata.Set(AttrSubject, m.Dataset)
	msg.Metadata.Set(AttrContentType, "application/json")
	msg.Metadata.Set(AttrCorrelationID, m.CorrelationID)
	return msg, nil
}

// Decode reads a message into e. Errors wrap ErrMalformed.
func Decode(msg *message.Message, e Event) error {
	if obj, ok := e.(*ObjectFinalized); ok {
		if err := decodeObject(msg.Metadata, msg.Payload, obj); err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		return nil
	}
	if t := msg.Metadata.Get(AttrType); t != "" && t != e.Type() {
		return fmt.Errorf("%w: type %q on topic %s, want %q", ErrMalformed, t, e.Topic(), e.Type())
	}
	if err := json.Unmarshal(msg.Payload, e); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, e.Topic(), err)
	}
	m := e.meta()
	if m.ID == "" || m.Dataset == "" {
		return fmt.Errorf("%w: %s without id or dataset", ErrMalformed, e.Topic())
	}
	return nil
}

// structured is a CloudEvent in structured content mode (JSON format).
type structured struct {
	SpecVersion     string          `json:"specversion"`
	Type            string          `json:"type"`
	Source          string          `json:"source"`
	ID              string          `json:"id"`
	Time            string          `json:"time"`
	Subject         string          `json:"subject"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// Structured encodes an event as a structured CloudEvent
// (application/cloudevents+json): the attributes Encode puts in metadata,
// and the event as data. Webhooks deliver this form.
func Structured(e Event, source string) ([]byte, error) {
	m := e.meta()
	if m.ID == "" {
		return nil, fmt.Errorf("encode %s: event has no id", e.Topic())
	}
	t := m.Time
	if t.IsZero() {
		t = time.Now().UTC()
	}
	data, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.Topic(), err)
	}
	b, err := json.Marshal(structured{SpecVersion: "1.0", Type: e.Type(), Source: source, ID: m.ID,
		Time: t.UTC().Format(time.RFC3339Nano), Subject: m.Dataset, DataContentType: "application/json", Data: data})
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.Topic(), err)
	}
	return b, nil
}
