package pipeline_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/internal/testenv"
	"github.com/refit-ml/refit/workers"
	"github.com/refit-ml/refit/workers/preprocess"
	"github.com/refit-ml/refit/workers/promote"
	"github.com/refit-ml/refit/workers/train"
	"github.com/refit-ml/refit/workers/version"
)

// counted discards what a worker publishes (no consumer is measured here)
// and is safe for the router's concurrent handlers.
type counted struct{ n atomic.Int64 }

func (c *counted) Publish(context.Context, events.Event) error {
	c.n.Add(1)
	return nil
}

// BenchmarkWorkerHandlers: events per second through each worker's real
// handler, delivered by a bus through the router and its middleware as
// serve.go wires them. "repeat" cases redeliver an event whose work is done
// (at-least-once delivery makes this the common case: the handler must find
// out cheaply that there is nothing to do); "correction" stages a new
// one-row correction per event. Storage is a local folder and the in-memory
// store; b.N events per case, published from 8 goroutines.
func BenchmarkWorkerHandlers(b *testing.B) {
	backends := []struct {
		name string
		bus  func(b *testing.B) bus.Bus
	}{
		{"gochannel", func(b *testing.B) bus.Bus { return bus.NewInProcess(quiet()) }},
		{"emulator", func(b *testing.B) bus.Bus {
			ps, err := bus.NewPubSub(context.Background(), bus.PubSubConfig{Project: "refit-bench", Endpoint: testenv.StartPubSubEmulator(b)}, quiet())
			require.NoError(b, err)
			return ps
		}},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			bb := be.bus(b)
			b.Cleanup(func() { _ = bb.Close() })
			ctx := context.Background()

			// A dataset with a version, its runs and a champion.
			p, _, _ := freshPipeline(b, 500)
			p.q.Publish(ctx, p.upload("a.csv", 1, 600, 0))
			first := map[string]events.Event{}
			for len(p.q.pending) > 0 {
				e := p.q.pending[0]
				p.q.pending = p.q.pending[1:]
				if _, ok := first[e.Topic()]; !ok {
					first[e.Topic()] = e
				}
				require.NoError(b, p.deliver(e))
			}
			catalog, err := dataset.NewCatalog(p.def)
			require.NoError(b, err)
			out := &counted{}
			m := prometheus.NewRegistry()
			deps := workers.Deps{Datasets: catalog, Bucket: p.bucket, Registry: p.reg, Publisher: out, Logger: quiet(), Metrics: m}
			pre, err := preprocess.New(preprocess.Config{Deps: deps})
			require.NoError(b, err)
			ver, err := version.New(deps)
			require.NoError(b, err)
			tr, err := train.New(train.Config{Deps: deps})
			require.NoError(b, err)
			pro, err := promote.New(deps)
			require.NoError(b, err)

			fields, label := oneHouse(b)
			var corrections atomic.Int64
			cases := []struct {
				name    string
				topic   string
				handler func(done func()) func(msg *message.Message) error
				event   func() events.Event
			}{
				{"preprocess/correction", events.TopicCorrectionSubmitted,
					func(done func()) func(msg *message.Message) error {
						return bus.Handle(func(ctx context.Context, e *events.CorrectionSubmitted) error {
							defer done()
							return pre.HandleCorrection(ctx, e)
						})
					},
					func() events.Event {
						id := fmt.Sprintf("bench-%d", corrections.Add(1))
						require.NoError(b, p.gw.AddCorrection(ctx, registry.Correction{ID: id, Dataset: "housing", Fields: fields, Label: label, ReceivedAt: time.Now().UTC()}))
						return &events.CorrectionSubmitted{Meta: events.Meta{ID: id, Dataset: "housing", Time: time.Now()}, CorrectionID: id}
					}},
				{"preprocess/repeat", events.TopicObjectFinalized,
					func(done func()) func(msg *message.Message) error {
						return bus.Handle(func(ctx context.Context, e *events.ObjectFinalized) error {
							defer done()
							return pre.HandleObject(ctx, e)
						})
					},
					func() events.Event { return first[events.TopicObjectFinalized] }},
				{"version/repeat", events.TopicRowsStaged,
					func(done func()) func(msg *message.Message) error {
						return bus.Handle(func(ctx context.Context, e *events.RowsStaged) error {
							defer done()
							return ver.HandleRowsStaged(ctx, e)
						})
					},
					func() events.Event { return first[events.TopicRowsStaged] }},
				{"train/repeat", events.TopicDatasetVersioned,
					func(done func()) func(msg *message.Message) error {
						return bus.Handle(func(ctx context.Context, e *events.DatasetVersioned) error {
							defer done()
							return tr.HandleVersioned(ctx, e)
						})
					},
					func() events.Event { return first[events.TopicDatasetVersioned] }},
				{"promote/repeat", events.TopicModelTrained,
					func(done func()) func(msg *message.Message) error {
						return bus.Handle(func(ctx context.Context, e *events.ModelTrained) error {
							defer done()
							return pro.HandleTrained(ctx, e)
						})
					},
					func() events.Event { return first[events.TopicModelTrained] }},
			}
			for _, c := range cases {
				b.Run(c.name, func(b *testing.B) {
					group := fmt.Sprintf("bench%d", time.Now().UnixNano()) // a new subscription: no backlog
					if ps, ok := bb.(*bus.PubSub); ok {
						_, _, err := ps.Setup(ctx, map[string][]string{group: {c.topic}})
						require.NoError(b, err)
					}
					// Events are made before the clock starts.
					evs := make([]events.Event, b.N)
					for i := range evs {
						evs[i] = c.event()
					}
					handled := make(chan struct{}, b.N)
					r, err := bus.NewRouter(bus.RouterConfig{CloseTimeout: 5 * time.Second}, bb, bus.NewMetrics(prometheus.NewRegistry()), quiet())
					require.NoError(b, err)
					sub, err := bb.Subscriber(group)
					require.NoError(b, err)
					r.AddConsumerHandler(c.name, bb.Topic(c.topic), sub, c.handler(func() { handled <- struct{}{} }))
					runCtx, cancel := context.WithCancel(ctx)
					stopped := make(chan error, 1)
					go func() { stopped <- r.Run(runCtx) }()
					<-r.Running()
					defer func() { cancel(); <-stopped }()

					pub := bus.NewEventPublisher(bb, "refit/bench")
					b.ResetTimer()
					start := time.Now()
					var wg sync.WaitGroup
					const publishers = 8
					for g := range publishers {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for i := g; i < len(evs); i += publishers {
								if err := pub.Publish(runCtx, evs[i]); err != nil && runCtx.Err() == nil {
									b.Error(err)
									return
								}
							}
						}()
					}
					for range b.N {
						select {
						case <-handled:
						case <-time.After(60 * time.Second):
							b.Fatal("events stopped arriving")
						}
					}
					b.StopTimer()
					b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
					wg.Wait()
				})
			}
		})
	}
}

// oneHouse is a valid correction: a generated house and its price.
func oneHouse(tb testing.TB) (map[string]string, string) {
	var buf bytes.Buffer
	require.NoError(tb, synth.Housing{Seed: 42}.Write(&buf, 1))
	recs, err := csv.NewReader(&buf).ReadAll()
	require.NoError(tb, err)
	fields := map[string]string{}
	label := ""
	for i, name := range recs[0] {
		if name == "price" {
			label = recs[1][i]
			continue
		}
		fields[name] = recs[1][i]
	}
	return fields, label
}
