package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers/promote"
	"github.com/refit-ml/refit/workers/serve"
)

// definition builds a housing definition from the shipped one: change
// edits the decoded JSON (models, promotion, ...).
func definition(t *testing.T, batch int, change func(raw map[string]any)) *dataset.Definition {
	t.Helper()
	b, err := os.ReadFile("../../schemas/datasets/housing.json")
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	raw["batch_size"] = batch
	change(raw)
	b, _ = json.Marshal(raw)
	d, err := dataset.Parse(b)
	require.NoError(t, err)
	return d
}

// numericOnly is a weak spec: the numeric columns, no location at all.
func numericOnly(raw map[string]any) map[string]any {
	onehot := raw["models"].([]any)[0].(map[string]any)
	var features []any
	for _, f := range onehot["features"].([]any) {
		if f.(map[string]any)["transform"] == "numeric" {
			features = append(features, f)
		}
	}
	return map[string]any{"name": "linear-numeric", "kind": "linear", "features": features}
}

func TestAddedSpecTrainsOnTheLatestVersionOnly(t *testing.T) {
	var shipped []any
	twoWeakSpecs := definition(t, 150, func(raw map[string]any) {
		shipped = raw["models"].([]any)
		raw["models"] = []any{shipped[1], numericOnly(raw)} // hashed and numeric-only
	})
	_, bucket, docs := freshPipeline(t, 150)
	p := newPipeline(t, twoWeakSpecs, bucket, docs)
	play(p, scenario())
	ctx := context.Background()
	before, err := p.reg.Runs(ctx, "housing")
	require.NoError(t, err)
	versions, err := p.reg.Versions(ctx, "housing")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(versions), 3)
	require.Len(t, before, 2*len(versions))
	champ, err := p.reg.LatestPromotion(ctx, "housing")
	require.NoError(t, err)
	require.Equal(t, "linear-hashed", champ.Spec)

	// The dataset file gains linear-onehot; the workers restart with it on
	// the same storage and reconcile.
	threeSpecs := definition(t, 150, func(raw map[string]any) {
		raw["models"] = []any{shipped[1], numericOnly(raw), shipped[0]}
	})
	p = newPipeline(t, threeSpecs, bucket, docs)
	p.reconcile()
	p.drain()

	after, err := p.reg.Runs(ctx, "housing")
	require.NoError(t, err)
	require.Len(t, after, len(before)+1, "exactly one new run")
	var added registry.Run
	for _, r := range after {
		if !slices.ContainsFunc(before, func(b registry.Run) bool { return b.ID == r.ID }) {
			added = r
		}
	}
	require.Equal(t, "linear-onehot", added.Spec)
	require.Equal(t, versions[len(versions)-1].Number, added.Version, "on the latest version only")
	again, err := p.reg.Versions(ctx, "housing")
	require.NoError(t, err)
	require.Equal(t, versions, again, "no re-ingest, no new version")

	champ, err = p.reg.LatestPromotion(ctx, "housing")
	require.NoError(t, err)
	require.Equal(t, added.ID, champ.RunID, "the better spec becomes champion")
	dec, err := p.reg.Decision(ctx, "housing", added.ID)
	require.NoError(t, err)
	require.Equal(t, registry.StatusPromoted, dec.Status)
	require.Equal(t, added.Version, dec.EvalVersion, "scored on the same rows as the champion")
}

