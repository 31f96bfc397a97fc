package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/gateway"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/workers/serve"
)

type fixture struct {
	def     *dataset.Definition
	reg     *registry.Registry
	bucket  blob.Bucket
	models  *serve.Models
	metrics *prometheus.Registry
	hub     *gateway.Hub
	srv     *httptest.Server
	rows    []dataset.StagedRow
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, gateway.Config{}, func(*serve.Models) gateway.Publisher { return nopPublisher{} })
}

// newFixtureWith builds the fixture with a configuration and a publisher
// made for its models.
func newFixtureWith(t *testing.T, cfg gateway.Config, pub func(*serve.Models) gateway.Publisher) *fixture {
	t.Helper()
	f := newFixtureOf(t, shipped(t, "housing"), cfg, pub, nil)
	var csvBuf bytes.Buffer
	require.NoError(t, synth.Housing{Seed: 3}.Write(&csvBuf, 400))
	rows, rejected := stagedRows(t, f.def, csvBuf.Bytes())
	require.Zero(t, rejected)
	f.rows = rows
	return f
}

// newFixtureOf serves def on an empty bucket and registry (the fixture has
// no rows), through serve.Models unless serving replaces them.
func newFixtureOf(t *testing.T, def *dataset.Definition, cfg gateway.Config, pub func(*serve.Models) gateway.Publisher, serving gateway.Models) *fixture {
	t.Helper()
	catalog, err := dataset.NewCatalog(def)
	require.NoError(t, err)
	bucket, err := local.New(t.TempDir(), "test")
	require.NoError(t, err)
	reg := registry.New(memory.New())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	metrics := prometheus.NewRegistry()
	models := serve.NewModels(catalog, bucket, reg, logger, metrics)
	if serving == nil {
		serving = models
	}
	hub := gateway.NewHub()
	srv, err := gateway.NewServer(cfg, gateway.Deps{Datasets: catalog, Registry: reg, Bucket: bucket,
		Publisher: pub(models), Models: serving, Logger: logger, Metrics: metrics, Events: hub})
	require.NoError(t, err)
	f := &fixture{def: def, reg: reg, bucket: bucket, models: models, metrics: metrics, hub: hub, srv: httptest.NewServer(srv)}
	t.Cleanup(f.srv.Close)
	return f
}

// promote fits the spec on the first n rows and records promotion seq.
func (f *fixture) promote(t *testing.T, spec string, n int, seq int64) registry.Promotion {
	t.Helper()
	return promoteFitted(t, f.bucket, f.reg, f.def, spec, f.rows[:n], registry.Promotion{Dataset: "housing", Sequence: seq,
		RunID: fmt.Sprintf("%016d", seq), Version: int(seq), Artifact: fmt.Sprintf("models/housing/%s-%d.json", spec, n),
		Actor: "test", PromotedAt: time.Now().UTC()})
}

func (f *fixture) predictBody(t *testing.T) []byte {
	inst := map[string]any{}
	for i, c := range f.def.Kept() {
		inst[c.Name] = dataset.Format(c, f.rows[0].Fields[i])
	}
	b, _ := json.Marshal(map[string]any{"instances": []any{inst}})
	return b
}

