package forecast

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// series samples f every step for span.
func series(span, step time.Duration, f func(time.Duration) float64) []Point {
	var out []Point
	for d := time.Duration(0); d <= span; d += step {
		out = append(out, Point{T: t0.Add(d), V: f(d)})
	}
	return out
}

func daily(d time.Duration) float64 {
	h := math.Mod(d.Hours(), 24)
	return 100 + 80*math.Sin(2*math.Pi*(h-8)/24)
}

func TestForecastKnownSeries(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name    string
		model   *Model
		history []Point
		horizon time.Duration
		want    float64
		tol     float64
		seasons int
	}{
		{
			name:  "pure daily sine: exact at the horizon",
			model: New(day), history: series(3*day+6*time.Hour, 5*time.Minute, daily),
			horizon: 2 * time.Hour, want: daily(3*day + 8*time.Hour), tol: 1e-6, seasons: 1,
		},
		{
			name:  "daily sine after a level shift of +50: the recent level follows it",
			model: New(day),
			history: series(3*day+6*time.Hour, 5*time.Minute, func(d time.Duration) float64 {
				if d > 3*day {
					return daily(d) + 50
				}
				return daily(d)
			}),
			horizon: time.Hour, want: daily(3*day+7*time.Hour) + 50, tol: 6, seasons: 1,
		},
		{
			name:  "falling edge: never less than the current value",
			model: New(day), history: series(2*day+14*time.Hour, 5*time.Minute, daily),
			horizon: 2 * time.Hour, want: daily(2*day + 14*time.Hour), tol: 1e-9, seasons: 1,
		},
		{
			name:  "half a day of history: no season yet, the current value",
			model: New(day), history: series(12*time.Hour, 5*time.Minute, daily),
			horizon: time.Hour, want: daily(12 * time.Hour), tol: 1e-9, seasons: 0,
		},
		{
			name:  "weekly season needs a week: with three days only the daily one is fitted",
			model: New(day, 7*day), history: series(3*day+6*time.Hour, 10*time.Minute, daily),
			horizon: time.Hour, want: daily(3*day + 7*time.Hour), tol: 1e-6, seasons: 1,
		},
		{
			name:  "a constant series forecasts itself",
			model: New(day), history: series(2*day, 10*time.Minute, func(time.Duration) float64 { return 42 }),
			horizon: time.Hour, want: 42, tol: 1e-9, seasons: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tt.model.Forecast(tt.history, tt.horizon)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(r.Value-tt.want) > tt.tol {
				t.Errorf("value %.4f, want %.4f ± %g (raw %.4f, current %.4f)", r.Value, tt.want, tt.tol, r.Raw, r.Current)
			}
			if r.Value < r.Current {
				t.Errorf("value %.4f below the current %.4f", r.Value, r.Current)
			}
			if r.Seasons != tt.seasons {
				t.Errorf("seasons %d, want %d", r.Seasons, tt.seasons)
			}
			if want := tt.history[len(tt.history)-1].T.Add(tt.horizon); !r.At.Equal(want) {
				t.Errorf("at %s, want %s", r.At, want)
			}
		})
	}
}

func TestForecastBadInput(t *testing.T) {
	day := 24 * time.Hour
	withNaN := series(3*day+6*time.Hour, 5*time.Minute, daily)
	for i := range withNaN {
		if i%7 == 0 {
			withNaN[i].V = math.NaN()
		}
	}
	withNaN[len(withNaN)-1].V = math.Inf(1)
	allNaN := series(time.Hour, time.Minute, func(time.Duration) float64 { return math.NaN() })

	t.Run("empty history", func(t *testing.T) {
		if _, err := New().Forecast(nil, time.Hour); !errors.Is(err, ErrNoHistory) {
			t.Fatalf("err %v, want ErrNoHistory", err)
		}
	})
	t.Run("only NaN", func(t *testing.T) {
		r, err := New().Forecast(allNaN, time.Minute)
		if !errors.Is(err, ErrNoHistory) || r.Dropped != len(allNaN) {
			t.Fatalf("err %v dropped %d, want ErrNoHistory and %d dropped", err, r.Dropped, len(allNaN))
		}
	})
	t.Run("NaN and Inf points are dropped, the fit still holds", func(t *testing.T) {
		r, err := New(day).Forecast(withNaN, 2*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		// The last finite point is one step before the Inf.
		want := daily(3*day + 6*time.Hour - 5*time.Minute + 2*time.Hour)
		if math.Abs(r.Value-want) > 1e-6 || r.Dropped == 0 || r.Seasons != 1 {
			t.Fatalf("value %.4f want %.4f, dropped %d, seasons %d", r.Value, want, r.Dropped, r.Seasons)
		}
	})
	for _, h := range []time.Duration{0, -time.Minute} {
		t.Run("horizon "+h.String(), func(t *testing.T) {
			if _, err := New().Forecast(withNaN, h); err == nil || !strings.Contains(err.Error(), "horizon") {
				t.Fatalf("err %v, want one naming the horizon", err)
			}
		})
	}
	t.Run("horizon longer than the history", func(t *testing.T) {
		_, err := New().Forecast(series(time.Hour, time.Minute, daily), 2*time.Hour)
		if !errors.Is(err, ErrShortHistory) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("one point: the current value", func(t *testing.T) {
		r, err := New().Forecast([]Point{{T: t0, V: 7}}, 0+time.Nanosecond)
		if err == nil {
			t.Fatalf("a single point spans nothing; want the horizon error, got %+v", r)
		}
	})
}

func TestForecastNoisyBeatsBaselines(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	day := 24 * time.Hour
	h := series(4*day, 5*time.Minute, func(d time.Duration) float64 { return daily(d) * (1 + 0.05*rng.NormFloat64()) })
	var errModel, errLinear, errCurrent float64
	var n int
	m := New(day)
	for end := len(h) / 2; end+12 < len(h); end += 7 {
		truth := daily(h[end+12].T.Sub(t0))
		r, err := m.Forecast(h[:end+1], time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		errModel += math.Abs(r.Raw-truth) / truth
		errLinear += math.Abs(PredictLinear(h[:end+1], 30*time.Minute, time.Hour)-truth) / truth
		errCurrent += math.Abs(h[end].V-truth) / truth
		n++
	}
	t.Logf("MAPE at 1h over %d forecasts: model %.3f, predict_linear %.3f, current %.3f", n, errModel/float64(n), errLinear/float64(n), errCurrent/float64(n))
	if errModel >= errLinear || errModel >= errCurrent {
		t.Fatalf("model MAPE %.3f does not beat predict_linear %.3f and current %.3f", errModel/float64(n), errLinear/float64(n), errCurrent/float64(n))
	}
}

func TestPredictLinear(t *testing.T) {
	h := series(time.Hour, time.Minute, func(d time.Duration) float64 { return 10 + 2*d.Minutes() })
	if got := PredictLinear(h, 10*time.Minute, 30*time.Minute); math.Abs(got-(10+2*90)) > 1e-9 {
		t.Fatalf("got %v, want 190", got)
	}
	if !math.IsNaN(PredictLinear(nil, time.Minute, time.Minute)) {
		t.Fatal("empty history should be NaN")
	}
}
