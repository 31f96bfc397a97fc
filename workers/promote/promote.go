// Package promote decides whether a newly trained model replaces the one
// being served. Challenger and champion are scored on the same rows — the
// test split of the newer of their two dataset versions — and the decision,
// promoted or not, is recorded with both scores and the reason. A promotion
// claims the next sequence number of its dataset by insert, so concurrent
// promoters produce a strictly increasing, gap-free history.
package promote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers"
	"github.com/refit-ml/refit/workers/stats"
)

// Worker is the promote worker.
type Worker struct {
	datasets workers.Datasets
	bucket   blob.Bucket
	reg      *registry.Registry
	pub      workers.Publisher
	log      *slog.Logger
	now      func() time.Time
	stats    *stats.Store

	mu    sync.Mutex
	cache map[string]*model.Predictor // by run ID; artifacts are immutable

	promotions, rejections *prometheus.CounterVec
	champion               *prometheus.GaugeVec
}

// New builds the worker.
func New(cfg workers.Deps) (*Worker, error) {
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("promote: %w", err)
	}
	w := &Worker{
		datasets: cfg.Datasets, bucket: cfg.Bucket, reg: cfg.Registry, pub: cfg.Publisher,
		log: cfg.Logger.With("component", "promote"), now: cfg.Now(), cache: map[string]*model.Predictor{},
		promotions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refit_promotions_total", Help: "Models promoted by this process.",
		}, []string{"dataset"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refit_challengers_rejected_total", Help: "Trained models not promoted.",
		}, []string{"dataset"}),
		champion: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refit_champion_metric", Help: "The champion's score on its promotion's evaluation rows.",
		}, []string{"dataset", "metric"}),
	}
	cfg.Metrics.MustRegister(w.promotions, w.rejections, w.champion)
	var err error
	if w.stats, err = stats.New(cfg.Bucket, w.log, cfg.Metrics, stats.WithVersions(cfg.Registry)); err != nil {
		return nil, fmt.Errorf("promote: %w", err)
	}
	return w, nil
}

// HandleTrained decides on one trained model.
func (w *Worker) HandleTrained(ctx context.Context, e *events.ModelTrained) error {
	d, ok := w.datasets.Get(e.Dataset)
	if !ok {
		return bus.Permanent(fmt.Errorf("unknown dataset %q", e.Dataset))
	}
	run, err := w.reg.Run(ctx, e.Dataset, e.RunID)
	if registry.IsNotFound(err) {
		return bus.Permanent(fmt.Errorf("run %s/%s not in the store", e.Dataset, e.RunID))
	}
	if err != nil {
		return err
	}
	_, err = w.decideVersionOf(ctx, d, run, e.CorrelationID)
	return err
}

// decideVersionOf decides run together with the other runs of its version.
// The specs a version lists are decided once, when each has a run or a
// recorded training failure, best first on the primary metric (ties by spec
// name): so which spec becomes the champion, and the history, do not depend
// on which run's event came first. Versions are decided in order, too: a
// version waits until the one before it is settled, and deciding a version
// goes on to the later versions that were waiting for it, so the history
// does not depend on which version's training finished first (a crashed
// trainer makes version 2 finish after version 3). A run of a spec the
// version does not list (added to the definition later, trained on the
// newest version only) is decided alone. It returns the IDs of the runs it
// decided or found waiting.
func (w *Worker) decideVersionOf(ctx context.Context, d *dataset.Definition, run registry.Run, correlation string) ([]string, error) {
	v, err := w.reg.Version(ctx, d.Name, run.Version)
	if err != nil {
		return nil, err
	}
	if run.VersionHash != v.Hash || !slices.Contains(listedSpecs(d, v), run.SpecHash) {
		return []string{run.ID}, w.decide(ctx, d, run, correlation)
	}
	runs, err := w.reg.Runs(ctx, d.Name)
	if err != nil {
		return nil, err
	}
	siblings, ready, err := w.trainedRuns(ctx, d, v, runs)
	if err != nil {
		return nil, err
	}
	ids := runIDsOf(siblings)
	if !ready {
		w.log.Debug("waiting for the version's other specs", "dataset", d.Name, "version", v.Number, "run", run.ID)
		return ids, nil
	}
	settled, err := w.settled(ctx, d, v.Number-1)
	if err != nil {
		return nil, err
	}
	if !settled {
		w.log.Debug("waiting for the previous version's decisions", "dataset", d.Name, "version", v.Number, "run", run.ID)
		return ids, nil
	}
	for {
		for _, r := range Rank(d.Promotion.PrimaryMetric, siblings) {
			if err := w.decide(ctx, d, r, correlation); err != nil {
				return nil, err
			}
		}
		// The next version may have been waiting for this one. Its runs are
		// listed after this version's decisions are recorded, so a run whose
		// own handler saw this version unsettled is seen here.
		next, err := w.reg.Version(ctx, d.Name, v.Number+1)
		if registry.IsNotFound(err) {
			return ids, nil
		}
		if err != nil {
			return nil, err
		}
		if runs, err = w.reg.Runs(ctx, d.Name); err != nil {
			return nil, err
		}
		if siblings, ready, err = w.trainedRuns(ctx, d, next, runs); err != nil {
			return nil, err
		}
		if !ready {
			return ids, nil
		}
		v = next
		ids = append(ids, runIDsOf(siblings)...)
	}
}

