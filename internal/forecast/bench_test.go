package forecast

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// load is a series of request rates at 5-minute steps: a daily curve
// (quiet night, morning ramp, afternoon peak), weekends at 60 %, 10 %
// noise, and optionally a level shift (+60 %) from day 9 on. clean is the
// same curve without the noise.
func load(days int, shift bool, seed uint64) (obs []Point, clean []float64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	step := 5 * time.Minute
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
		obs = append(obs, Point{T: t, V: v * (1 + 0.1*rng.NormFloat64())})
		clean = append(clean, v)
	}
	return obs, clean
}

// BenchmarkForecastAccuracy reports the MAPE at a 30-minute horizon of the
// seasonal model against predict_linear (over the last 30 min, as KEDA
// users write it) and the current value, from 382 origins over the last
// four days of a 12-day series (history: up to 7 days before each origin).
// Errors are against the observed (noisy) value; MAPE-noise is the
// noise-free curve's own, the part no forecast can remove. MAPE-answer is
// what KEDA is told (floored at the current, noisy, value); MAPE-model is
// the model's forecast before that floor.
func BenchmarkForecastAccuracy(b *testing.B) {
	const horizonSteps = 6
	horizon := horizonSteps * 5 * time.Minute
	for _, sc := range []struct {
		name  string
		shift bool
	}{{"seasonal+noise", false}, {"level-shift", true}} {
		b.Run(sc.name, func(b *testing.B) {
			h, clean := load(12, sc.shift, 1)
			m := New()
			var ea, em, el, ec, en float64
			var n int
			for i := 0; i < b.N; i++ {
				ea, em, el, ec, en, n = 0, 0, 0, 0, 0, 0
				for end := len(h) - 4*288; end+horizonSteps < len(h); end += 3 {
					from := max(0, end-7*288)
					hist := h[from : end+1]
					truth := h[end+horizonSteps].V
					r, err := m.Forecast(hist, horizon)
					if err != nil {
						b.Fatal(err)
					}
					ape := func(v float64) float64 { return math.Abs(v-truth) / truth }
					ea += ape(r.Value)
					em += ape(r.Raw)
					el += ape(math.Max(PredictLinear(hist, 30*time.Minute, horizon), 0))
					ec += ape(hist[len(hist)-1].V)
					en += ape(clean[end+horizonSteps])
					n++
				}
			}
			b.ReportMetric(ea/float64(n), "MAPE-answer")
			b.ReportMetric(em/float64(n), "MAPE-model")
			b.ReportMetric(el/float64(n), "MAPE-predict_linear")
			b.ReportMetric(ec/float64(n), "MAPE-current")
			b.ReportMetric(en/float64(n), "MAPE-noise")
			b.ReportMetric(float64(n), "forecasts")
		})
	}
}

// BenchmarkForecastFit: one fit and forecast on 14 days at one minute
// (20,160 points, daily and weekly seasons: 13 columns), what the scaler does per answer.
func BenchmarkForecastFit(b *testing.B) {
	var h []Point
	obs, _ := load(15, false, 2)
	for _, p := range obs {
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
