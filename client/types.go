package client

import (
	"encoding/json"
	"strconv"
	"time"
)

// The gateway's answers, as its HTTP API (README.md, "HTTP API") sends
// them. Fields the gateway adds later are ignored, not an error.

// Metrics are a model's scores on held-out rows: a regression's, and for a
// classifier its classification scores (Classification is nil otherwise).
type Metrics struct {
	Rows int     `json:"rows"`
	RMSE float64 `json:"rmse"`
	MAE  float64 `json:"mae"`
	R2   float64 `json:"r2"`
	*Classification
}

// Classification holds a classifier's scores; per-class lists follow
// Classes.
type Classification struct {
	Accuracy float64 `json:"accuracy"`
	F1Macro  float64 `json:"f1_macro"`
	LogLoss  float64 `json:"log_loss"`
	// ROCAUC is set for two classes only, when both occur in the rows.
	ROCAUC    *float64  `json:"roc_auc,omitempty"`
	Classes   []string  `json:"classes"`
	Precision []float64 `json:"precision"`
	Recall    []float64 `json:"recall"`
	F1        []float64 `json:"f1"`
	// Confusion[t][p] counts rows of true class t predicted as p.
	Confusion [][]int `json:"confusion"`
}

// Column is one column a dataset's CSV may hold.
type Column struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Required bool     `json:"required"`
	Target   bool     `json:"target,omitempty"`
	Dropped  bool     `json:"dropped,omitempty"`
	Min      *float64 `json:"min,omitempty"`
	Max      *float64 `json:"max,omitempty"`
	Choices  []string `json:"choices,omitempty"`
}

// VersionSummary is one dataset version, as GET /v1/datasets/{d} lists it.
type VersionSummary struct {
	Number    int       `json:"number"`
	Rows      int       `json:"rows"`
	NewRows   int       `json:"new_rows"`
	TrainRows int       `json:"train_rows"`
	TestRows  int       `json:"test_rows"`
	Hash      string    `json:"hash"`
	Sources   int       `json:"sources"`
	CreatedAt time.Time `json:"created_at"`
}

// Source is where rows came from: an uploaded object generation or a
// correction.
type Source struct {
	Kind         string `json:"kind"`
	Bucket       string `json:"bucket,omitempty"`
	Object       string `json:"object,omitempty"`
	Generation   int64  `json:"generation,omitempty"`
	CorrectionID string `json:"correction_id,omitempty"`
}

// Ingest is what became of one source.
type Ingest struct {
	ID         string    `json:"id"`
	Dataset    string    `json:"dataset"`
	Source     Source    `json:"source"`
	SourceTime time.Time `json:"source_time"`
	Accepted   int       `json:"accepted"`
	TestRows   int       `json:"test_rows"` // of the accepted
	Rejected   int       `json:"rejected"`
	// RejectedLines are the physical lines the rejected records span (an
	// unbalanced quote makes one record of many lines).
	RejectedLines int    `json:"rejected_lines,omitempty"`
	Duplicate     int    `json:"duplicate"`
	Status        string `json:"status"`
	Chunk         string `json:"chunk,omitempty"` // the staged rows' object
	// ChunkHash is the chunk's SHA-256; RowHashes lists its rows' hashes
	// (16 bytes each, SHA-256 RowHashesSum), read by the version cut.
	ChunkHash    string `json:"chunk_hash,omitempty"`
	RowHashes    string `json:"row_hashes,omitempty"`
	RowHashesSum string `json:"row_hashes_sum,omitempty"`
	Quarantine   string `json:"quarantine,omitempty"`
	Reason       string `json:"reason,omitempty"`
	// IgnoredColumns are header columns the dataset does not define.
	IgnoredColumns []string  `json:"ignored_columns,omitempty"`
	StagedAt       time.Time `json:"staged_at"`
	// FirstVersion is the first version holding the rows (0 until cut);
	// DuplicateOf is set when every row was in that version already.
	FirstVersion int `json:"first_version,omitempty"`
	DuplicateOf  int `json:"duplicate_of,omitempty"`
}

// RowCounts add up a dataset's sources.
type RowCounts struct {
	Accepted  int `json:"accepted"`
	Rejected  int `json:"rejected"`
	Duplicate int `json:"duplicate"`
	Sources   int `json:"sources"`
}

