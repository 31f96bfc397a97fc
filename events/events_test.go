package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/schemas"
)

func compile(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	file := "events/" + name + ".v1.json"
	b, err := schemas.Files.ReadFile(file)
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	require.NoError(t, c.AddResource(file, doc))
	s, err := c.Compile(file)
	require.NoError(t, err)
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, body []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	require.NoError(t, err)
	return s.Validate(v)
}

var now = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func meta(id string) events.Meta {
	return events.Meta{ID: id, Dataset: "housing", Time: now, CorrelationID: "c-1"}
}

const hash64 = "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"

// One value of every event type, built from the Go types.
func examples() map[string]events.Event {
	m := events.Metrics{Rows: 10, RMSE: 1.5, MAE: 1, R2: 0.9}
	return map[string]events.Event{
		"correction.submitted": &events.CorrectionSubmitted{Meta: meta("correction/x"), CorrectionID: "x"},
		"rows.staged":          &events.RowsStaged{Meta: meta("rows.staged/housing/0123456789abcdef"), IngestID: "0123456789abcdef", Source: "correction/x", Accepted: 1},
		"dataset.versioned":    &events.DatasetVersioned{Meta: meta("housing/v1"), Version: 1, Hash: hash64, Rows: 5, TrainRows: 4, TestRows: 1},
		"model.trained":        &events.ModelTrained{Meta: meta("0123456789abcdef"), RunID: "0123456789abcdef", Spec: "linear", SpecHash: "0123456789abcdef", Version: 1, VersionHash: hash64, Metrics: m},
		"model.promoted": &events.ModelPromoted{Meta: meta("housing/promotion/1"), Sequence: 1, ModelID: "0123456789abcdef", Spec: "linear",
			ArtifactURI: "file:///x", Checksum: "sha256:" + hash64, DatasetVersion: 1, DatasetHash: hash64, Metrics: m, Actor: "auto", Reason: "first model", PromotedAt: now},
		"object.finalized": events.NewObjectFinalized("refit", "incoming/housing/a.csv", 42, 100, now),
		"blob.written": &events.BlobWritten{Meta: meta("datasets/housing/rows/0123456789abcdef01234567.csv"), Version: 2,
			Blob: "datasets/housing/rows/0123456789abcdef01234567.csv", Position: 1, Rows: 5, Hash: hash64},
	}
}

func TestGoldenExamplesMatchSchemas(t *testing.T) {
	for name := range examples() {
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(path.Join("testdata", name+".json"))
			require.NoError(t, err)
			require.NoError(t, validate(t, compile(t, name), body))
		})
	}
}

func TestEncodedEventsMatchSchemas(t *testing.T) {
	for name, e := range examples() {
		t.Run(name, func(t *testing.T) {
			msg, err := events.Encode(e, "refit/test")
			require.NoError(t, err)
			require.NoError(t, validate(t, compile(t, name), msg.Payload))
			require.Equal(t, name, e.Topic())
		})
	}
}