// trainedRuns are v's runs of the specs it lists; ready is true when every
// listed spec has a run or a recorded training failure.
func (w *Worker) trainedRuns(ctx context.Context, d *dataset.Definition, v registry.Version, runs []registry.Run) ([]registry.Run, bool, error) {
	listed := listedSpecs(d, v)
	var siblings []registry.Run
	for _, r := range runs {
		if r.Version == v.Number && r.VersionHash == v.Hash && slices.Contains(listed, r.SpecHash) {
			siblings = append(siblings, r)
		}
	}
	for _, h := range listed {
		if slices.ContainsFunc(siblings, func(r registry.Run) bool { return r.SpecHash == h }) {
			continue
		}
		if failed, err := w.failed(ctx, d, h, v); err != nil || !failed {
			return siblings, false, err
		}
	}
	return siblings, true, nil
}

// settled is true when every spec version n lists has a decision or a
// recorded training failure (and for n < 1, or a version not in the store).
// Versions are decided in order, so version n settled means every earlier
// one is.
func (w *Worker) settled(ctx context.Context, d *dataset.Definition, n int) (bool, error) {
	if n < 1 {
		return true, nil
	}
	v, err := w.reg.Version(ctx, d.Name, n)
	if registry.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	for _, h := range listedSpecs(d, v) {
		_, err := w.reg.Decision(ctx, d.Name, registry.RunID(h, v.Hash))
		if err == nil {
			continue
		}
		if !registry.IsNotFound(err) {
			return false, err
		}
		if failed, err := w.failed(ctx, d, h, v); err != nil || !failed {
			return false, err
		}
	}
	return true, nil
}