func TestPromotionRulesOfTheDefinition(t *testing.T) {
	tests := []struct {
		name      string
		promotion map[string]any
		// want is each spec's decision status and a part of its reason.
		want     map[string][2]string
		champion string
	}{
		{"an r2 floor no model reaches", map[string]any{"min": map[string]any{"r2": 0.999}},
			map[string][2]string{
				"linear-onehot": {registry.StatusRejected, "below promotion.min.r2 = 0.999"},
				"linear-hashed": {registry.StatusRejected, "below promotion.min.r2 = 0.999"},
			}, ""},
		{"an rmse ceiling only one-hot meets", map[string]any{"max": map[string]any{"rmse": 32000}},
			map[string][2]string{
				"linear-onehot": {registry.StatusPromoted, "first model"},
				"linear-hashed": {registry.StatusRejected, "above promotion.max.rmse = 32000"},
			}, "linear-onehot"},
		{"held for approval", map[string]any{"auto_promote": false},
			map[string][2]string{
				"linear-onehot": {registry.StatusAwaitingApproval, "awaiting approval"},
				"linear-hashed": {registry.StatusAwaitingApproval, "awaiting approval"},
			}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := definition(t, 500, func(raw map[string]any) { raw["promotion"] = tt.promotion })
			_, bucket, docs := freshPipeline(t, 500)
			p := newPipeline(t, d, bucket, docs)
			p.q.Publish(context.Background(), p.upload("a.csv", 1, 1200, 0))
			p.drain()
			ctx := context.Background()
			runs, err := p.reg.Runs(ctx, "housing")
			require.NoError(t, err)
			require.Len(t, runs, 2)
			for _, r := range runs {
				dec, err := p.reg.Decision(ctx, "housing", r.ID)
				require.NoError(t, err)
				require.Equal(t, tt.want[r.Spec][0], dec.Status, dec.Reason)
				require.Contains(t, dec.Reason, tt.want[r.Spec][1])
			}
			champ, err := p.reg.LatestPromotion(ctx, "housing")
			if tt.champion == "" {
				require.True(t, registry.IsNotFound(err), "nothing promoted")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.champion, champ.Spec)
		})
	}
}

func TestAwaitingRunIsPromotedByHand(t *testing.T) {
	d := definition(t, 500, func(raw map[string]any) { raw["promotion"] = map[string]any{"auto_promote": false} })
	_, bucket, docs := freshPipeline(t, 500)
	p := newPipeline(t, d, bucket, docs)
	p.q.Publish(context.Background(), p.upload("a.csv", 1, 1200, 0))
	p.drain()
	ctx := context.Background()
	runs, err := p.reg.Runs(ctx, "housing")
	require.NoError(t, err)
	i := slices.IndexFunc(runs, func(r registry.Run) bool { return r.Spec == "linear-onehot" })

	manual := promote.NewManual(p.reg, bucket, p.q, quiet(), p.clock)
	prom, err := manual.Promote(ctx, "housing", runs[i].ID, "ana", "approved after review")
	require.NoError(t, err)
	require.Equal(t, int64(1), prom.Sequence)
	require.Equal(t, "ana", prom.Actor)
	require.IsType(t, &events.ModelPromoted{}, p.q.pending[len(p.q.pending)-1], "announced")
	p.drain()

	// A reconcile pass neither promotes the held run nor undoes the approval.
	p.reconcile()
	p.drain()
	history, err := p.reg.Promotions(ctx, "housing")
	require.NoError(t, err)
	require.Len(t, history, 1)
	require.Equal(t, runs[i].ID, history[0].RunID)

	_, err = manual.Promote(ctx, "housing", runs[i].ID, "ana", "")
	require.ErrorIs(t, err, promote.ErrConflict)
	_, err = manual.Rollback(ctx, "housing", "ana", "")
	require.ErrorIs(t, err, promote.ErrConflict, "the first champion has nothing before it")
}

// lockedQueue is a publisher safe for concurrent workers.
type lockedQueue struct {
	mu       sync.Mutex
	promoted []*events.ModelPromoted
	live     chan *events.ModelPromoted
}

func (q *lockedQueue) Publish(_ context.Context, e events.Event) error {
	if pe, ok := e.(*events.ModelPromoted); ok {
		q.mu.Lock()
		q.promoted = append(q.promoted, pe)
		q.mu.Unlock()
		q.live <- pe
	}
	return nil
}

