// Package registry is Refit's state: the ingest ledger, staged-row claims,
// corrections, dataset versions, training runs, promotion decisions,
// promotions and dead letters. It stores typed records in a store.Docs;
// every write is an insert under a unique key, so a retried or raced write
// either lands once or reports store.ErrDuplicate.
package registry

import (
	"time"

	"github.com/refit-ml/refit/events"
)

// Source kinds.
const (
	SourceObject     = "object"
	SourceCorrection = "correction"
)

// Source is where staged rows came from.
type Source struct {
	Kind         string `json:"kind"`
	Bucket       string `json:"bucket,omitempty"`
	Object       string `json:"object,omitempty"`
	Generation   int64  `json:"generation,omitempty"`
	CorrectionID string `json:"correction_id,omitempty"`
}

// Key is the source's idempotency key: gs://bucket/object#generation, or
// correction/ID.
func (s Source) Key() string {
	if s.Kind == SourceCorrection {
		return "correction/" + s.CorrectionID
	}
	return events.ObjectKey(s.Bucket, s.Object, s.Generation)
}

// Ingest is one entry of the ingest ledger: what became of one source.
type Ingest struct {
	ID      string `json:"id"` // IngestID(source key)
	Dataset string `json:"dataset"`
	Source  Source `json:"source"`
	// SourceTime orders sources (upload time, correction time), so versions
	// are cut at the same boundaries however late the workers run.
	SourceTime time.Time `json:"source_time"`
	// Accepted rows passed validation. Duplicates among them are dropped
	// when a version is cut (VersionSource.Duplicate).
	Accepted int `json:"accepted"`
	TestRows int `json:"test_rows"` // of the accepted
	Rejected int `json:"rejected"`
	// RejectedLines are the physical lines the rejected records span: an
	// unbalanced quote makes one record of every line after it.
	RejectedLines int `json:"rejected_lines,omitempty"`
	// Chunk holds the accepted rows (staged CSV); empty when none.
	Chunk string `json:"chunk,omitempty"`
	// ChunkHash is the SHA-256 of the chunk's bytes, and RowHashes the
	// object listing its rows' content hashes in row order (16 bytes each),
	// whose SHA-256 is RowHashesSum: written while an upload is staged, so
	// the version cut finds duplicates and the rows blob's hash without
	// reading the chunk. Empty for corrections and older ingests (the cut
	// reads the chunk).
	ChunkHash    string `json:"chunk_hash,omitempty"`
	RowHashes    string `json:"row_hashes,omitempty"`
	RowHashesSum string `json:"row_hashes_sum,omitempty"`
	// Quarantine lists the rejected rows with reasons; empty when none.
	Quarantine string `json:"quarantine,omitempty"`
	// Reason is set when the whole source was rejected.
	Reason         string    `json:"reason,omitempty"`
	IgnoredColumns []string  `json:"ignored_columns,omitempty"`
	StagedAt       time.Time `json:"staged_at"`
}

// Correction is a label sent by a client for one instance.
type Correction struct {
	ID      string `json:"id"`
	Dataset string `json:"dataset"`
	// Fields are the instance's values as text, by column name.
	Fields       map[string]string `json:"fields"`
	Label        string            `json:"label"`
	PredictionID string            `json:"prediction_id,omitempty"`
	ReceivedAt   time.Time         `json:"received_at"`
}

// VersionSource is one source's share of a version.
type VersionSource struct {
	IngestID string `json:"ingest_id"`
	Source   Source `json:"source"`
	// Rows are the source's rows new to the dataset; Duplicate, its rows
	// that were in it already (or earlier in the source).
	Rows      int `json:"rows"`
	Duplicate int `json:"duplicate"`
}

