package bench

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/refit-ml/refit/internal/synth"
)

// Load describes one load run against one URL.
type Load struct {
	URL    string
	Bodies [][]byte // cycled through, one per request
	// Conns is the number of connections (and workers). Closed loop: each
	// sends its next request when the last one is answered. Open loop: they
	// serve a queue of intended send times.
	Conns int
	// Rate, when positive, makes the run open-loop at Rate requests/s.
	Rate     float64
	Duration time.Duration
}

// Result is what one run measured.
type Result struct {
	Requests  uint64  `json:"requests"` // answered 2xx
	Failed    uint64  `json:"failed"`   // transport errors and non-2xx
	Seconds   float64 `json:"seconds"`  // wall time of the measured window
	Rate      float64 `json:"rate"`     // 2xx answers per second
	OfferedRS float64 `json:"offered"`  // the open-loop rate, 0 for closed loop
	Late      uint64  `json:"late"`     // open loop: intended sends never made (the server fell behind)
	P50       float64 `json:"p50_ms"`
	P90       float64 `json:"p90_ms"`
	P99       float64 `json:"p99_ms"`
	P999      float64 `json:"p999_ms"`
	Max       float64 `json:"max_ms"`
	Mean      float64 `json:"mean_ms"`
	FirstErr  string  `json:"first_error,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// Run sends the load and returns its result.
func (l Load) Run(ctx context.Context) Result {
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: l.Conns, MaxIdleConnsPerHost: l.Conns, MaxConnsPerHost: l.Conns,
		DisableCompression: true, IdleConnTimeout: time.Minute,
	}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(ctx, l.Duration)
	defer cancel()
	var (
		mu       sync.Mutex
		total    Histogram
		res      Result
		wg       sync.WaitGroup
		intended chan time.Time
	)
	if l.Rate > 0 {
		// Room for the whole run: the scheduler never blocks, so a slow
		// server makes requests wait in this queue, and their latency —
		// counted from the intended send time — shows it (no coordinated
		// omission).
		intended = make(chan time.Time, int(l.Rate*l.Duration.Seconds())+1)
	}
	start := time.Now()
	for w := range l.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var h Histogram
			var ok, failed uint64
			var firstErr string
			i := w * 7919 // spread the workers over the bodies
			for {
				var t0 time.Time
				if intended != nil {
					select {
					case t0 = <-intended:
					case <-ctx.Done():
					}
				} else {
					t0 = time.Now()
				}
				if ctx.Err() != nil {
					break
				}
				err := post(ctx, client, l.URL, l.Bodies[i%len(l.Bodies)])
				i++
				if ctx.Err() != nil {
					break // cut off by the end of the run: not the server's fault
				}
				h.Record(time.Since(t0))
				if err != nil {
					failed++
					if firstErr == "" {
						firstErr = err.Error()
					}
					continue
				}
				ok++
			}
			mu.Lock()
			total.Merge(&h)
			res.Requests += ok
			res.Failed += failed
			if res.FirstErr == "" {
				res.FirstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	if l.Rate > 0 {
		res.OfferedRS = l.Rate
		interval := time.Duration(float64(time.Second) / l.Rate)
		// The schedule ends at the run's deadline, not when ctx says so: on
		// a loaded machine the context's timer fires late, and a late
		// scheduler would send past the end.
		end, _ := ctx.Deadline()
		for n := 0; ; n++ {
			t := start.Add(time.Duration(n) * interval)
			if !t.Before(end) {
				break
			}
			if d := time.Until(t); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
			if ctx.Err() != nil {
				break
			}
			intended <- t
		}
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.Rate = float64(res.Requests) / res.Seconds
	res.P50, res.P90, res.P99, res.P999 = ms(total.Quantile(0.5)), ms(total.Quantile(0.9)), ms(total.Quantile(0.99)), ms(total.Quantile(0.999))
	res.Max, res.Mean = ms(total.Max()), ms(total.Mean())
	if l.Rate > 0 {
		res.Late = uint64(len(intended))
	}
	return res
}

func post(ctx context.Context, c *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	// Read the whole answer: the connection is reused, and a client that
	// skipped the body would flatter the server.
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
	}
	return nil
}

// Instances makes n housing instances as the predict API takes them
// (numbers as JSON numbers, no price, no date), from the same generator
// the tests use.
func Instances(seed int64, n int) ([]map[string]any, error) {
	var buf bytes.Buffer
	if err := (synth.Housing{Seed: seed}).Write(&buf, n); err != nil {
		return nil, err
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		return nil, err
	}
	header := recs[0]
	out := make([]map[string]any, 0, n)
	for _, rec := range recs[1:] {
		inst := map[string]any{}
		for i, name := range header {
			switch name {
			case "date", "price":
			case "street", "city", "statezip", "country":
				inst[name] = rec[i]
			default:
				v, err := strconv.ParseFloat(rec[i], 64)
				if err != nil {
					return nil, fmt.Errorf("instance %s=%q: %w", name, rec[i], err)
				}
				inst[name] = v
			}
		}
		out = append(out, inst)
	}
	return out, nil
}

// Bodies makes count predict request bodies of batch instances each.
func Bodies(seed int64, count, batch int) ([][]byte, error) {
	insts, err := Instances(seed, count*batch)
	if err != nil {
		return nil, err
	}
	bodies := make([][]byte, count)
	for i := range bodies {
		b, err := json.Marshal(map[string]any{"instances": insts[i*batch : (i+1)*batch]})
		if err != nil {
			return nil, err
		}
		bodies[i] = b
	}
	return bodies, nil
}

// CSV returns n generated housing rows as a CSV file.
func CSV(seed int64, n int) ([]byte, error) {
	var buf bytes.Buffer
	err := (synth.Housing{Seed: seed}).Write(&buf, n)
	return buf.Bytes(), err
}
