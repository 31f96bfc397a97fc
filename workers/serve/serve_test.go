package serve_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/workers/serve"
)

// fixture: two datasets of the housing definition (housing and houses), a
// real local bucket and an in-memory registry.
type fixture struct {
	defs    map[string]*dataset.Definition
	catalog *dataset.Catalog
	bucket  blob.Bucket
	reg     *registry.Registry
	metrics *prometheus.Registry
	models  *serve.Models
	rows    []dataset.Row
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	b, err := os.ReadFile("../../schemas/datasets/housing.json")
	require.NoError(t, err)
	f := &fixture{defs: map[string]*dataset.Definition{}, reg: registry.New(memory.New()), metrics: prometheus.NewRegistry()}
	for _, name := range []string{"housing", "houses"} {
		d, err := dataset.Parse(bytes.Replace(b, []byte(`"name": "housing"`), []byte(`"name": "`+name+`"`), 1))
		require.NoError(t, err)
		f.defs[name] = d
	}
	f.catalog, err = dataset.NewCatalog(f.defs["housing"], f.defs["houses"])
	require.NoError(t, err)
	f.bucket, err = local.New(t.TempDir(), "test")
	require.NoError(t, err)
	var raw bytes.Buffer
	require.NoError(t, synth.Housing{Seed: 5}.Write(&raw, 300))
	in, err := f.defs["housing"].NewInputReader(&raw, dataset.InputOptions{})
	require.NoError(t, err)
	for {
		r, _, err := in.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		f.rows = append(f.rows, r)
	}
	f.models = serve.NewModels(f.catalog, f.bucket, f.reg, slog.New(slog.NewTextHandler(io.Discard, nil)), f.metrics)
	return f
}

