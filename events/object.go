package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// GCS notification attributes and values (Pub/Sub notifications for Cloud
// Storage, payload format JSON_API_V1).
const (
	AttrEventType        = "eventType"
	AttrBucketID         = "bucketId"
	AttrObjectID         = "objectId"
	AttrObjectGeneration = "objectGeneration"
	AttrEventTime        = "eventTime"
	AttrPayloadFormat    = "payloadFormat"

	EventTypeFinalize = "OBJECT_FINALIZE"
	PayloadJSONAPIV1  = "JSON_API_V1"
)

// IncomingPrefix is where uploads land: incoming/<dataset>/<file>.
const IncomingPrefix = "incoming/"

// ObjectFinalized is a bucket notification: an object was written. It
// travels in GCS's own format (attributes + the object resource as JSON),
// also when the bucket is a local folder, so one code path reads both.
type ObjectFinalized struct {
	Meta
	EventType  string
	Bucket     string
	Name       string
	Generation int64
	Size       int64
	// Updated is when this generation was written. It orders uploads.
	Updated     time.Time
	ContentType string
}

func (*ObjectFinalized) Topic() string { return TopicObjectFinalized }
func (*ObjectFinalized) Type() string  { return "google.cloud.storage.object.v1.finalized" }

// ObjectKey identifies one generation of one object: the idempotency key of
// an ingest. GCS may notify twice under different message IDs; this does not
// change.
func ObjectKey(bucket, name string, generation int64) string {
	return fmt.Sprintf("gs://%s/%s#%d", bucket, name, generation)
}

// DatasetOf returns the dataset an object was uploaded for, from
// incoming/<dataset>/<file>; ok is false for objects elsewhere.
func DatasetOf(name string) (dataset string, ok bool) {
	rest, found := strings.CutPrefix(name, IncomingPrefix)
	if !found {
		return "", false
	}
	dataset, file, found := strings.Cut(rest, "/")
	if !found || dataset == "" || file == "" {
		return "", false
	}
	return dataset, true
}

// NewObjectFinalized fills Meta from the object's identity.
func NewObjectFinalized(bucket, name string, generation, size int64, updated time.Time) *ObjectFinalized {
	e := &ObjectFinalized{
		EventType: EventTypeFinalize, Bucket: bucket, Name: name,
		Generation: generation, Size: size, Updated: updated.UTC(),
		ContentType: "text/csv",
	}
	e.fillMeta(updated)
	return e
}

func (e *ObjectFinalized) fillMeta(eventTime time.Time) {
	key := ObjectKey(e.Bucket, e.Name, e.Generation)
	ds, _ := DatasetOf(e.Name)
	e.Meta = Meta{ID: key, Dataset: ds, Time: eventTime.UTC(), CorrelationID: key}
}

// objectResource is the JSON_API_V1 payload: GCS's object resource, where
// int64 fields are strings.
type objectResource struct {
	Kind        string `json:"kind"`
	ID          string `json:"id"`
	Bucket      string `json:"bucket"`
	Name        string `json:"name"`
	Generation  string `json:"generation"`
	Size        string `json:"size"`
	ContentType string `json:"contentType,omitempty"`
	TimeCreated string `json:"timeCreated,omitempty"`
	Updated     string `json:"updated,omitempty"`
}

func (e *ObjectFinalized) attributes() map[string]string {
	return map[string]string{
		AttrEventType:        e.EventType,
		AttrBucketID:         e.Bucket,
		AttrObjectID:         e.Name,
		AttrObjectGeneration: strconv.FormatInt(e.Generation, 10),
		AttrEventTime:        e.Time.Format(time.RFC3339Nano),
		AttrPayloadFormat:    PayloadJSONAPIV1,
	}
}

func (e *ObjectFinalized) payload() ([]byte, error) {
	gen := strconv.FormatInt(e.Generation, 10)
	return json.Marshal(objectResource{
		Kind: "storage#object", ID: e.Bucket + "/" + e.Name + "/" + gen,
		Bucket: e.Bucket, Name: e.Name, Generation: gen,
		Size: strconv.FormatInt(e.Size, 10), ContentType: e.ContentType,
		TimeCreated: e.Updated.Format(time.RFC3339Nano), Updated: e.Updated.Format(time.RFC3339Nano),
	})
}

// decodeObject reads a GCS notification. Attributes are authoritative for
// identity; the payload adds size and times.
func decodeObject(attrs map[string]string, payload []byte, e *ObjectFinalized) error {
	if f := attrs[AttrPayloadFormat]; f != "" && f != PayloadJSONAPIV1 {
		return fmt.Errorf("object event: payload format %q, want %s", f, PayloadJSONAPIV1)
	}
	var res objectResource
	if len(payload) > 0 {
		if err := json.Unmarshal(payload, &res); err != nil {
			return fmt.Errorf("object event payload: %w", err)
		}
	}
	e.EventType = attrs[AttrEventType]
	e.Bucket = firstNonEmpty(attrs[AttrBucketID], res.Bucket)
	e.Name = firstNonEmpty(attrs[AttrObjectID], res.Name)
	genText := firstNonEmpty(attrs[AttrObjectGeneration], res.Generation)
	if e.Bucket == "" || e.Name == "" || genText == "" {
		return fmt.Errorf("object event: missing bucket, object or generation")
	}
	var err error
	if e.Generation, err = strconv.ParseInt(genText, 10, 64); err != nil {
		return fmt.Errorf("object event: generation %q: %w", genText, err)
	}
	if res.Size != "" {
		if e.Size, err = strconv.ParseInt(res.Size, 10, 64); err != nil {
			return fmt.Errorf("object event: size %q: %w", res.Size, err)
		}
	}
	e.ContentType = res.ContentType
	e.Updated = parseTime(firstNonEmpty(res.Updated, res.TimeCreated))
	eventTime := parseTime(attrs[AttrEventTime])
	if eventTime.IsZero() {
		eventTime = e.Updated
	}
	e.fillMeta(eventTime)
	return nil
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
