package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/refit-ml/refit/bench"
)

// freshness times uploads to a fresh `refit run` (bench.MeasureFreshness),
// then the freshness curve: the same 5,000-row uploads on datasets that
// already hold 10k, 100k and 1M rows.
func (s *suiteState) freshness(ctx context.Context) error {
	p, err := s.refitProc(ctx, "freshness")
	if err != nil {
		return err
	}
	n := 20
	if s.cfg.quick {
		n = 3
	}
	all, err := bench.MeasureFreshness(ctx, p.url, n)
	p.stop()
	s.report.Raw["freshness"] = all
	if err != nil {
		return err
	}
	s.report.printf("## Freshness, embedded profile\n\n%d uploads of 5,000 new rows each (batch size 500, so one version per upload) into `refit run`; each timed from the start of its upload. Steps from the records' timestamps (same clock).\n\n%s", n, bench.FreshnessTable(all))
	return s.freshnessCurve(ctx)
}

// curvePoint is the freshness of uploads on a dataset of Base rows.
type curvePoint struct {
	Base    int               `json:"base_rows"`
	Uploads []bench.Freshness `json:"uploads"`
}

// freshnessCurve: for each base size, a `refit run` (all pinned to the
// freshness run's CPU) is given one file of that many rows as its first
// version; then the same 5,000-row uploads go to each in turn, round after
// round, so that a change of load on this shared machine hits every size
// alike. Each upload is timed as in MeasureFreshness.
func (s *suiteState) freshnessCurve(ctx context.Context) error {
	var sizes []int
	for _, f := range strings.Split(s.cfg.freshSizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("-fresh-sizes: %q is not a row count", f)
		}
		sizes = append(sizes, n)
	}
	rounds := 12
	if s.cfg.quick {
		rounds = 2
	}
	curve := make([]curvePoint, len(sizes))
	procs := make([]*proc, len(sizes))
	defer func() {
		for _, p := range procs {
			if p != nil {
				p.stop()
			}
		}
	}()
	for i, base := range sizes {
		p, err := s.refitProc(ctx, fmt.Sprintf("freshness-%d", base))
		if err != nil {
			return err
		}
		procs[i], curve[i].Base = p, base
		if err := bench.Preload(ctx, p.url, base); err != nil {
			return fmt.Errorf("freshness: preload %d rows: %w", base, err)
		}
	}
	for round := range rounds {
		for i, p := range procs {
			f, err := bench.MeasureFreshnessFrom(ctx, p.url, 1, 2+round)
			curve[i].Uploads = append(curve[i].Uploads, f...)
			if err != nil {
				s.report.Raw["freshness_curve"] = curve
				return fmt.Errorf("freshness on %d rows: %w", sizes[i], err)
			}
		}
	}
	uploads := rounds
	s.report.Raw["freshness_curve"] = curve
	r := s.report
	r.printf("### Freshness curve: 5,000-row uploads on a dataset of N rows\n\nFor each N, a `refit run` (all pinned to CPU %s) gets one generated file of N rows as version 1 and decides it; then %d rounds of one upload of 5,000 new rows to each size in turn (each upload its own version), timed from the start of its upload to both runs decided and, when a challenger won, to the first prediction by the new model. Medians, max in brackets; flatness is each median over the smallest N's.\n\n", serverCPU, uploads)
	r.printf("| N rows | decided ms | ratio | first prediction by the new model ms (promoted uploads) | ratio | promoted |\n|---|---|---|---|---|---|\n")
	var decided0, served0 float64
	var decidedRatios, servedRatios []float64
	for i, pt := range curve {
		var decided, served []float64
		for _, f := range pt.Uploads {
			decided = append(decided, f.DecideMS)
			if f.Promoted {
				served = append(served, f.ServedMS)
			}
		}
		d, sv := statOf(decided), statOf(served)
		if i == 0 {
			decided0, served0 = d.Median, sv.Median
		}
		dr, sr := ratioOf(d.Median, decided0), ratioOf(sv.Median, served0)
		decidedRatios, servedRatios = append(decidedRatios, dr), append(servedRatios, sr)
		r.printf("| %d | %s (%s) | %.2f | %s (%s) | %.2f | %d of %d |\n", pt.Base, fmtNum(d.Median), fmtNum(d.Max), dr,
			fmtNum(sv.Median), fmtNum(sv.Max), sr, len(served), len(pt.Uploads))
	}
	r.printf("\nSpread (largest median over smallest): decided %.2f, served %.2f (target: within 1.20).\n\n",
		spread(decidedRatios), spread(servedRatios))
	return nil
}

func ratioOf(x, base float64) float64 {
	if base == 0 {
		return 0
	}
	return x / base
}

// spread is max/min of the positive ratios.
func spread(xs []float64) float64 {
	xs = slices.DeleteFunc(slices.Clone(xs), func(x float64) bool { return x <= 0 })
	if len(xs) == 0 {
		return 0
	}
	return slices.Max(xs) / slices.Min(xs)
}