// promote fits a model of ds on the first n rows and records promotion seq;
// corrupt records a checksum the artifact does not have.
func (f *fixture) promote(t *testing.T, ds string, n int, seq int64, corrupt bool) registry.Promotion {
	t.Helper()
	ctx := context.Background()
	d := f.defs[ds]
	spec, _ := d.Spec("linear-onehot")
	art, err := model.Fit(ctx, d, spec, func(fn func(dataset.StagedRow) error) error {
		for _, r := range f.rows[:n] {
			if err := fn(dataset.StagedRow{Row: r, Hash: d.Hash(r)}); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	b, err := art.Marshal()
	require.NoError(t, err)
	name := fmt.Sprintf("models/%s/%d.json", ds, seq)
	sum := model.Checksum(b)
	if corrupt {
		b = b[:len(b)/2] // a torn write
	}
	_, err = f.bucket.Write(ctx, name, blob.CreateOnly, func(w io.Writer) error { _, err := w.Write(b); return err })
	require.NoError(t, err)
	p := registry.Promotion{Dataset: ds, Sequence: seq, RunID: fmt.Sprintf("%s-%d", ds, seq), Spec: spec.Name, Version: 1,
		Artifact: name, Checksum: sum, Actor: "test", PromotedAt: time.Now().UTC()}
	require.NoError(t, f.reg.AddPromotion(ctx, p))
	return p
}

func (f *fixture) served(ds string) int64 {
	if cur := f.models.Current(ds); cur != nil {
		return cur.Promotion.Sequence
	}
	return 0
}

func (f *fixture) state(t *testing.T, ds string) serve.State {
	t.Helper()
	for _, st := range f.models.States() {
		if st.Dataset == ds {
			return st
		}
	}
	t.Fatalf("no state for %s", ds)
	return serve.State{}
}

func failedSequences(st serve.State) []int64 {
	out := []int64{}
	for _, fl := range st.Failed {
		out = append(out, fl.Sequence)
	}
	return out
}

func TestABrokenChampionFallsBackAndDoesNotHoldReadiness(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.promote(t, "housing", 200, 1, false)
	f.promote(t, "housing", 250, 2, false)
	f.promote(t, "housing", 280, 3, true)
	f.promote(t, "housing", 300, 4, true)
	f.promote(t, "houses", 300, 1, true) // nothing to fall back to

	err := f.models.Refresh(ctx)
	require.ErrorIs(t, err, model.ErrInvalidArtifact, "the failures are reported")
	require.True(t, f.models.Ready(), "broken models do not keep the gateway unready")
	require.Equal(t, int64(2), f.served("housing"), "the newest promotion that loads")
	require.Zero(t, f.served("houses"))

	hs := f.state(t, "housing")
	require.Equal(t, []int64{4, 3}, failedSequences(hs))
	require.Equal(t, "housing-2", hs.RunID)
	require.Contains(t, hs.Failed[0].Error, "promotion #4 (run housing-4)")
	require.Contains(t, hs.Failed[0].Error, "checksum")
	require.Equal(t, []int64{1}, failedSequences(f.state(t, "houses")))
	require.Equal(t, 2.0, loadFailures(t, f, "housing"))
	require.Equal(t, 1.0, loadFailures(t, f, "houses"))

	// A new good promotion clears the failures; an event finds it.
	p := f.promote(t, "housing", 290, 5, false)
	require.NoError(t, f.models.HandlePromoted(ctx, &events.ModelPromoted{Meta: events.Meta{ID: "5", Dataset: "housing"}, Sequence: p.Sequence}))
	require.Equal(t, int64(5), f.served("housing"))
	require.Empty(t, f.state(t, "housing").Failed)
	require.Zero(t, loadFailures(t, f, "housing"))

	// A refresh never steps back, and keeps reporting what stays broken.
	require.ErrorIs(t, f.models.Refresh(ctx), model.ErrInvalidArtifact)
	require.Equal(t, int64(5), f.served("housing"))
	require.Empty(t, f.state(t, "housing").Failed)
	require.Equal(t, []int64{1}, failedSequences(f.state(t, "houses")))
}

func TestAnEventForABrokenModelKeepsTheServedOne(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.promote(t, "housing", 200, 1, false)
	require.NoError(t, f.models.Refresh(ctx))
	f.promote(t, "housing", 300, 2, true)
	err := f.models.HandlePromoted(ctx, &events.ModelPromoted{Meta: events.Meta{ID: "2", Dataset: "housing"}, Sequence: 2})
	require.ErrorIs(t, err, model.ErrInvalidArtifact)
	require.Equal(t, int64(1), f.served("housing"))
	require.Equal(t, []int64{2}, failedSequences(f.state(t, "housing")))
}

// loadFailures reads refit_serving_load_failures{dataset=ds}.
func loadFailures(t *testing.T, f *fixture, ds string) float64 {
	t.Helper()
	families, err := f.metrics.Gather()
	require.NoError(t, err)
	for _, fam := range families {
		if fam.GetName() != "refit_serving_load_failures" {
			continue
		}
		for _, m := range fam.GetMetric() {
			if m.GetLabel()[0].GetValue() == ds {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no refit_serving_load_failures{dataset=%q}", ds)
	return 0
}

// promotions is a fake history of function fields.
type promotions struct {
	latestFn func(ctx context.Context, ds string) (registry.Promotion, error)
	allFn    func(ctx context.Context, ds string) ([]registry.Promotion, error)
}

func (p promotions) LatestPromotion(ctx context.Context, ds string) (registry.Promotion, error) {
	return p.latestFn(ctx, ds)
}

func (p promotions) Promotions(ctx context.Context, ds string) ([]registry.Promotion, error) {
	return p.allFn(ctx, ds)
}

func TestReadyOnlyOnceEveryHistoryIsRead(t *testing.T) {
	f := newFixture(t)
	down := true
	fake := promotions{
		latestFn: func(ctx context.Context, ds string) (registry.Promotion, error) {
			if down && ds == "houses" {
				return registry.Promotion{}, errors.New("registry unreachable")
			}
			return f.reg.LatestPromotion(ctx, ds)
		},
		allFn: f.reg.Promotions,
	}
	m := serve.NewModels(f.catalog, f.bucket, fake, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	f.promote(t, "housing", 200, 1, false)
	require.ErrorContains(t, m.Refresh(context.Background()), "registry unreachable")
	require.False(t, m.Ready(), "what to serve is not known yet")
	require.NotNil(t, m.Current("housing"), "the datasets that could be read are served")
	down = false
	require.NoError(t, m.Refresh(context.Background()))
	require.True(t, m.Ready())
	require.Nil(t, m.Current("houses"), "nothing promoted")
}