func TestSchemasRejectBrokenEvents(t *testing.T) {
	tests := []struct {
		name, schema, body string
	}{
		{"missing sequence", "model.promoted", `{"id":"a","dataset":"housing","time":"2026-11-23T10:00:00Z","correlation_id":"c","model_id":"0123456789abcdef"}`},
		{"bad dataset name", "rows.staged", `{"id":"a","dataset":"Housing!","time":"2026-11-23T10:00:00Z","correlation_id":"c","ingest_id":"0123456789abcdef","source":"s","accepted":1,"rejected":0,"duplicate":0}`},
		{"negative rows", "dataset.versioned", `{"id":"a","dataset":"housing","time":"2026-11-23T10:00:00Z","correlation_id":"c","version":1,"hash":"` + hash64 + `","parent":0,"rows":-1,"train_rows":0,"test_rows":0}`},
		{"generation as number", "object.finalized", `{"bucket":"refit","name":"incoming/housing/a.csv","generation":42,"size":"1"}`},
		{"blob outside the rows folder", "blob.written", `{"id":"a","dataset":"housing","time":"2026-11-23T10:00:00Z","correlation_id":"c","version":1,"blob":"incoming/housing/a.csv","position":0,"rows":1,"hash":"` + hash64 + `"}`},
		{"negative position", "blob.written", `{"id":"a","dataset":"housing","time":"2026-11-23T10:00:00Z","correlation_id":"c","version":1,"blob":"datasets/housing/rows/a.csv","position":-1,"rows":1,"hash":"` + hash64 + `"}`},
		{"bad time", "correction.submitted", `{"id":"a","dataset":"housing","time":"yesterday","correlation_id":"c","correction_id":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Error(t, validate(t, compile(t, tt.schema), []byte(tt.body)))
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for name, e := range examples() {
		t.Run(name, func(t *testing.T) {
			msg, err := events.Encode(e, "refit/test")
			require.NoError(t, err)
			fresh := map[string]events.Event{
				"correction.submitted": &events.CorrectionSubmitted{}, "rows.staged": &events.RowsStaged{},
				"dataset.versioned": &events.DatasetVersioned{}, "model.trained": &events.ModelTrained{},
				"model.promoted": &events.ModelPromoted{}, "object.finalized": &events.ObjectFinalized{},
				"blob.written": &events.BlobWritten{},
			}[name]
			require.NoError(t, events.Decode(msg, fresh))
			want, _ := json.Marshal(e)
			got, _ := json.Marshal(fresh)
			require.JSONEq(t, string(want), string(got))
		})
	}
}

func TestCloudEventsAttributes(t *testing.T) {
	msg, err := events.Encode(examples()["model.promoted"], "refit/promote")
	require.NoError(t, err)
	require.Equal(t, "1.0", msg.Metadata.Get(events.AttrSpecVersion))
	require.Equal(t, "dev.refit.model.promoted.v1", msg.Metadata.Get(events.AttrType))
	require.Equal(t, "refit/promote", msg.Metadata.Get(events.AttrSource))
	require.Equal(t, "housing/promotion/1", msg.Metadata.Get(events.AttrID))
	require.Equal(t, "housing", msg.Metadata.Get(events.AttrSubject))
	require.Equal(t, msg.UUID, "housing/promotion/1")
}

func TestDecodeGCSNotification(t *testing.T) {
	payload, err := os.ReadFile("testdata/object.finalized.json")
	require.NoError(t, err)
	msg := message.NewMessage("gcs-message-id-1", payload)
	msg.Metadata = message.Metadata{
		"eventType": "OBJECT_FINALIZE", "bucketId": "refit", "objectId": "incoming/housing/houses.csv",
		"objectGeneration": "1700000000000000", "eventTime": "2026-11-23T10:14:58.6Z", "payloadFormat": "JSON_API_V1",
		"notificationConfig": "projects/_/buckets/refit/notificationConfigs/1",
	}
	var e events.ObjectFinalized
	require.NoError(t, events.Decode(msg, &e))
	require.Equal(t, "gs://refit/incoming/housing/houses.csv#1700000000000000", e.ID)
	require.Equal(t, "housing", e.Dataset)
	require.Equal(t, int64(52311), e.Size)
	require.Equal(t, "OBJECT_FINALIZE", e.EventType)

	msg.Metadata["objectGeneration"] = "not-a-number"
	require.True(t, errors.Is(events.Decode(msg, &e), events.ErrMalformed))
}

func TestDecodeRejectsWrongTypeAndGarbage(t *testing.T) {
	msg, err := events.Encode(examples()["model.trained"], "x")
	require.NoError(t, err)
	require.ErrorIs(t, events.Decode(msg, &events.ModelPromoted{}), events.ErrMalformed)
	require.ErrorIs(t, events.Decode(message.NewMessage("1", []byte("{not json")), &events.RowsStaged{}), events.ErrMalformed)
}

func TestDatasetOf(t *testing.T) {
	tests := []struct {
		name, want string
		ok         bool
	}{
		{"incoming/housing/a.csv", "housing", true},
		{"incoming/housing/sub/a.csv", "housing", true},
		{"incoming/housing/", "", false},
		{"staged/housing/a.csv", "", false},
		{"incoming/a.csv", "", false},
	}
	for _, tt := range tests {
		got, ok := events.DatasetOf(tt.name)
		require.Equal(t, tt.ok, ok, tt.name)
		require.Equal(t, tt.want, got, tt.name)
	}
}
