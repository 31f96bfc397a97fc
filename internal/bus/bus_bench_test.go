package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/testenv"
)

// BenchmarkEventsThroughAHandler: events per second from EventPublisher to
// a typed handler under the full middleware stack, one handler, as a
// worker runs. Reported as events/s.
func BenchmarkEventsThroughAHandler(b *testing.B) {
	backends := []struct {
		name string
		bus  func(b *testing.B) bus.Bus
	}{
		{"gochannel", func(b *testing.B) bus.Bus { return bus.NewInProcess(quiet()) }},
		{"pstest", func(b *testing.B) bus.Bus {
			srv := pstest.NewServer()
			b.Cleanup(func() { _ = srv.Close() })
			return pubsubBus(b, srv.Addr)
		}},
		{"emulator", func(b *testing.B) bus.Bus { return pubsubBus(b, testenv.StartPubSubEmulator(b)) }},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			bb := be.bus(b)
			if ps, ok := bb.(*bus.PubSub); ok {
				if _, _, err := ps.Setup(context.Background(), map[string][]string{"bench": {events.TopicRowsStaged}}); err != nil {
					b.Fatal(err)
				}
			}
			got := make(chan struct{}, 1024)
			r, err := bus.NewRouter(bus.RouterConfig{CloseTimeout: 5 * time.Second}, bb, bus.NewMetrics(prometheus.NewRegistry()), quiet())
			if err != nil {
				b.Fatal(err)
			}
			sub, err := bb.Subscriber("bench")
			if err != nil {
				b.Fatal(err)
			}
			r.AddConsumerHandler("bench", bb.Topic(events.TopicRowsStaged), sub, bus.Handle(func(ctx context.Context, e *events.RowsStaged) error {
				got <- struct{}{}
				return nil
			}))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			<-r.Running()
			defer func() { cancel(); <-done; _ = bb.Close() }()
			pub := bus.NewEventPublisher(bb, "refit/bench")
			b.ResetTimer()
			start := time.Now()
			go func() {
				for i := range b.N {
					_ = pub.Publish(ctx, &events.RowsStaged{Meta: events.Meta{ID: fmt.Sprint("e", i), Dataset: "housing", Time: time.Now()},
						IngestID: "0123456789abcdef", Source: "s", Accepted: 1})
				}
			}()
			for range b.N {
				select {
				case <-got:
				case <-time.After(60 * time.Second):
					b.Fatal("events stopped arriving")
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

func pubsubBus(b *testing.B, endpoint string) bus.Bus {
	ps, err := bus.NewPubSub(context.Background(), bus.PubSubConfig{Project: "refit-bench", Endpoint: endpoint}, quiet())
	if err != nil {
		b.Fatal(err)
	}
	return ps
}
