package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/refit-ml/refit/bench"
	"github.com/refit-ml/refit/client"
)

type throughput1 struct {
	Rows      int     `json:"rows"`
	Accepted  int     `json:"accepted"`
	Seconds   float64 `json:"seconds"` // upload start → both runs decided (ingest + version + train + decide, both specs)
	RowsPerS  float64 `json:"rows_per_s"`
	PeakRSSMB float64 `json:"peak_rss_mb"`
	// Steps from the records' timestamps, in seconds from the upload's start.
	StagedS, VersionS, TrainedS, DecidedS float64
	// The pandas + scikit-learn script on the same file.
	Pandas map[string]float64 `json:"pandas,omitempty"`
}

// throughput feeds one generated file of each size to a fresh `refit run`
// and times ingest + version + train; then the seed stack's steps in pandas
// and scikit-learn on the same file.
func (s *suiteState) throughput(ctx context.Context) error {
	var sizes []int
	for _, f := range strings.Split(s.cfg.sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("-sizes: %q is not a row count", f)
		}
		sizes = append(sizes, n)
	}
	if s.cfg.quick {
		sizes = sizes[:1]
	}
	reps := 3
	if s.cfg.quick {
		reps = 1
	}
	var all [][]throughput1 // per size, per repeat
	for _, n := range sizes {
		csv, err := bench.CSV(int64(n), n)
		if err != nil {
			return err
		}
		path, _ := filepath.Abs(filepath.Join(s.cfg.out, fmt.Sprintf("throughput-%d.csv", n)))
		if err := os.WriteFile(path, csv, 0o644); err != nil {
			return err
		}
		var runs []throughput1
		for range reps { // refit and pandas alternate, so a change of load hits both
			t, err := s.throughputOnce(ctx, n, path, csv)
			if err != nil {
				return err
			}
			runs = append(runs, t)
		}
		all = append(all, runs)
		_ = os.Remove(path)
	}
	r := s.report
	r.printf("## Throughput: ingest + version + train + decide\n\nOne generated file per size uploaded to a fresh `refit run`, timed from the start of the upload to both runs decided (both specs trained, scored and compared with the champion); peak RSS is the process's VmHWM. Baseline: `bench/flask/train.py` (pandas + scikit-learn: read, coerce, hash strings into 10 features each, 0.7 split, fit, score) on the same file. Both get the same CPUs (`taskset -c %s`), run alternately.\n\n", batchCPUs)
	r.printf("Median of %d runs each, range in brackets; the steps are medians of the records' timestamps, in seconds from the upload's start.\n\n", reps)
	r.printf("| rows | refit s | refit rows/s | refit peak RSS MiB | pandas+sklearn s | pandas peak RSS MiB | pandas time / refit time | staged | versioned | trained | decided |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, runs := range all {
		pick := func(f func(throughput1) float64) []float64 {
			var xs []float64
			for _, t := range runs {
				if v := f(t); v > 0 {
					xs = append(xs, v)
				}
			}
			return xs
		}
		refitS := pick(func(t throughput1) float64 { return t.Seconds })
		pandasS := pick(func(t throughput1) float64 { return t.Pandas["total_s"] })
		ratios := pick(func(t throughput1) float64 {
			if t.Pandas == nil {
				return 0
			}
			return t.Pandas["total_s"] / t.Seconds
		})
		ps, prss, ratio := "n/a", "n/a", "n/a"
		if len(pandasS) > 0 {
			ps = statOf(pandasS).String()
			prss = fmtNum(statOf(pick(func(t throughput1) float64 { return t.Pandas["peak_rss_mb"] })).Median)
			rs := statOf(ratios)
			ratio = fmt.Sprintf("%.2f (%.2f–%.2f)", rs.Median, rs.Min, rs.Max)
		}
		n := runs[0].Rows
		step := func(f func(throughput1) float64) string { return fmt.Sprintf("%.2f", statOf(pick(f)).Median) }
		r.printf("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", n, statOf(refitS), fmtNum(float64(n)/statOf(refitS).Median),
			fmtNum(statOf(pick(func(t throughput1) float64 { return t.PeakRSSMB })).Median), ps, prss, ratio,
			step(func(t throughput1) float64 { return t.StagedS }), step(func(t throughput1) float64 { return t.VersionS }),
			step(func(t throughput1) float64 { return t.TrainedS }), step(func(t throughput1) float64 { return t.DecidedS }))
	}
	r.printf("\n")
	r.Raw["throughput"] = all
	return nil
}

// batchCPUs are the CPUs both batch jobs, refit and pandas, run on.
const batchCPUs = "0,1"

// throughputOnce times refit, then pandas, on one file.
func (s *suiteState) throughputOnce(ctx context.Context, n int, path string, csv []byte) (throughput1, error) {
	p, err := s.refitProcOn(ctx, fmt.Sprintf("throughput-%d", n), batchCPUs)
	if err != nil {
		return throughput1{}, err
	}
	t := throughput1{Rows: n}
	t0 := time.Now()
	c := client.New(p.url)
	_, err = c.Upload(ctx, "housing", "big.csv", bytes.NewReader(csv), int64(len(csv)))
	var h client.History
	if err == nil {
		h, err = bench.WaitDecided(ctx, c, 1, 2, 30*time.Minute)
	}
	t.Seconds = time.Since(t0).Seconds()
	t.PeakRSSMB = p.peakRSS()
	var ds client.Dataset
	var runs client.RunsPage
	if err == nil {
		ds, err = c.Dataset(ctx, "housing")
	}
	if err == nil {
		runs, err = c.Runs(ctx, "housing", client.RunsQuery{Version: 1, Limit: 100})
	}
	p.stop()
	if err != nil {
		return t, err
	}
	for _, in := range ds.Ingests {
		t.Accepted += in.Accepted
		t.StagedS = max(t.StagedS, in.StagedAt.Sub(t0).Seconds())
	}
	for _, v := range ds.Versions {
		if v.Number == 1 {
			t.VersionS = v.CreatedAt.Sub(t0).Seconds()
		}
	}
	for _, r := range runs.Runs {
		t.TrainedS = max(t.TrainedS, r.CreatedAt.Sub(t0).Seconds())
	}
	for _, d := range h.Decisions {
		t.DecidedS = max(t.DecidedS, d.DecidedAt.Sub(t0).Seconds())
	}
	t.RowsPerS = float64(n) / t.Seconds
	py := pinned(batchCPUs, s.cfg.python, "bench/flask/train.py", path)
	py.Stderr = os.Stderr
	if out, err := py.Output(); err != nil {
		s.report.note("pandas baseline on %d rows: %v", n, err)
	} else if err := json.Unmarshal(out, &t.Pandas); err != nil {
		s.report.note("pandas baseline output %q: %v", out, err)
	}
	return t, nil
}