func TestManualPromotionsAndRollbacksUnderConcurrentAutomaticOnes(t *testing.T) {
	p, bucket, docs := freshPipeline(t, 100)
	// Run the pipeline up to training; hold the model.trained events back.
	var trained []*events.ModelTrained
	for _, a := range scenario() {
		p.q.Publish(context.Background(), a(p))
		for len(p.q.pending) > 0 {
			e := p.q.pending[0]
			p.q.pending = p.q.pending[1:]
			if mt, ok := e.(*events.ModelTrained); ok {
				trained = append(trained, mt)
				continue
			}
			require.NoError(t, p.deliver(e))
		}
	}
	ctx := context.Background()
	runs, err := p.reg.Runs(ctx, "housing")
	require.NoError(t, err)
	require.Len(t, trained, len(runs))
	require.GreaterOrEqual(t, len(runs), 8)

	q := &lockedQueue{live: make(chan *events.ModelPromoted, 1000)}
	catalog, err := dataset.NewCatalog(p.def)
	require.NoError(t, err)
	newWorker := func() *promote.Worker {
		w, err := promote.New(p.deps(catalog, bucket, registry.New(docs), q))
		require.NoError(t, err)
		return w
	}
	newGateway := func() *serve.Models {
		return serve.NewModels(catalog, bucket, registry.New(docs), quiet(), prometheus.NewRegistry())
	}
	live, shuffled := newGateway(), newGateway()
	liveDone := make(chan struct{})
	go func() {
		defer close(liveDone)
		for e := range q.live {
			require.NoError(t, live.HandlePromoted(ctx, e))
		}
	}()

	type call struct {
		prom     registry.Promotion
		rollback bool
	}
	var mu sync.Mutex
	var calls []call
	record := func(p registry.Promotion, err error, rollback bool) {
		if errors.Is(err, promote.ErrConflict) {
			return // already the champion, or nothing to roll back to: refused, not recorded
		}
		require.NoError(t, err)
		mu.Lock()
		calls = append(calls, call{p, rollback})
		mu.Unlock()
	}
	var wg sync.WaitGroup
	// Two promote workers (replicas) decide half the runs each; a lost
	// decision is retried like the bus would.
	for half := range 2 {
		w := newWorker()
		wg.Go(func() {
			for i := half; i < len(trained); i += 2 {
				var err error
				for range 5 {
					if err = w.HandleTrained(ctx, trained[i]); err == nil {
						break
					}
				}
				require.NoError(t, err)
			}
		})
	}
	manual := promote.NewManual(registry.New(docs), bucket, q, quiet(), nil)
	// People promote the weaker hashed runs, so the automatic decisions on
	// one-hot runs keep winning back: both kinds interleave.
	hashed := slices.DeleteFunc(slices.Clone(runs), func(r registry.Run) bool { return r.Spec != "linear-hashed" })
	for g := range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 10 {
				run := hashed[r.IntN(len(hashed))]
				prom, err := manual.Promote(ctx, "housing", run.ID, fmt.Sprint("person-", g), "")
				record(prom, err, false)
				time.Sleep(time.Duration(1+r.IntN(3)) * time.Millisecond)
			}
		})
	}
	wg.Go(func() {
		r := rand.New(rand.NewPCG(9, 1))
		for range 8 {
			prom, err := manual.Rollback(ctx, "housing", "oncall", "")
			record(prom, err, true)
			time.Sleep(time.Duration(1+r.IntN(4)) * time.Millisecond)
		}
	})
	wg.Wait()
	close(q.live)
	<-liveDone

	history, err := p.reg.Promotions(ctx, "housing")
	require.NoError(t, err)
	decisions, err := p.reg.Decisions(ctx, "housing")
	require.NoError(t, err)
	require.Len(t, decisions, len(runs), "every run decided once")

	// Strictly increasing, no gaps, and each entry follows the one before.
	for i, h := range history {
		require.Equal(t, int64(i+1), h.Sequence)
		if i > 0 {
			require.Equal(t, history[i-1].RunID, h.PreviousRunID, "promotion #%d", h.Sequence)
		}
	}
	// Complete: every successful call and every automatic promotion.
	auto := 0
	for _, d := range decisions {
		if !d.Promoted {
			continue
		}
		h := history[d.Sequence-1]
		require.Equal(t, d.RunID, h.RunID)
		if h.Actor == promote.ActorAuto {
			auto++
		} else {
			// Promoted by hand before its automatic decision came.
			require.Contains(t, d.Reason, "before the automatic decision")
		}
	}
	for _, c := range calls {
		require.Equal(t, c.prom, history[c.prom.Sequence-1])
		if c.rollback {
			require.Contains(t, c.prom.Reason, "rollback by oncall")
		}
	}
	require.Len(t, history, auto+len(calls))
	t.Logf("%d promotions: %d automatic, %d by hand or rollback", len(history), auto, len(calls))
	require.Greater(t, auto, 0)
	require.Greater(t, len(calls), 0)

	// Gateways end on the last promotion, whatever order events came in.
	q.mu.Lock()
	promoted := slices.Clone(q.promoted)
	q.mu.Unlock()
	announced := map[string]bool{}
	for _, e := range promoted {
		announced[e.ID] = true
	}
	require.Len(t, announced, len(history), "each promotion announced (a repeat is harmless)")
	shuffle(rand.New(rand.NewPCG(3, 3)), promoted)
	for _, e := range promoted {
		require.NoError(t, shuffled.HandlePromoted(ctx, e))
	}
	last := history[len(history)-1]
	for name, m := range map[string]*serve.Models{"live": live, "shuffled": shuffled} {
		require.NoError(t, m.Refresh(ctx))
		cur := m.Current("housing")
		require.Equal(t, last.Sequence, cur.Promotion.Sequence, name)
		require.Equal(t, last.RunID, cur.Promotion.RunID, name)
	}
}

