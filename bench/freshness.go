package bench

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/refit-ml/refit/client"
)

// Freshness is one upload's way from the start of its upload to the first
// prediction served by a model trained on it.
type Freshness struct {
	Upload   int     `json:"upload"`
	Promoted bool    `json:"promoted"`
	ServedMS float64 `json:"served_ms"`  // upload start → first prediction by the new model
	DecideMS float64 `json:"decided_ms"` // upload start → last decision on the new version
	// Steps from the records' timestamps, from the upload's start.
	StagedMS, VersionMS, RunMS, PromotedMS float64
}

// MeasureFreshness uploads n new 5,000-row files to the Refit at base one
// after another (one version each at batch size 500) and times each.
func MeasureFreshness(ctx context.Context, base string, n int) ([]Freshness, error) {
	return MeasureFreshnessFrom(ctx, base, n, 1)
}

// MeasureFreshnessFrom is MeasureFreshness on a dataset whose next version
// is first: the uploads are those MeasureFreshness would make from its
// first-th on (Preload made version 1, or earlier calls the ones before).
func MeasureFreshnessFrom(ctx context.Context, base string, n, first int) ([]Freshness, error) {
	p := struct{ url string }{base}
	predictBody, err := Bodies(9, 1, 1)
	if err != nil {
		return nil, err
	}
	var all []Freshness
	for k := range n {
		i := first - 1 + k
		csv, err := CSV(int64(100+i), 5000)
		if err != nil {
			return all, err
		}
		name := fmt.Sprintf("fresh-%02d.csv", i)
		version := i + 1 // each file fills batch_size (500) on its own: one version per upload
		f := Freshness{Upload: i + 1}
		t0 := time.Now()
		c := client.New(p.url)
		if _, err := c.Upload(ctx, "housing", name, bytes.NewReader(csv), int64(len(csv))); err != nil {
			return all, err
		}
		// Poll the served model; stop early when both decisions are in and
		// neither promoted (then no model trained on this file will serve).
		for polls := 0; ; polls++ {
			st, err := c.Model(ctx, "housing")
			if err != nil {
				return all, err
			}
			if st.Model != nil && st.Model.DatasetVersion >= version {
				out, err := c.PredictJSON(ctx, "housing", predictBody[0])
				if err != nil {
					return all, err
				}
				if out.Model.DatasetVersion >= version {
					f.Promoted, f.ServedMS = true, msSince(t0)
					break
				}
			}
			if polls%50 == 49 {
				if _, err := WaitDecided(ctx, c, version, 2, 0); err == nil {
					break // decided, nothing promoted: the champion stayed
				}
			}
			if time.Since(t0) > 60*time.Second {
				return all, fmt.Errorf("upload %d: no decision after 60 s", i+1)
			}
			time.Sleep(2 * time.Millisecond)
		}
		proms, err := WaitDecided(ctx, c, version, 2, 60*time.Second)
		if err != nil {
			return all, err
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
		ds, err := c.Dataset(ctx, "housing")
		if err != nil {
			return all, err
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
		runs, err := c.Runs(ctx, "housing", client.RunsQuery{Limit: 100})
		if err != nil {
			return all, err
		}
		for _, r := range runs.Runs {
			if r.Version == version {
				f.RunMS = max(f.RunMS, ms(r.CreatedAt.Sub(t0)))
			}
		}
		all = append(all, f)
		time.Sleep(200 * time.Millisecond) // let the process settle before the next file
	}
	return all, nil
}

// Preload uploads one generated file of rows rows (seed 1) as the
// dataset's first version and waits until both its runs are decided, so
// that the next upload is timed on a dataset of that size.
func Preload(ctx context.Context, base string, rows int) error {
	csv, err := CSV(1, rows)
	if err != nil {
		return err
	}
	c := client.New(base)
	if _, err := c.Upload(ctx, "housing", "preload.csv", bytes.NewReader(csv), int64(len(csv))); err != nil {
		return err
	}
	_, err = WaitDecided(ctx, c, 1, 2, 30*time.Minute)
	return err
}

// FreshnessTable summarises the uploads as Markdown.
func FreshnessTable(all []Freshness) string {
	var b strings.Builder
	n := len(all)
	var served, staged, version, run, decided, promoted []float64
	for _, f := range all {
		if f.Promoted {
			served = append(served, f.ServedMS)
			promoted = append(promoted, f.PromotedMS)
		}
		staged, version, run, decided = append(staged, f.StagedMS), append(version, f.VersionMS), append(run, f.RunMS), append(decided, f.DecideMS)
	}
	fmt.Fprintf(&b, "| step (ms from upload start) | p50 | max |\n|---|---|---|\n")
	for _, row := range []struct {
		name string
		xs   []float64
	}{{"ingest staged_at", staged}, {"version created_at", version}, {"last run created_at", run}, {"last decision decided_at", decided},
		{"promotion promoted_at (promoted uploads)", promoted}, {"first prediction by the new model (promoted uploads)", served}} {
		st := quantiles(row.xs)
		fmt.Fprintf(&b, "| %s | %s | %s |\n", row.name, fmtNum(st[0]), fmtNum(st[1]))
	}
	fmt.Fprintf(&b, "\n%d of %d uploads produced a promotion (a challenger must beat the champion on the same held-out rows; otherwise the champion keeps serving and there is no new model to time).\n\n", len(served), n)
	return b.String()
}

func msSince(t time.Time) float64 { return ms(time.Since(t)) }

// quantiles returns the median and the max.
func quantiles(xs []float64) [2]float64 {
	if len(xs) == 0 {
		return [2]float64{}
	}
	s := append([]float64(nil), xs...)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return [2]float64{m, s[len(s)-1]}
}

func fmtNum(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}
