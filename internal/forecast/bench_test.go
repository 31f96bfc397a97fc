package forecast

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// load is a week of request rates at 5-minute steps: a daily curve (quiet
// night, morning ramp, afternoon peak), weekends at 60 %, 10 % noise, and
// optionally a level shift (+60 %) from day 9 on.
func load(days int, shift bool, seed uint64) []Point {
	rng := rand.New(rand.NewPCG(seed, 7))
	step := 5 * time.Minute
	var out []Point
	for d := time.Duration(0); d < time.Duration(days)*24*time.Hour; d += step {
		t := t0.Add(d)
		h := float64(t.Hour()) + float64(t.Minute())/60
		v := 20 + 180*math.Pow(math.Max(0, math.Sin(math.Pi*(h-6)/16)), 2)
		if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
			v *= 0.6
		}
		if shift && d >= 9*24*time.Hour {
			v *= 1.6
		}
		out = append(out, Point{T: t, V: v * (1 + 0.1*rng.NormFloat64())})
	}
	return out
}

// BenchmarkForecastAccuracy reports the MAPE at a 30-minute horizon of the
// seasonal model against predict_linear (over the last 30 min, as KEDA
// users write it) and the current value, from 400 origins over the last
// four days of a 12-day series (history: up to 7 days before each origin).
func BenchmarkForecastAccuracy(b *testing.B) {
	const horizonSteps = 6
	horizon := horizonSteps * 5 * time.Minute
	for _, sc := range []struct {
		name  string
		shift bool
	}{{"seasonal+noise", false}, {"level-shift", true}} {
		b.Run(sc.name, func(b *testing.B) {
			h := load(12, sc.shift, 1)
			m := New()
			var em, el, ec float64
			var n int
			for i := 0; i < b.N; i++ {
				em, el, ec, n = 0, 0, 0, 0
				for end := len(h) - 4*288; end+horizonSteps < len(h); end += 3 {
					from := max(0, end-7*288)
					hist := h[from : end+1]
					truth := h[end+horizonSteps].V
					r, err := m.Forecast(hist, horizon)
					if err != nil {
						b.Fatal(err)
					}
					em += math.Abs(r.Value-truth) / truth
					el += math.Abs(math.Max(PredictLinear(hist, 30*time.Minute, horizon), 0)-truth) / truth
					ec += math.Abs(hist[len(hist)-1].V-truth) / truth
					n++
				}
			}
			b.ReportMetric(em/float64(n), "MAPE-model")
			b.ReportMetric(el/float64(n), "MAPE-predict_linear")
			b.ReportMetric(ec/float64(n), "MAPE-current")
			b.ReportMetric(float64(n), "forecasts")
		})
	}
}

// BenchmarkForecastFit: one fit and forecast on 14 days at one minute
// (20,160 points, daily and weekly seasons: 13 columns), what the scaler does per answer.
func BenchmarkForecastFit(b *testing.B) {
	var h []Point
	for _, p := range load(15, false, 2) {
		for k := 0; k < 5; k++ {
			h = append(h, Point{T: p.T.Add(time.Duration(k) * time.Minute), V: p.V})
		}
	}
	h = h[len(h)-14*24*60:]
	m := New()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r, err := m.Forecast(h, 10*time.Minute); err != nil || r.Seasons != 2 {
			b.Fatal(err, r.Seasons)
		}
	}
}