// Dataset is GET /v1/datasets/{d}: versions, staged rows waiting, the
// champion, row counts, every ingest and the columns.
type Dataset struct {
	Name         string           `json:"name"`
	Description  string           `json:"description,omitempty"`
	Target       string           `json:"target"`
	BatchSize    int              `json:"batch_size"`
	TestFraction float64          `json:"test_fraction"`
	Models       []string         `json:"models"`
	Versions     []VersionSummary `json:"versions"`
	StagedRows   int              `json:"staged_rows_waiting"`
	Champion     *Promotion       `json:"champion"`
	Rows         RowCounts        `json:"rows"`
	// Ingests is one page, newest first; IngestsNext the next page's
	// cursor (GET /v1/datasets/{d}?cursor=...), empty on the last.
	Ingests     []Ingest `json:"ingests"`
	IngestsNext string   `json:"ingests_next,omitempty"`
	Columns     []Column `json:"columns"`
}

// Run is one model spec fitted on one dataset version.
type Run struct {
	ID          string    `json:"id"`
	Dataset     string    `json:"dataset"`
	Spec        string    `json:"spec"`
	SpecHash    string    `json:"spec_hash"`
	Version     int       `json:"version"`
	VersionHash string    `json:"version_hash"`
	TrainRows   int       `json:"train_rows"`
	Metrics     Metrics   `json:"metrics"`
	Fit         *Fit      `json:"fit,omitempty"`
	Artifact    string    `json:"artifact"`
	ArtifactURI string    `json:"artifact_uri"`
	Checksum    string    `json:"checksum"`
	DurationMS  float64   `json:"duration_ms"`
	CodeVersion string    `json:"code_version"`
	CreatedAt   time.Time `json:"created_at"`
	// FittedFrom is "statistics" (the version's sufficient statistics) or
	// "rows".
	FittedFrom string `json:"fitted_from,omitempty"`
	// L2 is the ridge penalty a spec with "l2": "auto" chose.
	L2 *float64 `json:"l2,omitempty"`
}

// Fit is how an iterative fit went (logistic runs).
type Fit struct {
	Iterations int  `json:"iterations"`
	Converged  bool `json:"converged"`
	// WarmStart is the run the fit started from ("" for a cold start).
	WarmStart string `json:"warm_start,omitempty"`
}

// Duration is how long the fit took.
func (r Run) Duration() time.Duration { return time.Duration(r.DurationMS * float64(time.Millisecond)) }