func TestHotSwapUnderLoadFailsNoRequest(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first := f.promote(t, "linear-onehot", 300, 1)
	require.NoError(t, f.models.Refresh(ctx))
	require.True(t, f.models.Ready())

	body := f.predictBody(t)
	var failures, served atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lastSeq int64
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Post(f.srv.URL+"/v1/models/housing:predict", "application/json", bytes.NewReader(body))
				if err != nil {
					failures.Add(1)
					continue
				}
				var out struct {
					Model struct{ Sequence int64 }
				}
				err = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || out.Model.Sequence < lastSeq {
					failures.Add(1) // a failed request, or a model older than one already seen
				}
				lastSeq = out.Model.Sequence
				served.Add(1)
			}
		}()
	}
	specs := []string{"linear-hashed", "linear-onehot"}
	for seq := int64(2); seq <= 20; seq++ {
		p := f.promote(t, specs[seq%2], 200+int(seq)*5, seq)
		before := served.Load()
		require.NoError(t, f.models.HandlePromoted(ctx, promotedEvent(p)))
		require.Equal(t, seq, f.models.Current("housing").Promotion.Sequence)
		// Requests complete between swaps however loaded the machine is
		// (a fixed sleep let a slow run swap with none in flight).
		deadline := time.Now().Add(time.Minute)
		for served.Load() < before+4 {
			require.True(t, time.Now().Before(deadline), "no request completed after swap %d", seq)
			time.Sleep(time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()
	require.Zero(t, failures.Load())
	require.GreaterOrEqual(t, served.Load(), int64(19*4))

	// A stale or repeated event never rolls back.
	require.NoError(t, f.models.HandlePromoted(ctx, promotedEvent(first)))
	require.Equal(t, int64(20), f.models.Current("housing").Promotion.Sequence)
}

func promotedEvent(p registry.Promotion) *events.ModelPromoted {
	return &events.ModelPromoted{Meta: events.Meta{ID: fmt.Sprint(p.Sequence), Dataset: p.Dataset}, Sequence: p.Sequence, ModelID: p.RunID}
}

func TestRefreshFindsAPromotionWhoseEventWasLost(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	require.NoError(t, f.models.Refresh(ctx))
	require.Nil(t, f.models.Current("housing"))
	f.promote(t, "linear-onehot", 300, 1)
	require.NoError(t, f.models.Refresh(ctx))
	require.Equal(t, int64(1), f.models.Current("housing").Promotion.Sequence)
}

func TestCorruptArtifactIsNotServed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	good := f.promote(t, "linear-onehot", 300, 1)
	require.NoError(t, f.models.Refresh(ctx))
	bad := good
	bad.Sequence, bad.Checksum = 2, "sha256:"+fmt.Sprintf("%064d", 0)
	require.NoError(t, f.reg.AddPromotion(ctx, bad))
	err := f.models.HandlePromoted(ctx, promotedEvent(bad))
	require.ErrorIs(t, err, model.ErrInvalidArtifact)
	require.Equal(t, int64(1), f.models.Current("housing").Promotion.Sequence, "keep serving the good model")
	resp, err := http.Post(f.srv.URL+"/v1/models/housing:predict", "application/json", bytes.NewReader(f.predictBody(t)))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// One dataset's unreadable champion does not keep the gateway unready:
// /readyz is 200 and names the promotion that did not load.
func TestReadyzReportsAModelThatDoesNotLoad(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	good := f.promote(t, "linear-onehot", 300, 1)
	bad := good
	bad.Sequence, bad.RunID, bad.Checksum = 2, "00000000000000b2", "sha256:"+fmt.Sprintf("%064d", 0)
	require.NoError(t, f.reg.AddPromotion(ctx, bad))
	require.ErrorIs(t, f.models.Refresh(ctx), model.ErrInvalidArtifact)

	resp, err := http.Get(f.srv.URL + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var body struct {
		Status   string
		Datasets []struct {
			Dataset  string
			Sequence int64
			Failed   []struct {
				Sequence int64
				RunID    string `json:"run_id"`
				Error    string
			}
		}
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, "ready", body.Status)
	require.Len(t, body.Datasets, 1)
	ds := body.Datasets[0]
	require.Equal(t, "housing", ds.Dataset)
	require.Equal(t, int64(1), ds.Sequence, "the older model serves")
	require.Len(t, ds.Failed, 1)
	require.Equal(t, int64(2), ds.Failed[0].Sequence)
	require.Equal(t, bad.RunID, ds.Failed[0].RunID)
	require.Contains(t, ds.Failed[0].Error, "checksum")
}
