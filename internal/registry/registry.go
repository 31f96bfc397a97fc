package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/refit-ml/refit/internal/store"
)

// Collections.
const (
	colIngests     = "ingests"
	colCorrections = "corrections"
	colVersions    = "versions"
	colRuns        = "runs"
	colDecisions   = "decisions"
	colIntents     = "decision_intents"
	colPromotions  = "promotions"
	colDeadLetters = "deadletters"
	colWebhooks    = "webhook_deliveries"
	colDuplicates  = "duplicate_batches"
	colClaims      = "webhook_claims"
)

// Collections lists every collection, for setup (indexes) and tests.
func Collections() []string {
	return []string{colIngests, colCorrections, colVersions, colRuns, colDecisions, colIntents, colPromotions, colDeadLetters, colWebhooks, colReplays, colDuplicates, colClaims}
}

// Registry reads and writes Refit's records.
type Registry struct {
	docs store.Docs
}

// New builds a registry on a document store.
func New(docs store.Docs) *Registry { return &Registry{docs: docs} }

// IngestID names a source's ingest (and its staged chunk).
func IngestID(sourceKey string) string { return shortHash(sourceKey) }

// RunID names the run of a spec on a version's content: the same spec on
// the same data is the same run.
func RunID(specHash, versionHash string) string { return shortHash(specHash + "/" + versionHash) }

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

func versionKey(ds string, n int) string     { return fmt.Sprintf("%s/%09d", ds, n) }
func promotionKey(ds string, s int64) string { return fmt.Sprintf("%s/%012d", ds, s) }
func key(ds, id string) string               { return ds + "/" + id }

func (r *Registry) insert(ctx context.Context, col, k string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", col, k, err)
	}
	if err := r.docs.Insert(ctx, col, k, b); err != nil {
		return fmt.Errorf("insert %s %s: %w", col, k, err)
	}
	return nil
}