// RunsPage is one page of GET /v1/datasets/{d}/runs.
type RunsPage struct {
	Runs          []Run  `json:"runs"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

// RunsQuery filters and pages the runs; zero values mean no filter and the
// gateway's default page size.
type RunsQuery struct {
	Spec      string
	Version   int
	Limit     int
	PageToken string
}

// RunDetail is GET /v1/runs/{id}: the run with its spec, decision,
// promotions and lineage.
type RunDetail struct {
	Run
	// Params is the model spec the artifact was fitted from, as a dataset
	// definition's "models" holds it (null when the artifact is unreadable).
	Params        json.RawMessage `json:"params"`
	ArtifactError string          `json:"artifact_error,omitempty"`
	Decision      *Standing       `json:"decision"`
	Promotions    []int64         `json:"promotions"`
	Lineage       Lineage         `json:"lineage"`
}

// Decision statuses.
const (
	StatusPromoted         = "promoted"
	StatusRejected         = "rejected"
	StatusAwaitingApproval = "awaiting_approval"
)

// Decision records whether a run was promoted, and why.
type Decision struct {
	RunID         string    `json:"run_id"`
	Dataset       string    `json:"dataset"`
	Promoted      bool      `json:"promoted"`
	Status        string    `json:"status"`
	Sequence      int64     `json:"sequence,omitempty"`
	EvalVersion   int       `json:"eval_version"`
	Challenger    Metrics   `json:"challenger"`
	ChampionRunID string    `json:"champion_run_id,omitempty"`
	Champion      *Metrics  `json:"champion,omitempty"`
	Reason        string    `json:"reason"`
	DecidedAt     time.Time `json:"decided_at"`
}

// Standing is a run's decision brought up to date by the promotion
// history (a person may have promoted it since the rule decided).
type Standing struct {
	Decision
	// Decided and DecidedReason are what the rule recorded, when the
	// history overrides it.
	Decided       string `json:"decided,omitempty"`
	DecidedReason string `json:"decided_reason,omitempty"`
	// Champion: the run is the latest promotion's (this shadows the
	// decision's champion metrics, which the gateway does not send here).
	Champion bool `json:"champion"`
}

// Promotion is one entry of a dataset's promotion history.
type Promotion struct {
	Dataset       string    `json:"dataset"`
	Sequence      int64     `json:"sequence"`
	RunID         string    `json:"run_id"`
	Spec          string    `json:"spec"`
	Version       int       `json:"version"`
	VersionHash   string    `json:"version_hash"`
	ArtifactURI   string    `json:"artifact_uri"`
	Artifact      string    `json:"artifact"`
	Checksum      string    `json:"checksum"`
	Metrics       Metrics   `json:"metrics"`
	PreviousRunID string    `json:"previous_run_id,omitempty"`
	Actor         string    `json:"actor"`
	Reason        string    `json:"reason"`
	PromotedAt    time.Time `json:"promoted_at"`
}

// History is GET /v1/datasets/{d}/promotions: the promotions, oldest
// first, and every decision.
type History struct {
	Promotions []Promotion `json:"promotions"`
	Decisions  []Standing  `json:"decisions"`
}

// PromoteRequest promotes RunID, or with Rollback returns to the previous
// champion.
type PromoteRequest struct {
	RunID    string `json:"run_id,omitempty"`
	Rollback bool   `json:"rollback,omitempty"`
	Actor    string `json:"actor,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Reproduction is POST /v1/runs/{id}/reproduce.
type Reproduction struct {
	RunID            string  `json:"run_id"`
	Dataset          string  `json:"dataset"`
	Spec             string  `json:"spec"`
	Version          int     `json:"version"`
	VersionHash      string  `json:"version_hash"`
	TrainRows        int     `json:"train_rows"`
	RecordedChecksum string  `json:"recorded_checksum"`
	Checksum         string  `json:"checksum"`
	Identical        bool    `json:"identical"`
	DurationMS       float64 `json:"duration_ms"`
}

// LineageVersion is one link of a version's parent chain.
type LineageVersion struct {
	Number     int       `json:"number"`
	Hash       string    `json:"hash"`
	ParentHash string    `json:"parent_hash,omitempty"`
	Rows       int       `json:"rows"`
	NewRows    int       `json:"new_rows"`
	CreatedAt  time.Time `json:"created_at"`
}

// LineageSource is one source whose rows a version holds.
type LineageSource struct {
	Version  int    `json:"version"`
	IngestID string `json:"ingest_id"`
	Source
	Rows int `json:"rows"`
}

// Lineage is what a dataset version is made of.
type Lineage struct {
	Dataset     string           `json:"dataset"`
	Version     int              `json:"version"`
	Hash        string           `json:"hash"`
	Rows        int              `json:"rows"`
	TrainRows   int              `json:"train_rows"`
	TestRows    int              `json:"test_rows"`
	Chain       []LineageVersion `json:"chain"`
	Sources     []LineageSource  `json:"sources"`
	Corrections []string         `json:"corrections"`
}

// Uploaded is POST /v1/datasets/{d}/uploads.
type Uploaded struct {
	Object     string `json:"object"`
	Bucket     string `json:"bucket"`
	Generation int64  `json:"generation"`
	Size       int64  `json:"size"`
}

// Ingest statuses of an uploaded generation.
const (
	IngestAccepted  = "accepted"
	IngestRejected  = "rejected"
	IngestDuplicate = "duplicate"
	IngestPending   = "pending"
)

// ObjectGeneration is what became of one generation of an uploaded file.
type ObjectGeneration struct {
	Generation   int64      `json:"generation"`
	Current      bool       `json:"current"`
	Status       string     `json:"status"`
	Reason       string     `json:"reason,omitempty"`
	IngestID     string     `json:"ingest_id,omitempty"`
	Accepted     int        `json:"accepted"`
	Rejected     int        `json:"rejected"`
	Duplicate    int        `json:"duplicate"`
	Quarantine   string     `json:"quarantine,omitempty"`
	StagedAt     *time.Time `json:"staged_at,omitempty"`
	FirstVersion *int       `json:"first_version"`
	// DuplicateOf is set when every row was in that version already.
	DuplicateOf *int `json:"duplicate_of,omitempty"`
}

// ObjectHistory is GET /v1/datasets/{d}/objects/{name}.
type ObjectHistory struct {
	Dataset     string             `json:"dataset"`
	Bucket      string             `json:"bucket"`
	Object      string             `json:"object"`
	Generations []ObjectGeneration `json:"generations"`
}

// ModelInfo names the model that answered.
type ModelInfo struct {
	ID             string    `json:"id"`
	Spec           string    `json:"spec"`
	DatasetVersion int       `json:"dataset_version"`
	DatasetHash    string    `json:"dataset_hash"`
	Sequence       int64     `json:"sequence"`
	PromotedAt     time.Time `json:"promoted_at"`
	Checksum       string    `json:"checksum"`
}

// Predictions is POST /v1/models/{d}:predict.
type Predictions struct {
	Predictions []Prediction `json:"predictions"`
	// Probabilities of each class, per instance (classifiers only).
	Probabilities []map[string]float64 `json:"probabilities,omitempty"`
	PredictionIDs []string             `json:"prediction_ids"`
	Model         ModelInfo            `json:"model"`
}

// Prediction is one answer: a number from a regression model, a class
// from a classifier.
type Prediction struct {
	Value float64
	Class string // "" for a regression
}

// UnmarshalJSON takes a number or a string.
func (p *Prediction) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &p.Class)
	}
	return json.Unmarshal(b, &p.Value)
}

