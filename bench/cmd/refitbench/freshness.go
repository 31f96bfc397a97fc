package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/refit-ml/refit/bench"
)

type freshness1 struct {
	Upload   int     `json:"upload"`
	Promoted bool    `json:"promoted"`
	ServedMS float64 `json:"served_ms"`  // upload start → first prediction by the new model
	DecideMS float64 `json:"decided_ms"` // upload start → last decision on the new version
	// Steps from the records' timestamps, from the upload's start.
	StagedMS, VersionMS, RunMS, PromotedMS float64
}

// freshness uploads new 5,000-row files one after another and times each
// from the start of its upload to the first prediction served by a model
// trained on it.
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
	predictBody, err := bench.Bodies(9, 1, 1)
	if err != nil {
		return err
	}
	var all []freshness1
	for i := range n {
		csv, err := bench.CSV(int64(100+i), 5000)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("fresh-%02d.csv", i)
		version := i + 1 // each file fills batch_size (500) on its own: one version per upload
		f := freshness1{Upload: i + 1}
		t0 := time.Now()
		if err := upload(ctx, p.url, name, bytes.NewReader(csv)); err != nil {
			return err
		}
		// Poll the served model; stop early when both decisions are in and
		// neither promoted (then no model trained on this file will serve).
		for polls := 0; ; polls++ {
			var st modelStatus
			if err := getJSON(ctx, p.url+"/v1/models/housing", &st); err != nil {
				return err
			}
			if st.Model != nil && st.Model.DatasetVersion >= version {
				var out struct {
					Model struct {
						DatasetVersion int `json:"dataset_version"`
					} `json:"model"`
				}
				if err := postJSON(ctx, p.url+"/v1/models/housing:predict", json.RawMessage(predictBody[0]), &out); err != nil {
					return err
				}
				if out.Model.DatasetVersion >= version {
					f.Promoted, f.ServedMS = true, msSince(t0)
					break
				}
			}
			if polls%50 == 49 {
				if _, err := waitDecided(ctx, p.url, version, 2, 0); err == nil {
					break // decided, nothing promoted: the champion stayed
				}
			}
			if time.Since(t0) > 60*time.Second {
				return fmt.Errorf("upload %d: no decision after 60 s", i+1)
			}
			time.Sleep(2 * time.Millisecond)
		}
		proms, err := waitDecided(ctx, p.url, version, 2, 60*time.Second)
		if err != nil {
			return err
		}
		for _, d := range proms.Decisions {
			if d.EvalVersion == version {
				f.DecideMS = max(f.DecideMS, ms(d.DecidedAt.Sub(t0)))
			}
		}
		for _, pr := range proms.Promotions {
			if pr.Version == version {
				f.PromotedMS = ms(pr.PromotedAt.Sub(t0))
			}
		}
		var ds datasetStatus
		if err := getJSON(ctx, p.url+"/v1/datasets/housing", &ds); err != nil {
			return err
		}
		for _, in := range ds.Ingests {
			if strings.HasSuffix(in.Source.Object, name) {
				f.StagedMS = ms(in.StagedAt.Sub(t0))
			}
		}
		for _, v := range ds.Versions {
			if v.Number == version {
				f.VersionMS = ms(v.CreatedAt.Sub(t0))
			}
		}
		var runs runsPage
		if err := getJSON(ctx, p.url+"/v1/datasets/housing/runs?limit=100", &runs); err != nil {
			return err
		}
		for _, r := range runs.Runs {
			if r.Version == version {
				f.RunMS = max(f.RunMS, ms(r.CreatedAt.Sub(t0)))
			}
		}
		all = append(all, f)
		time.Sleep(200 * time.Millisecond) // let the process settle before the next file
	}
	r := s.report
	r.printf("## Freshness, embedded profile\n\n%d uploads of 5,000 new rows each (batch size 500, so one version per upload) into `refit run`; each timed from the start of its upload. Steps from the records' timestamps (same clock).\n\n", n)
	var served, staged, version, run, decided, promoted []float64
	for _, f := range all {
		if f.Promoted {
			served = append(served, f.ServedMS)
			promoted = append(promoted, f.PromotedMS)
		}
		staged, version, run, decided = append(staged, f.StagedMS), append(version, f.VersionMS), append(run, f.RunMS), append(decided, f.DecideMS)
	}
	r.printf("| step (ms from upload start) | p50 | max |\n|---|---|---|\n")
	for _, row := range []struct {
		name string
		xs   []float64
	}{{"ingest staged_at", staged}, {"version created_at", version}, {"last run created_at", run}, {"last decision decided_at", decided},
		{"promotion promoted_at (promoted uploads)", promoted}, {"first prediction by the new model (promoted uploads)", served}} {
		st := quantiles(row.xs)
		r.printf("| %s | %s | %s |\n", row.name, fmtNum(st[0]), fmtNum(st[1]))
	}
	r.printf("\n%d of %d uploads produced a promotion (a challenger must beat the champion on the same held-out rows; otherwise the champion keeps serving and there is no new model to time).\n\n", len(served), n)
	r.Raw["freshness"] = all
	return nil
}

func msSince(t time.Time) float64 { return ms(time.Since(t)) }
func ms(d time.Duration) float64  { return float64(d) / 1e6 }

// quantiles returns p50 and max.
func quantiles(xs []float64) [2]float64 {
	if len(xs) == 0 {
		return [2]float64{}
	}
	s := statOf(xs)
	return [2]float64{s.Median, s.Max}
}