// Version is an immutable dataset version: its parent's rows plus new ones.
type Version struct {
	Dataset string `json:"dataset"`
	Number  int    `json:"number"`
	// Hash is SHA-256 over the parent's hash and this version's new rows,
	// so it names the whole content.
	Hash       string `json:"hash"`
	Parent     int    `json:"parent"`
	ParentHash string `json:"parent_hash,omitempty"`
	Rows       int    `json:"rows"`
	TrainRows  int    `json:"train_rows"`
	TestRows   int    `json:"test_rows"`
	NewRows    int    `json:"new_rows"`
	// Duplicate counts the batch's rows dropped as already in the dataset.
	// A version whose rows were all duplicates has its parent's hash.
	Duplicate int `json:"duplicate"`
	// Blobs hold the rows in order: the parent's blobs, then this version's
	// new rows (staged CSV).
	Blobs []string `json:"blobs"`
	// BlobRows and BlobHashes are each blob's row count and SHA-256, in
	// Blobs' order, so a reader can tell a truncated or altered blob
	// (absent on versions cut before they were recorded).
	BlobRows   []int    `json:"blob_rows,omitempty"`
	BlobHashes []string `json:"blob_hashes,omitempty"`
	// Sources are the sources new in this version.
	Sources []VersionSource `json:"sources"`
	// Specs are the model spec hashes defined when the version was cut:
	// each gets a run.
	Specs     []string  `json:"specs"`
	CreatedAt time.Time `json:"created_at"`
}

// DuplicateBatch is a batch of sources that added no row: every row was
// in version Of already. It takes the sources out of the waiting rows
// without cutting an empty version (nothing would train on it).
type DuplicateBatch struct {
	ID      string `json:"id"` // names the batch by its parent and sources
	Dataset string `json:"dataset"`
	// Of is the version that holds the rows already (the batch's parent).
	Of      int             `json:"of"`
	OfHash  string          `json:"of_hash"`
	Sources []VersionSource `json:"sources"`
	// Duplicate counts the batch's rows.
	Duplicate int       `json:"duplicate"`
	CreatedAt time.Time `json:"created_at"`
}

// Metrics are scores on held-out rows: a regression's (rmse, mae, r2, as
// events carry them) and, for a classifier, its classification scores,
// which appear in the JSON beside them (and are absent for regression, so
// a regression run's JSON is what it was).
type Metrics struct {
	events.Metrics
	*Classification
}

// Classification holds a classifier's scores on held-out rows (the
// regression fields are 0 then). Per-class lists follow Classes.
type Classification struct {
	Accuracy float64 `json:"accuracy"`
	F1Macro  float64 `json:"f1_macro"`
	LogLoss  float64 `json:"log_loss"`
	// ROCAUC of the second class's probability: two classes only, and nil
	// when a class is absent from the rows.
	ROCAUC    *float64  `json:"roc_auc,omitempty"`
	Classes   []string  `json:"classes"`
	Precision []float64 `json:"precision"`
	Recall    []float64 `json:"recall"`
	F1        []float64 `json:"f1"`
	// Confusion[t][p] counts rows of true class t predicted as p.
	Confusion [][]int `json:"confusion"`
}

// Fit is how an iterative fit went (logistic runs; absent for linear,
// which is solved in closed form).
type Fit struct {
	Iterations int  `json:"iterations"`
	Converged  bool `json:"converged"`
	// WarmStart is the run whose model the fit started from ("" for a
	// cold start).
	WarmStart string `json:"warm_start,omitempty"`
}

// Event is the metrics as events carry them (regression scores and rows).
func (m Metrics) Event() events.Metrics { return m.Metrics }