// MarshalJSON writes what the gateway sent.
func (p Prediction) MarshalJSON() ([]byte, error) {
	if p.Class != "" {
		return json.Marshal(p.Class)
	}
	return json.Marshal(p.Value)
}

// String is the class, or the number in its shortest exact form.
func (p Prediction) String() string {
	if p.Class != "" {
		return p.Class
	}
	return strconv.FormatFloat(p.Value, 'f', -1, 64)
}

// ModelStatus is GET /v1/models/{d}: whether a model serves, and which.
type ModelStatus struct {
	Name  string     `json:"name"`
	Ready bool       `json:"ready"`
	Model *ModelInfo `json:"model"`
}

// Correction is the right label for an instance, or for a prediction by
// its ID.
type Correction struct {
	Instance     map[string]any `json:"instance,omitempty"`
	Label        any            `json:"label"`
	PredictionID string         `json:"prediction_id,omitempty"`
}

// DeadLetter is an event that failed for good, with the reason.
type DeadLetter struct {
	ID            string            `json:"id"`
	MessageID     string            `json:"message_id"`
	Topic         string            `json:"topic"`
	Handler       string            `json:"handler"`
	Reason        string            `json:"reason"`
	CorrelationID string            `json:"correlation_id,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	Payload       string            `json:"payload"`
	At            time.Time         `json:"at"`
	// Replay is set once an admin has replayed the dead letter.
	Replay *Replay `json:"replay,omitempty"`
}

// Replay records a dead letter republished on its topic.
type Replay struct {
	DeadLetterID string    `json:"dead_letter_id"`
	Topic        string    `json:"topic"`
	MessageID    string    `json:"message_id"`
	Actor        string    `json:"actor"`
	At           time.Time `json:"at"`
	// Already is true when the dead letter had been replayed before: the
	// answer is that earlier replay, and nothing was published again.
	Already bool `json:"already,omitempty"`
}

// WebhookDelivery is one line of the webhook delivery log: an attempt, or
// a delivery's outcome.
type WebhookDelivery struct {
	// DeliveryID is the same on every retry of one (URL, event).
	DeliveryID string `json:"delivery_id"`
	Kind       string `json:"kind"` // attempt or outcome
	// URL is the endpoint without its query string or credentials.
	URL        string    `json:"url"`
	EventID    string    `json:"event_id"`
	EventType  string    `json:"event_type"`
	Dataset    string    `json:"dataset"`
	Attempt    int       `json:"attempt"`
	HTTPStatus int       `json:"http_status,omitempty"`
	Error      string    `json:"error,omitempty"`
	Outcome    string    `json:"outcome,omitempty"` // delivered or failed
	DurationMS float64   `json:"duration_ms,omitempty"`
	At         time.Time `json:"at"`
	Payload    string    `json:"payload,omitempty"`
}

// Event is one Server-Sent Event of GET /v1/events.
type Event struct {
	ID   string
	Type string // the CloudEvents type, e.g. dev.refit.model.promoted.v1
	Data []byte // the event's JSON
}
