package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/bench"
	"github.com/refit-ml/refit/gateway"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/workers/serve"
)

// BenchmarkPredictReviews serves one-review and 32-review requests beside
// the same requests of houses, through the gateway's whole handler stack
// in-process (as BenchmarkPredictHandler), so that the figures compare in
// one run: the text path (tokenise, look up or hash each term, TF-IDF,
// softmax, the class and its probabilities in the answer) against a
// linear model over 16 numeric and categorical columns. Each served spec
// is fitted here on generated rows: housing's linear-onehot, and each of
// the reviews specs (the vocabulary and the hashed bigrams).
func BenchmarkPredictReviews(b *testing.B) {
	const bodies = 64
	cases := []struct {
		name, dataset, spec, metric string
		body                        func(batch int) ([][]byte, error)
	}{
		{"housing/linear-onehot", "housing", "linear-onehot", "housing", func(batch int) ([][]byte, error) { return bench.Bodies(1, bodies, batch) }},
		{"reviews/logistic-tfidf", "reviews", "logistic-tfidf", "tfidf", func(batch int) ([][]byte, error) { return reviewBodies(b, 9, bodies, batch) }},
		{"reviews/logistic-hashed", "reviews", "logistic-hashed", "hashed", func(batch int) ([][]byte, error) { return reviewBodies(b, 9, bodies, batch) }},
	}
	servers := make([]*gateway.Server, len(cases))
	for i, c := range cases {
		servers[i] = servingGateway(b, c.dataset, c.spec)
	}
	for _, batch := range []int{1, 32} {
		reqs := make([][][]byte, len(cases))
		for ci, c := range cases {
			var err error
			if reqs[ci], err = c.body(batch); err != nil {
				b.Fatal(err)
			}
		}
		// paired: each iteration sends one request of every case in turn
		// and times each, so that a change in the machine's load (shared
		// here) hits all alike and the ratios hold even when the absolute
		// figures wander.
		b.Run("paired/instances="+strconv.Itoa(batch), func(b *testing.B) {
			spent := make([]time.Duration, len(cases))
			i := 0
			for b.Loop() {
				for ci, c := range cases {
					req := httptest.NewRequest(http.MethodPost, "/v1/models/"+c.dataset+":predict", bytes.NewReader(reqs[ci][i%len(reqs[ci])]))
					w := httptest.NewRecorder()
					t0 := time.Now()
					servers[ci].ServeHTTP(w, req)
					spent[ci] += time.Since(t0)
					if w.Code != http.StatusOK {
						b.Fatalf("%s: status %d: %s", c.name, w.Code, w.Body)
					}
				}
				i++
			}
			preds := float64(b.N * batch)
			for ci, c := range cases {
				b.ReportMetric(float64(spent[ci].Nanoseconds())/preds, c.metric+"-ns/prediction")
				if ci > 0 {
					b.ReportMetric(float64(spent[ci])/float64(spent[0]), c.metric+"/housing")
				}
			}
		})
		for ci, c := range cases {
			srv, reqs := servers[ci], reqs[ci]
			path := "/v1/models/" + c.dataset + ":predict"
			b.Run(c.name+"/instances="+strconv.Itoa(batch), func(b *testing.B) {
				b.ReportAllocs()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				i := 0
				for b.Loop() {
					req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(reqs[i%len(reqs)]))
					w := httptest.NewRecorder()
					srv.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
					i++
				}
				runtime.ReadMemStats(&after)
				preds := float64(b.N * batch)
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/preds, "ns/prediction")
				b.ReportMetric(float64(after.Mallocs-before.Mallocs)/preds, "allocs/prediction")
				n := 0
				for _, r := range reqs {
					n += len(r)
				}
				b.ReportMetric(float64(n)/float64(len(reqs)*batch), "body-B/instance")
			})
		}
	}
}

// reviewBodies makes count predict bodies of batch generated reviews each
// (long and short, some non-ASCII, as the generator writes them).
func reviewBodies(tb testing.TB, seed int64, count, batch int) ([][]byte, error) {
	rows := generatedRows(tb, shipped(tb, "reviews"), seed, count*batch)
	out := make([][]byte, count)
	for i := range out {
		insts := make([]map[string]string, batch)
		for k := range insts {
			insts[k] = map[string]string{"review": rows[i*batch+k].Fields[0].Str}
		}
		var err error
		if out[i], err = json.Marshal(map[string]any{"instances": insts}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// generatedRows are the valid rows among n of the dataset's generator.
func generatedRows(tb testing.TB, def *dataset.Definition, seed int64, n int) []dataset.StagedRow {
	tb.Helper()
	var raw bytes.Buffer
	var err error
	switch def.Name {
	case "housing":
		err = synth.Housing{Seed: seed}.Write(&raw, n)
	default:
		err = synth.Reviews{Seed: seed, LabelNoise: 0.05}.Write(&raw, n)
	}
	if err != nil {
		tb.Fatal(err)
	}
	rows, _ := stagedRows(tb, def, raw.Bytes())
	return rows
}

// servingGateway is a gateway whose champion of ds is spec fitted (by its
// kind) on 2,000 generated rows, loaded through serve.Models as in
// production.
func servingGateway(b *testing.B, ds, specName string) *gateway.Server {
	b.Helper()
	ctx := context.Background()
	def := shipped(b, ds)
	catalog, err := dataset.NewCatalog(def)
	if err != nil {
		b.Fatal(err)
	}
	bucket, err := local.New(b.TempDir(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	reg := registry.New(memory.New())
	promoteFitted(b, bucket, reg, def, specName, generatedRows(b, def, 3, 2000), registry.Promotion{Dataset: ds, Sequence: 1,
		RunID: "bench", Version: 1, Artifact: "models/" + ds + "/bench.json", Actor: "bench", PromotedAt: time.Now().UTC()})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	metrics := prometheus.NewRegistry()
	models := serve.NewModels(catalog, bucket, reg, logger, metrics)
	if err := models.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	srv, err := gateway.NewServer(gateway.Config{}, gateway.Deps{Datasets: catalog, Registry: reg, Bucket: bucket,
		Publisher: nopPublisher{}, Models: models, Logger: logger, Metrics: metrics})
	if err != nil {
		b.Fatal(err)
	}
	return srv
}