func TestLineageAddsUpAndFindsCorrections(t *testing.T) {
	p, _, _ := freshPipeline(t, 150)
	play(p, scenario())
	ctx := context.Background()
	versions, err := p.reg.Versions(ctx, "housing")
	require.NoError(t, err)
	first := map[string]int{}
	for _, v := range versions {
		for _, s := range v.Sources {
			if s.Source.Kind == registry.SourceCorrection {
				first[s.Source.CorrectionID] = v.Number
			}
		}
	}
	require.Len(t, first, 2, "both corrections are in a version")
	runs, err := p.reg.Runs(ctx, "housing")
	require.NoError(t, err)
	for _, run := range runs {
		l, err := p.reg.Lineage(ctx, "housing", run.Version)
		require.NoError(t, err)
		v := versions[run.Version-1]
		require.Equal(t, v.Hash, l.Hash)
		sum := 0
		for _, s := range l.Sources {
			sum += s.Rows
			require.LessOrEqual(t, s.Version, v.Number)
			if s.Source.Kind == registry.SourceObject {
				require.NotEmpty(t, s.Source.Bucket)
				require.NotZero(t, s.Source.Generation)
			}
		}
		require.Equal(t, v.Rows, sum, "run %s: rows per source add up to version %d", run.ID, v.Number)
		require.Len(t, l.Chain, v.Number)
		for i, link := range l.Chain {
			require.Equal(t, v.Number-i, link.Number)
			require.Equal(t, versions[link.Number-1].Hash, link.Hash)
			if i+1 < len(l.Chain) {
				require.Equal(t, l.Chain[i+1].Hash, link.ParentHash)
			}
		}
		for id, n := range first {
			if v.Number >= n {
				require.Contains(t, l.Corrections, id, "v%d holds correction %s from v%d", v.Number, id, n)
			} else {
				require.NotContains(t, l.Corrections, id)
			}
		}
	}
}
