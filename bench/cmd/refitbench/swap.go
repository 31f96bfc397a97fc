package main

import (
	"context"
	"fmt"
	"time"

	"github.com/refit-ml/refit/bench"
	"github.com/refit-ml/refit/client"
)

// swap runs the saturation load with and without a manual promotion every
// second, alternating between the two runs of the first version.
func (s *suiteState) swap(ctx context.Context) error {
	train, err := bench.CSV(3, 3000)
	if err != nil {
		return err
	}
	p, err := s.refitWithModel(ctx, "swap", train)
	if err != nil {
		return err
	}
	defer p.stop()
	c := client.New(p.url)
	runs, err := c.Runs(ctx, "housing", client.RunsQuery{})
	if err != nil {
		return err
	}
	if len(runs.Runs) < 2 {
		return fmt.Errorf("want two runs to swap between, got %d", len(runs.Runs))
	}
	// Start with the run that is not serving: promoting the champion again
	// is refused.
	cur, err := c.Model(ctx, "housing")
	if err != nil || cur.Model == nil {
		return fmt.Errorf("no model served: %v", err)
	}
	if runs.Runs[0].ID == cur.Model.ID {
		runs.Runs[0], runs.Runs[1] = runs.Runs[1], runs.Runs[0]
	}
	url := p.url + "/v1/models/housing:predict"
	dur, warm := s.measure()
	if _, err := s.load(ctx, loadRun{url: url, batch: 1, conns: closedConns, duration: warm}); err != nil {
		return err
	}
	var calm, swapped []bench.Result
	var swaps, swapErrs int
	next := 0 // the run to promote next: the one not serving, across reps
	for range s.reps() {
		r, err := s.load(ctx, loadRun{url: url, batch: 1, conns: closedConns, duration: dur})
		if err != nil {
			return err
		}
		calm = append(calm, r)

		before, _ := c.Model(ctx, "housing")
		stop := make(chan struct{})
		done := make(chan [2]int)
		go func() {
			n, bad := 0, 0
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					next = (next + n - bad) % 2 // before the send: the caller reads it next
					done <- [2]int{n, bad}
					return
				case <-tick.C:
					id := runs.Runs[(next+n-bad)%2].ID
					n++
					if _, err := c.Promote(ctx, "housing", client.PromoteRequest{RunID: id, Reason: "refitbench swap"}); err != nil {
						bad++
						s.report.note("swap promotion: %v", err)
					}
				}
			}
		}()
		r, err = s.load(ctx, loadRun{url: url, batch: 1, conns: closedConns, duration: dur})
		close(stop)
		counts := <-done
		if err != nil {
			return err
		}
		after, _ := c.Model(ctx, "housing")
		if before.Model != nil && after.Model != nil {
			swaps += int(after.Model.Sequence - before.Model.Sequence)
		}
		swapErrs += counts[1]
		swapped = append(swapped, r)
	}
	rep := s.report
	rep.printf("## Hot swap under load\n\nSaturation (1 instance/request, %d connections), %d × %v each, with and without `POST /v1/datasets/housing/promotions` once a second alternating between two runs. Median (min–max).\n\n", closedConns, s.reps(), dur)
	rep.printf("| | req/s | p50 ms | p99 ms | p99.9 ms | max ms | failed requests |\n|---|---|---|---|---|---|---|\n")
	for _, row := range []struct {
		name string
		rs   []bench.Result
	}{{"no swaps", calm}, {fmt.Sprintf("promotion every second (%d swaps served, %d promotion errors)", swaps, swapErrs), swapped}} {
		rep.printf("| %s | %s | %s | %s | %s | %s | %d |\n", row.name, statOf(rates(row.rs)), statOf(field(row.rs, p50)),
			statOf(field(row.rs, p99)), statOf(field(row.rs, p999)), statOf(field(row.rs, func(r bench.Result) float64 { return r.Max })), failed(row.rs))
	}
	rep.printf("\np99 with swaps / without: %.2f.\n\n", statOf(field(swapped, p99)).Median/statOf(field(calm, p99)).Median)
	rep.Raw["swap"] = map[string]any{"calm": calm, "swapped": swapped, "swaps": swaps}
	return nil
}
