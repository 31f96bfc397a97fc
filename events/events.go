// Package events holds Refit's event types, their topics and their codec.
//
// Every event has one Go type here and one JSON Schema under
// schemas/events/. Events are hints: the state they announce is already in
// the store, so a lost event costs latency (the reconcile pass finds the
// work), and a repeated one changes nothing (handlers are idempotent).
package events

import "time"

// Topics, one per event type. The bus may prefix them (REFIT_TOPIC_PREFIX).
const (
	TopicObjectFinalized     = "object.finalized"
	TopicCorrectionSubmitted = "correction.submitted"
	TopicRowsStaged          = "rows.staged"
	TopicDatasetVersioned    = "dataset.versioned"
	TopicBlobWritten         = "blob.written"
	TopicModelTrained        = "model.trained"
	TopicModelPromoted       = "model.promoted"
	// TopicDeadLetter receives messages that failed for good, with the
	// reason in their metadata.
	TopicDeadLetter = "dead-letter"
)

// Meta is what every event carries.
type Meta struct {
	// ID is deterministic where the event is (a version, a run, a
	// promotion), so a re-published event has the same ID.
	ID      string    `json:"id"`
	Dataset string    `json:"dataset"`
	Time    time.Time `json:"time"`
	// CorrelationID follows one upload or correction through every step.
	CorrelationID string `json:"correlation_id"`
}

// Event is implemented by every event type.
type Event interface {
	// Topic the event is published on.
	Topic() string
	// Type is the CloudEvents type, e.g. dev.refit.model.promoted.v1.
	Type() string
	meta() *Meta
}

func (m *Meta) meta() *Meta { return m }

// MetaOf returns what every event carries (a copy).
func MetaOf(e Event) Meta { return *e.meta() }

// Metrics are a model's scores on a set of held-out rows.
type Metrics struct {
	Rows int     `json:"rows"`
	RMSE float64 `json:"rmse"`
	MAE  float64 `json:"mae"`
	R2   float64 `json:"r2"`
}

// CorrectionSubmitted: a client sent the right label for an instance; the
// correction is stored under CorrectionID.
type CorrectionSubmitted struct {
	Meta
	CorrectionID string `json:"correction_id"`
}

func (*CorrectionSubmitted) Topic() string { return TopicCorrectionSubmitted }
func (*CorrectionSubmitted) Type() string  { return "dev.refit.correction.submitted.v1" }

// RowsStaged: one source (an uploaded file or a correction) was validated;
// its accepted rows are staged and wait for a version.
type RowsStaged struct {
	Meta
	IngestID string `json:"ingest_id"`
	Source   string `json:"source"`
	Accepted int    `json:"accepted"`
	Rejected int    `json:"rejected"`
	// Duplicate is always 0 since rows are deduplicated when a version is
	// cut (the version's sources count them); kept because v1 requires it.
	Duplicate int `json:"duplicate"`
}

func (*RowsStaged) Topic() string { return TopicRowsStaged }
func (*RowsStaged) Type() string  { return "dev.refit.rows.staged.v1" }

// DatasetVersioned: an immutable dataset version was cut.
type DatasetVersioned struct {
	Meta
	Version   int    `json:"version"`
	Hash      string `json:"hash"`
	Parent    int    `json:"parent"`
	Rows      int    `json:"rows"`
	TrainRows int    `json:"train_rows"`
	TestRows  int    `json:"test_rows"`
}

func (*DatasetVersioned) Topic() string { return TopicDatasetVersioned }
func (*DatasetVersioned) Type() string  { return "dev.refit.dataset.versioned.v1" }

// BlobWritten: the version worker wrote a rows blob for the version it is
// cutting. A train replica computes the blob's sufficient statistics on
// this message, one blob per message, so replicas share the work; a fit
// that finds a blob's statistics missing computes them itself, so nothing
// depends on this event arriving. Published before the version is
// inserted: a racing worker that wins the number cuts the same blob.
type BlobWritten struct {
	Meta
	// Version is the number the cut is claiming.
	Version int `json:"version"`
	// Blob is the object's name; Position its index in the version's blobs.
	Blob     string `json:"blob"`
	Position int    `json:"position"`
	// Rows and Hash (SHA-256 of its bytes, hex) are what the blob holds,
	// as the version will record them: a reader checks them while it reads.
	Rows int    `json:"rows"`
	Hash string `json:"hash"`
}

func (*BlobWritten) Topic() string { return TopicBlobWritten }
func (*BlobWritten) Type() string  { return "dev.refit.blob.written.v1" }

// ModelTrained: a model spec was fitted on a dataset version.
type ModelTrained struct {
	Meta
	RunID       string  `json:"run_id"`
	Spec        string  `json:"spec"`
	SpecHash    string  `json:"spec_hash"`
	Version     int     `json:"version"`
	VersionHash string  `json:"version_hash"`
	Metrics     Metrics `json:"metrics"`
}

func (*ModelTrained) Topic() string { return TopicModelTrained }
func (*ModelTrained) Type() string  { return "dev.refit.model.trained.v1" }

// ModelPromoted: a model became the one to serve for its dataset. Sequence
// grows by one per promotion of a dataset; subscribers keep the highest.
type ModelPromoted struct {
	Meta
	Sequence        int64     `json:"sequence"`
	ModelID         string    `json:"model_id"`
	Spec            string    `json:"spec"`
	ArtifactURI     string    `json:"artifact_uri"`
	Checksum        string    `json:"checksum"`
	DatasetVersion  int       `json:"dataset_version"`
	DatasetHash     string    `json:"dataset_hash"`
	Metrics         Metrics   `json:"metrics"`
	PreviousModelID string    `json:"previous_model_id,omitempty"`
	Actor           string    `json:"actor"`
	Reason          string    `json:"reason"`
	PromotedAt      time.Time `json:"promoted_at"`
}

func (*ModelPromoted) Topic() string { return TopicModelPromoted }
func (*ModelPromoted) Type() string  { return "dev.refit.model.promoted.v1" }