// Run is one model spec fitted on one dataset version.
type Run struct {
	ID          string    `json:"id"` // RunID(spec hash, version hash)
	Dataset     string    `json:"dataset"`
	Spec        string    `json:"spec"`
	SpecHash    string    `json:"spec_hash"`
	Version     int       `json:"version"`
	VersionHash string    `json:"version_hash"`
	TrainRows   int       `json:"train_rows"`
	Metrics     Metrics   `json:"metrics"`
	Fit         *Fit      `json:"fit,omitempty"`
	Artifact    string    `json:"artifact"` // blob name
	ArtifactURI string    `json:"artifact_uri"`
	Checksum    string    `json:"checksum"`
	DurationMS  float64   `json:"duration_ms"`
	CodeVersion string    `json:"code_version"`
	CreatedAt   time.Time `json:"created_at"`
	// FittedFrom is what the model was fitted from: FitStatistics (the
	// version's sufficient statistics, reading no rows) or FitRows.
	FittedFrom string `json:"fitted_from,omitempty"`
	// L2 is the ridge penalty a spec with "l2": "auto" chose.
	L2 *float64 `json:"l2,omitempty"`
}

// What a run was fitted from (Run.FittedFrom).
const (
	FitStatistics = "statistics"
	FitRows       = "rows"
)

// Decision statuses.
const (
	StatusPromoted         = "promoted"
	StatusRejected         = "rejected"
	StatusAwaitingApproval = "awaiting_approval"
)

// Decision records whether a run was promoted, and why.
type Decision struct {
	RunID    string `json:"run_id"`
	Dataset  string `json:"dataset"`
	Promoted bool   `json:"promoted"`
	// Status is promoted, rejected, or awaiting_approval: the challenger
	// won but the dataset holds automatic promotions (auto_promote false),
	// so a person decides (a manual promotion of the run approves it).
	Status   string `json:"status"`
	Sequence int64  `json:"sequence,omitempty"`
	// EvalVersion's test split scored both models.
	EvalVersion   int       `json:"eval_version"`
	Challenger    Metrics   `json:"challenger"`
	ChampionRunID string    `json:"champion_run_id,omitempty"`
	Champion      *Metrics  `json:"champion,omitempty"`
	Reason        string    `json:"reason"`
	DecidedAt     time.Time `json:"decided_at"`
}

// DecisionStatus is d.Status, derived for decisions recorded before it existed.
func (d Decision) DecisionStatus() string {
	switch {
	case d.Status != "":
		return d.Status
	case d.Promoted:
		return StatusPromoted
	default:
		return StatusRejected
	}
}

// Promotion is one entry of a dataset's append-only promotion history.
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

// DeadLetter is a message that failed for good.
type DeadLetter struct {
	MessageID     string            `json:"message_id"`
	Topic         string            `json:"topic"`
	Handler       string            `json:"handler"`
	Reason        string            `json:"reason"`
	CorrelationID string            `json:"correlation_id,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	Payload       string            `json:"payload"`
	At            time.Time         `json:"at"`
}

// Webhook delivery record kinds.
const (
	DeliveryAttempt = "attempt"
	DeliveryOutcome = "outcome"
	DeliveryClaim   = "claim" // an attempt about to be sent (WebhookClaims)
)

// Webhook delivery outcomes.
const (
	OutcomeDelivered = "delivered"
	OutcomeFailed    = "failed"
)

// WebhookDelivery is one line of the webhook delivery log: an attempt to
// POST an event to a URL, or the final outcome of a delivery.
type WebhookDelivery struct {
	// DeliveryID is stable per (URL, event): every retry carries it, so a
	// receiver deduplicates on it.
	DeliveryID string `json:"delivery_id"`
	Kind       string `json:"kind"` // attempt or outcome
	// URL is the endpoint without its query string or credentials.
	URL       string `json:"url"`
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	Dataset   string `json:"dataset"`
	// Attempt numbers attempts from 1; on an outcome, the attempts made.
	Attempt    int       `json:"attempt"`
	HTTPStatus int       `json:"http_status,omitempty"`
	Error      string    `json:"error,omitempty"`
	Outcome    string    `json:"outcome,omitempty"` // delivered or failed
	DurationMS float64   `json:"duration_ms,omitempty"`
	At         time.Time `json:"at"`
	// Payload is the body sent, on claims: a delivery whose sender died is
	// resumed from it, under the same delivery ID.
	Payload string `json:"payload,omitempty"`
}