// failed is true when the train worker recorded that spec h cannot be
// trained on v.
func (w *Worker) failed(ctx context.Context, d *dataset.Definition, h string, v registry.Version) (bool, error) {
	_, err := w.bucket.Stat(ctx, workers.FailedRunKey(d.Name, registry.RunID(h, v.Hash)))
	if errors.Is(err, blob.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func runIDsOf(runs []registry.Run) []string {
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	return ids
}

// listedSpecs are the hashes of the specs v was cut with that the
// definition still has: those the train worker trains on v whatever comes
// later.
func listedSpecs(d *dataset.Definition, v registry.Version) []string {
	var out []string
	for _, m := range d.Models {
		if h := m.Hash(); slices.Contains(v.Specs, h) {
			out = append(out, h)
		}
	}
	return out
}

// Reconcile decides runs whose event was lost, oldest version first, and
// re-announces each dataset's champion (gateways ignore what they have).
func (w *Worker) Reconcile(ctx context.Context) error {
	var errs []error
	for _, name := range w.datasets.Names() {
		d, _ := w.datasets.Get(name)
		if err := w.reconcileDataset(ctx, d); err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func (w *Worker) reconcileDataset(ctx context.Context, d *dataset.Definition) error {
	runs, err := w.reg.Runs(ctx, d.Name)
	if err != nil {
		return err
	}
	decisions, err := w.reg.Decisions(ctx, d.Name)
	if err != nil {
		return err
	}
	decided := map[string]bool{}
	for _, dec := range decisions {
		decided[dec.RunID] = true
	}
	runs = slices.DeleteFunc(runs, func(r registry.Run) bool { return decided[r.ID] })
	slices.SortFunc(runs, func(a, b registry.Run) int {
		if a.Version != b.Version {
			return a.Version - b.Version
		}
		return strings.Compare(a.Spec, b.Spec)
	})
	handled := map[string]bool{}
	for _, run := range runs {
		if handled[run.ID] {
			continue // decided with a sibling, or waiting with it for the next pass
		}
		ids, err := w.decideVersionOf(ctx, d, run, "")
		if err != nil {
			return err
		}
		for _, id := range ids {
			handled[id] = true
		}
	}
	champ, err := w.reg.LatestPromotion(ctx, d.Name)
	if registry.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return w.announce(ctx, champ, "")
}

// ActorAuto is the actor of automatic promotions.
const ActorAuto = "auto"

// maxRaces bounds how often a promoter retries after losing the sequence
// number to a concurrent promotion.
const maxRaces = 20

// decide decides one run in three steps, each safe to repeat after a crash
// and against a concurrent promoter of the same run (two replicas, a
// redelivered event, a version decided by the handler of the one before):
// the verdict is recorded first, as an intent under the run's unique key,
// so the first promoter's verdict is everyone's; a promotion it calls for
// is appended once (an earlier attempt's is found in the history by its
// run); then the decision, with that promotion's sequence, is recorded and
// announced. Without the intent two promoters could score the run against
// different champions (a person promoted in between), one appending a
// promotion and the other recording a rejection.
func (w *Worker) decide(ctx context.Context, d *dataset.Definition, run registry.Run, correlation string) error {
	if correlation == "" {
		correlation = run.ID
	}
	if dec, err := w.reg.Decision(ctx, d.Name, run.ID); err == nil {
		return w.announceDecided(ctx, d, dec, correlation)
	} else if !registry.IsNotFound(err) {
		return err
	}
	dec, err := w.intent(ctx, d, run)
	if err != nil {
		return err
	}
	if !dec.Promoted {
		return w.record(ctx, d, dec, nil, correlation)
	}
	prom, err := w.promoteOnce(ctx, d, run, dec)
	if err != nil {
		return err
	}
	dec.Sequence = prom.Sequence
	return w.record(ctx, d, dec, &prom, correlation)
}

// intent returns the run's recorded verdict, or decides and records one.
// A promoted verdict carries the sequence only when the run is the
// champion already.
func (w *Worker) intent(ctx context.Context, d *dataset.Definition, run registry.Run) (registry.Decision, error) {
	dec, err := w.reg.DecisionIntent(ctx, d.Name, run.ID)
	if !registry.IsNotFound(err) {
		return dec, err
	}
	champ, err := w.reg.LatestPromotion(ctx, d.Name)
	hasChamp := err == nil
	if err != nil && !registry.IsNotFound(err) {
		return registry.Decision{}, err
	}
	if hasChamp && champ.RunID == run.ID {
		// Promoted by hand before the automatic decision (or by an attempt
		// of an older Refit that stopped before recording its decision).
		reason := "promoted (recorded after a restart)"
		if champ.Actor != ActorAuto {
			reason = fmt.Sprintf("promoted by %s (promotion #%d) before the automatic decision", champ.Actor, champ.Sequence)
		}
		dec = registry.Decision{
			RunID: run.ID, Dataset: d.Name, Promoted: true, Status: registry.StatusPromoted, Sequence: champ.Sequence,
			EvalVersion: champ.Version, Challenger: champ.Metrics, Reason: reason, DecidedAt: w.now(),
		}
	} else if dec, err = w.evaluate(ctx, d, run, champ, hasChamp); err != nil {
		return registry.Decision{}, err
	}
	err = w.reg.AddDecisionIntent(ctx, dec)
	if registry.IsDuplicate(err) {
		return w.reg.DecisionIntent(ctx, d.Name, run.ID) // a concurrent promoter's verdict is the one
	}
	return dec, err
}

// promoteOnce appends the promotion a promoted verdict calls for, under
// the next sequence number, unless an earlier attempt did: a run has at
// most one automatic promotion.
func (w *Worker) promoteOnce(ctx context.Context, d *dataset.Definition, run registry.Run, dec registry.Decision) (registry.Promotion, error) {
	if dec.Sequence > 0 {
		return w.reg.Promotion(ctx, d.Name, dec.Sequence)
	}
	for range maxRaces {
		history, err := w.reg.Promotions(ctx, d.Name)
		if err != nil {
			return registry.Promotion{}, err
		}
		if i := slices.IndexFunc(history, func(p registry.Promotion) bool { return p.RunID == run.ID && p.Actor == ActorAuto }); i >= 0 {
			return history[i], nil
		}
		p := registry.Promotion{
			Dataset: d.Name, Sequence: 1, RunID: run.ID, Spec: run.Spec, Version: run.Version, VersionHash: run.VersionHash,
			ArtifactURI: run.ArtifactURI, Artifact: run.Artifact, Checksum: run.Checksum, Metrics: dec.Challenger,
			Actor: ActorAuto, Reason: dec.Reason, PromotedAt: dec.DecidedAt,
		}
		if n := len(history); n > 0 {
			p.Sequence, p.PreviousRunID = history[n-1].Sequence+1, history[n-1].RunID
		}
		err = w.reg.AddPromotion(ctx, p)
		if registry.IsDuplicate(err) {
			w.log.Info("lost the promotion race; appending again", "dataset", d.Name, "run", run.ID, "sequence", p.Sequence)
			continue
		}
		return p, err
	}
	return registry.Promotion{}, fmt.Errorf("promote %s: lost the race for a sequence number %d times", run.ID, maxRaces)
}

// evaluate scores challenger and champion on the same rows and decides.
func (w *Worker) evaluate(ctx context.Context, d *dataset.Definition, run registry.Run, champ registry.Promotion, hasChamp bool) (registry.Decision, error) {
	evalVersion := run.Version
	if hasChamp && champ.Version > evalVersion {
		evalVersion = champ.Version
	}
	v, err := w.reg.Version(ctx, d.Name, evalVersion)
	if err != nil {
		return registry.Decision{}, err
	}
	scored := []scoredRun{{run.ID, run.Artifact, run.Checksum}}
	if hasChamp {
		scored = append(scored, scoredRun{champ.RunID, champ.Artifact, champ.Checksum})
	}
	// From the version's statistics when sums can score them, else both
	// models in one read of the test split.
	scores, fromStats, err := w.scoreFromStats(ctx, d, v, scored)
	if err == nil && !fromStats {
		scores, err = w.score(ctx, d, scored, d.ScanSplit(ctx, w.bucket, v.Blobs, dataset.TestSplit))
	}
	if err != nil {
		return registry.Decision{}, err
	}
	challenger := scores[0]
	dec := registry.Decision{RunID: run.ID, Dataset: d.Name, Status: registry.StatusRejected, EvalVersion: evalVersion,
		Challenger: challenger, DecidedAt: w.now()}
	var champion *registry.Metrics
	if hasChamp {
		champion = &scores[1]
		dec.ChampionRunID, dec.Champion = champ.RunID, champion
	}
	verdict := Rule(d.Name, d.Promotion, challenger, champion, evalVersion)
	dec.Status, dec.Reason = verdict.Status, verdict.Reason
	dec.Promoted = verdict.Promote()
	return dec, nil
}

// scoredRun names a model to score.
type scoredRun struct{ id, artifact, checksum string }

// score scores the runs' models on the rows of test, in one read.
func (w *Worker) score(ctx context.Context, d *dataset.Definition, runs []scoredRun, test dataset.Scan) ([]registry.Metrics, error) {
	ps := make([]*model.Predictor, len(runs))
	for i, r := range runs {
		p, err := w.predictor(ctx, d, r.id, r.artifact, r.checksum)
		if err != nil {
			return nil, err
		}
		ps[i] = p
	}
	ms, err := model.EvaluateEach(ctx, ps, test)
	if err != nil {
		return nil, fmt.Errorf("score runs %s: %w", runIDs(runs), err)
	}
	out := make([]registry.Metrics, len(runs))
	for i, m := range ms {
		if math.IsNaN(m.RMSE) {
			return nil, bus.Permanent(fmt.Errorf("score run %s: NaN", runs[i].id))
		}
		out[i] = workers.RunMetrics(m)
	}
	return out, nil
}

func runIDs(runs []scoredRun) string {
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.id
	}
	return strings.Join(ids, ", ")
}

func (w *Worker) predictor(ctx context.Context, d *dataset.Definition, runID, artifact, checksum string) (*model.Predictor, error) {
	w.mu.Lock()
	p, ok := w.cache[runID]
	w.mu.Unlock()
	if ok {
		return p, nil
	}
	art, err := model.Load(ctx, w.bucket, artifact, checksum)
	if errors.Is(err, model.ErrInvalidArtifact) {
		return nil, bus.Permanent(err)
	}
	if err != nil {
		return nil, err
	}
	if p, err = art.Predictor(d); err != nil {
		return nil, bus.Permanent(err)
	}
	w.mu.Lock()
	if len(w.cache) >= 32 {
		clear(w.cache)
	}
	w.cache[runID] = p
	w.mu.Unlock()
	return p, nil
}

func (w *Worker) record(ctx context.Context, d *dataset.Definition, dec registry.Decision, prom *registry.Promotion, correlation string) error {
	err := w.reg.AddDecision(ctx, dec)
	if registry.IsDuplicate(err) {
		return nil // recorded by a racing attempt, which also announced it
	}
	if err != nil {
		return err
	}
	w.log.Info("decided", "dataset", d.Name, "run", dec.RunID, "status", dec.Status, "sequence", dec.Sequence,
		"reason", dec.Reason, "correlation_id", correlation)
	if !dec.Promoted {
		w.rejections.WithLabelValues(d.Name).Inc()
		return nil
	}
	w.promotions.WithLabelValues(d.Name).Inc()
	for _, m := range metricTable() {
		if slices.Contains(d.Metrics(), m.name) { // the task's metrics only
			w.champion.WithLabelValues(d.Name, m.name).Set(m.value(prom.Metrics))
		}
	}
	return w.announce(ctx, *prom, correlation)
}

// announceDecided repeats a promotion event for a decided run (the first
// may have been lost). Subscribers keep the highest sequence, so an old
// promotion repeated changes nothing.
func (w *Worker) announceDecided(ctx context.Context, d *dataset.Definition, dec registry.Decision, correlation string) error {
	if !dec.Promoted {
		return nil
	}
	champ, err := w.reg.LatestPromotion(ctx, d.Name)
	if err != nil {
		return err
	}
	if champ.Sequence != dec.Sequence {
		return nil // superseded
	}
	return w.announce(ctx, champ, correlation)
}

func (w *Worker) announce(ctx context.Context, p registry.Promotion, correlation string) error {
	if correlation == "" {
		correlation = p.RunID
	}
	return w.pub.Publish(ctx, PromotedEvent(p, correlation))
}

// PromotedEvent is the model.promoted event for a promotion.
func PromotedEvent(p registry.Promotion, correlation string) *events.ModelPromoted {
	return &events.ModelPromoted{
		Meta:     events.Meta{ID: fmt.Sprintf("%s/promotion/%d", p.Dataset, p.Sequence), Dataset: p.Dataset, Time: p.PromotedAt, CorrelationID: correlation},
		Sequence: p.Sequence, ModelID: p.RunID, Spec: p.Spec, ArtifactURI: p.ArtifactURI, Checksum: p.Checksum,
		DatasetVersion: p.Version, DatasetHash: p.VersionHash, Metrics: p.Metrics.Event(), PreviousModelID: p.PreviousRunID,
		Actor: p.Actor, Reason: p.Reason, PromotedAt: p.PromotedAt,
	}
}
