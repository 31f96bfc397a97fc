package main

import (
	"context"

	"github.com/refit-ml/refit/bench"
)

// freshness times uploads to a fresh `refit run` (bench.MeasureFreshness).
func (s *suiteState) freshness(ctx context.Context) error {
	p, err := s.refitProc(ctx, "freshness")
	if err != nil {
		return err
	}
	defer p.stop()
	n := 20
	if s.cfg.quick {
		n = 3
	}
	all, err := bench.MeasureFreshness(ctx, p.url, n)
	s.report.Raw["freshness"] = all
	if err != nil {
		return err
	}
	s.report.printf("## Freshness, embedded profile\n\n%d uploads of 5,000 new rows each (batch size 500, so one version per upload) into `refit run`; each timed from the start of its upload. Steps from the records' timestamps (same clock).\n\n%s", n, bench.FreshnessTable(all))
	return nil
}