func get[T any](ctx context.Context, r *Registry, col, k string) (T, error) {
	var v T
	b, err := r.docs.Get(ctx, col, k)
	if err != nil {
		return v, fmt.Errorf("get %s %s: %w", col, k, err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("decode %s %s: %w", col, k, err)
	}
	return v, nil
}

func list[T any](ctx context.Context, r *Registry, col, prefix string) ([]T, error) {
	docs, err := r.docs.List(ctx, col, prefix)
	if err != nil {
		return nil, fmt.Errorf("list %s %s: %w", col, prefix, err)
	}
	out := make([]T, 0, len(docs))
	for _, d := range docs {
		var v T
		if err := json.Unmarshal(d.Body, &v); err != nil {
			return nil, fmt.Errorf("decode %s %s: %w", col, d.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func last[T any](ctx context.Context, r *Registry, col, prefix string) (T, error) {
	var v T
	d, err := r.docs.Last(ctx, col, prefix)
	if err != nil {
		return v, fmt.Errorf("last %s %s: %w", col, prefix, err)
	}
	if err := json.Unmarshal(d.Body, &v); err != nil {
		return v, fmt.Errorf("decode %s %s: %w", col, d.Key, err)
	}
	return v, nil
}

// IsDuplicate reports a lost insert race (or a repeat).
func IsDuplicate(err error) bool { return errors.Is(err, store.ErrDuplicate) }

// IsNotFound reports a missing record.
func IsNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// RecordIngest adds a ledger entry; the first one for a source wins.
func (r *Registry) RecordIngest(ctx context.Context, in Ingest) error {
	return r.insert(ctx, colIngests, key(in.Dataset, in.ID), in)
}

// Ingest returns a ledger entry.
func (r *Registry) Ingest(ctx context.Context, ds, id string) (Ingest, error) {
	return get[Ingest](ctx, r, colIngests, key(ds, id))
}

// Ingests returns a dataset's ledger (in ID order).
func (r *Registry) Ingests(ctx context.Context, ds string) ([]Ingest, error) {
	return list[Ingest](ctx, r, colIngests, ds+"/")
}

// AddCorrection stores a correction.
func (r *Registry) AddCorrection(ctx context.Context, c Correction) error {
	return r.insert(ctx, colCorrections, key(c.Dataset, c.ID), c)
}

// Correction returns one correction.
func (r *Registry) Correction(ctx context.Context, ds, id string) (Correction, error) {
	return get[Correction](ctx, r, colCorrections, key(ds, id))
}

// Corrections returns a dataset's corrections.
func (r *Registry) Corrections(ctx context.Context, ds string) ([]Correction, error) {
	return list[Correction](ctx, r, colCorrections, ds+"/")
}

// AddVersion cuts a version; exactly one writer gets each number.
func (r *Registry) AddVersion(ctx context.Context, v Version) error {
	return r.insert(ctx, colVersions, versionKey(v.Dataset, v.Number), v)
}

// Version returns version n.
func (r *Registry) Version(ctx context.Context, ds string, n int) (Version, error) {
	return get[Version](ctx, r, colVersions, versionKey(ds, n))
}

// LatestVersion returns the newest version (store.ErrNotFound if none).
func (r *Registry) LatestVersion(ctx context.Context, ds string) (Version, error) {
	return last[Version](ctx, r, colVersions, ds+"/")
}

// Versions returns every version, oldest first.
func (r *Registry) Versions(ctx context.Context, ds string) ([]Version, error) {
	return list[Version](ctx, r, colVersions, ds+"/")
}

// AddDuplicateBatch records a batch whose rows were all in the dataset
// already; one per batch (a repeat is store.ErrDuplicate).
func (r *Registry) AddDuplicateBatch(ctx context.Context, b DuplicateBatch) error {
	return r.insert(ctx, colDuplicates, versionKey(b.Dataset, b.Of)+"/"+b.ID, b)
}

// DuplicateBatches returns a dataset's duplicate batches, oldest first.
func (r *Registry) DuplicateBatches(ctx context.Context, ds string) ([]DuplicateBatch, error) {
	return list[DuplicateBatch](ctx, r, colDuplicates, ds+"/")
}

// AddRun records a run; one per (spec, data).
func (r *Registry) AddRun(ctx context.Context, run Run) error {
	return r.insert(ctx, colRuns, key(run.Dataset, run.ID), run)
}

// Run returns one run.
func (r *Registry) Run(ctx context.Context, ds, id string) (Run, error) {
	return get[Run](ctx, r, colRuns, key(ds, id))
}

// Runs returns a dataset's runs (in ID order).
func (r *Registry) Runs(ctx context.Context, ds string) ([]Run, error) {
	return list[Run](ctx, r, colRuns, ds+"/")
}

// AddDecision records the promotion decision for a run; one per run.
func (r *Registry) AddDecision(ctx context.Context, d Decision) error {
	return r.insert(ctx, colDecisions, key(d.Dataset, d.RunID), d)
}

// AddDecisionIntent records how a run is to be decided before anything of
// the decision is written; one per run, so concurrent promoters of the same
// run (two replicas, a redelivered event) all carry out the first one's
// verdict instead of each writing its own.
func (r *Registry) AddDecisionIntent(ctx context.Context, d Decision) error {
	return r.insert(ctx, colIntents, key(d.Dataset, d.RunID), d)
}

// DecisionIntent returns a run's decision intent.
func (r *Registry) DecisionIntent(ctx context.Context, ds, runID string) (Decision, error) {
	return get[Decision](ctx, r, colIntents, key(ds, runID))
}

// Decision returns a run's decision.
func (r *Registry) Decision(ctx context.Context, ds, runID string) (Decision, error) {
	return get[Decision](ctx, r, colDecisions, key(ds, runID))
}

// Decisions returns a dataset's decisions.
func (r *Registry) Decisions(ctx context.Context, ds string) ([]Decision, error) {
	return list[Decision](ctx, r, colDecisions, ds+"/")
}

// AddPromotion appends to the promotion history; exactly one writer gets
// each sequence number.
func (r *Registry) AddPromotion(ctx context.Context, p Promotion) error {
	return r.insert(ctx, colPromotions, promotionKey(p.Dataset, p.Sequence), p)
}

// maxPromotionRaces bounds how often AppendPromotion retries after losing
// the sequence number to a concurrent promotion.
const maxPromotionRaces = 50

// AppendPromotion appends the promotion next builds from the current
// champion (ok false when there is none) under the next sequence number, by
// insert: when a concurrent promotion takes the number first, it reads the
// new champion and asks next again. next sets everything but Dataset and
// Sequence.
func (r *Registry) AppendPromotion(ctx context.Context, ds string, next func(latest Promotion, ok bool) (Promotion, error)) (Promotion, error) {
	for range maxPromotionRaces {
		latest, err := r.LatestPromotion(ctx, ds)
		ok := err == nil
		if err != nil && !IsNotFound(err) {
			return Promotion{}, err
		}
		p, err := next(latest, ok)
		if err != nil {
			return Promotion{}, err
		}
		p.Dataset, p.Sequence = ds, latest.Sequence+1
		err = r.AddPromotion(ctx, p)
		if IsDuplicate(err) {
			continue
		}
		if err != nil {
			return Promotion{}, err
		}
		return p, nil
	}
	return Promotion{}, fmt.Errorf("append promotion to %s: lost the race for a sequence number %d times", ds, maxPromotionRaces)
}

// Promotion returns the promotion of ds with sequence number seq.
func (r *Registry) Promotion(ctx context.Context, ds string, seq int64) (Promotion, error) {
	return get[Promotion](ctx, r, colPromotions, promotionKey(ds, seq))
}

// LatestPromotion returns the champion's promotion (store.ErrNotFound if none).
func (r *Registry) LatestPromotion(ctx context.Context, ds string) (Promotion, error) {
	return last[Promotion](ctx, r, colPromotions, ds+"/")
}

// Promotions returns the history, oldest first.
func (r *Registry) Promotions(ctx context.Context, ds string) ([]Promotion, error) {
	return list[Promotion](ctx, r, colPromotions, ds+"/")
}

// AddDeadLetter records a dead-lettered message (once per message ID).
func (r *Registry) AddDeadLetter(ctx context.Context, d DeadLetter) error {
	err := r.insert(ctx, colDeadLetters, d.MessageID+"/"+d.Handler, d)
	if IsDuplicate(err) {
		return nil
	}
	return err
}

// DeadLetters returns every dead letter.
func (r *Registry) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	return list[DeadLetter](ctx, r, colDeadLetters, "")
}

func deliveryKey(id, kind string, attempt int) string {
	if kind == DeliveryOutcome {
		return id + "/outcome"
	}
	return fmt.Sprintf("%s/attempt/%04d", id, attempt)
}

// AddWebhookDelivery logs an attempt (one per attempt number) or the final
// outcome (one per delivery: a second is ErrDuplicate).
func (r *Registry) AddWebhookDelivery(ctx context.Context, d WebhookDelivery) error {
	return r.insert(ctx, colWebhooks, deliveryKey(d.DeliveryID, d.Kind, d.Attempt), d)
}

// WebhookDelivery returns a delivery's log: its attempts in order, then
// its outcome when there is one.
func (r *Registry) WebhookDelivery(ctx context.Context, deliveryID string) ([]WebhookDelivery, error) {
	return list[WebhookDelivery](ctx, r, colWebhooks, deliveryID+"/")
}

// WebhookDeliveries returns the whole delivery log, by delivery.
func (r *Registry) WebhookDeliveries(ctx context.Context) ([]WebhookDelivery, error) {
	return list[WebhookDelivery](ctx, r, colWebhooks, "")
}

// ClaimWebhookAttempt claims attempt c.Attempt of delivery c.DeliveryID
// before it is sent: exactly one sender gets each attempt number (the
// others get store.ErrDuplicate), so two dispatchers never both POST it.
func (r *Registry) ClaimWebhookAttempt(ctx context.Context, c WebhookDelivery) error {
	return r.insert(ctx, colClaims, deliveryKey(c.DeliveryID, DeliveryAttempt, c.Attempt), c)
}

// WebhookClaims returns the claims of one delivery (every delivery when
// deliveryID is empty), by delivery then attempt.
func (r *Registry) WebhookClaims(ctx context.Context, deliveryID string) ([]WebhookDelivery, error) {
	prefix := ""
	if deliveryID != "" {
		prefix = deliveryID + "/"
	}
	return list[WebhookDelivery](ctx, r, colClaims, prefix)
}
