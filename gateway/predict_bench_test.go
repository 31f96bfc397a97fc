package gateway_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/bench"
	"github.com/refit-ml/refit/gateway"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/workers/serve"
)

// BenchmarkPredictHandler serves predict requests in-process (no network)
// through the gateway's whole handler stack, beside baseline A (bench.Bare:
// the same JSON decoded, a constant answered), so that the difference is
// what the gateway adds per request: validation, the model, metrics,
// timeout handler.
func BenchmarkPredictHandler(b *testing.B) {
	srv := benchGateway(b)
	for _, batch := range []int{1, 32} {
		bodies, err := bench.Bodies(1, 64, batch)
		if err != nil {
			b.Fatal(err)
		}
		for _, h := range []struct {
			name string
			h    http.Handler
		}{{"gateway", srv}, {"bare", bench.Bare()}} {
			b.Run(h.name+"/instances="+strconv.Itoa(batch), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					req := httptest.NewRequest(http.MethodPost, "/v1/models/housing:predict", bytes.NewReader(bodies[i%len(bodies)]))
					w := httptest.NewRecorder()
					h.h.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
					i++
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/prediction")
			})
		}
	}
}

// benchGateway is a gateway serving the linear-onehot spec fitted on
// 2,000 generated rows.
func benchGateway(b *testing.B) *gateway.Server {
	ctx := context.Background()
	raw, err := os.ReadFile("../schemas/datasets/housing.json")
	if err != nil {
		b.Fatal(err)
	}
	def, err := dataset.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	catalog, err := dataset.NewCatalog(def)
	if err != nil {
		b.Fatal(err)
	}
	bucket, err := local.New(b.TempDir(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	reg := registry.New(memory.New())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	metrics := prometheus.NewRegistry()
	models := serve.NewModels(catalog, bucket, reg, logger, metrics)
	srv, err := gateway.NewServer(gateway.Config{}, gateway.Deps{Datasets: catalog, Registry: reg, Bucket: bucket,
		Publisher: nopPublisher{}, Models: models, Logger: logger, Metrics: metrics})
	if err != nil {
		b.Fatal(err)
	}

	csv, err := bench.CSV(3, 2000)
	if err != nil {
		b.Fatal(err)
	}
	in, err := def.NewInputReader(bytes.NewReader(csv), dataset.InputOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var rows []dataset.StagedRow
	for {
		r, rej, err := in.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		if rej == nil {
			rows = append(rows, dataset.StagedRow{Row: r, Hash: def.Hash(r)})
		}
	}
	spec, _ := def.Spec("linear-onehot")
	art, err := model.Fit(ctx, def, spec, func(fn func(dataset.StagedRow) error) error {
		for _, r := range rows {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	data, err := art.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	const name = "models/housing/bench.json"
	if _, err := bucket.Write(ctx, name, blob.CreateOnly, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
		b.Fatal(err)
	}
	p := registry.Promotion{Dataset: "housing", Sequence: 1, RunID: "bench", Spec: spec.Name, Version: 1,
		Artifact: name, Checksum: model.Checksum(data), Actor: "bench", PromotedAt: time.Now().UTC()}
	if err := reg.AddPromotion(ctx, p); err != nil {
		b.Fatal(err)
	}
	if err := models.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	return srv
}
