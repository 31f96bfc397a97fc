// Package forecast predicts a request rate a short horizon ahead from its
// recent history: a least-squares regression (internal/linreg, Refit's
// own) on Fourier terms of the seasons (time of day, day of week) plus
// the recent level.
//
// Why this model: request rates repeat by the day and the week, and a pod
// takes minutes to become ready, so the forecast has to see a morning peak
// coming before it starts. Fourier terms fit smooth daily shapes with few
// parameters (2 per harmonic), refit from scratch in milliseconds on two
// weeks of one-minute points, and need no state between fits; the mean
// residual of the recent window then moves the seasonal curve to today's
// level, so a level shift is followed within that window. Holt-Winters would
// need a smoothing state per series and one value per season slot (1,440 for
// a day at one minute). The comparison is in BENCHMARKS.md.
package forecast

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/refit-ml/refit/internal/linreg"
)

// Point is one sample of the series.
type Point struct {
	T time.Time
	V float64
}

// ErrNoHistory: the series has no finite value at all.
var ErrNoHistory = errors.New("forecast: no finite value in the history")

// ErrShortHistory: the history spans less than the horizon. The Result
// still carries the current value.
var ErrShortHistory = errors.New("forecast: horizon longer than the history")

// Model fits and forecasts; the zero value is not usable, use New.
type Model struct {
	// Seasons are the periods to model (e.g. 24h and 168h). A season is
	// used only once the history covers MinCycles of it.
	Seasons []time.Duration
	// Harmonics per season (same order as Seasons; the last value repeats).
	Harmonics []int
	// MinCycles of a season the history must span before it is modelled.
	MinCycles float64
	// LevelWindow is the recent span whose mean residual sets the level;
	// 0 means max(horizon, 10 points).
	LevelWindow time.Duration
}

// New returns the default model: daily and weekly seasons with 4 and 2
// harmonics, each modelled after one full cycle of history.
func New(seasons ...time.Duration) *Model {
	if len(seasons) == 0 {
		seasons = []time.Duration{24 * time.Hour, 7 * 24 * time.Hour}
	}
	return &Model{Seasons: seasons, Harmonics: []int{4, 2}, MinCycles: 1}
}

// Result is one forecast.
type Result struct {
	// Value is the forecast at At, never less than Current.
	Value float64
	// Raw is the model's forecast before the floor at Current.
	Raw float64
	// Current is the last finite value of the history.
	Current float64
	At      time.Time
	// Seasons modelled (0: too little history, Value is Current).
	Seasons int
	// Points used in the fit (NaN and Inf dropped).
	Points int
	// Dropped non-finite points.
	Dropped int
}

// Forecast fits the history (in time order, as Prometheus returns it) and
// predicts its value horizon after the last point. With too little history
// for any season, it answers the current value.
func (m *Model) Forecast(history []Point, horizon time.Duration) (Result, error) {
	if horizon <= 0 {
		return Result{}, fmt.Errorf("forecast: horizon %s must be positive", horizon)
	}
	pts := make([]Point, 0, len(history))
	for _, p := range history {
		if !math.IsNaN(p.V) && !math.IsInf(p.V, 0) {
			pts = append(pts, p)
		}
	}
	r := Result{Points: len(pts), Dropped: len(history) - len(pts)}
	if len(pts) == 0 {
		return r, ErrNoHistory
	}
	last := pts[len(pts)-1]
	r.Current, r.At = last.V, last.T.Add(horizon)
	r.Value, r.Raw = r.Current, r.Current
	span := last.T.Sub(pts[0].T)
	if horizon > span {
		return r, fmt.Errorf("%w: horizon %s, history %s", ErrShortHistory, horizon, span.Round(time.Second))
	}
	var seasons []time.Duration
	var harmonics []int
	for i, s := range m.Seasons {
		if s <= 0 || float64(span) < m.MinCycles*float64(s) {
			continue
		}
		seasons = append(seasons, s)
		harmonics = append(harmonics, m.harmonics(i))
	}
	cols := 1
	for _, k := range harmonics {
		cols += 2 * k
	}
	// Too little history for a season, or too few points for the columns.
	if len(seasons) == 0 || len(pts) < 3*cols {
		return r, nil
	}
	// Times relative to the last point keep the phases exact in float64.
	origin := last.T
	row := func(t time.Time, dst []float64) {
		dst[0] = 1
		c := 1
		for i, s := range seasons {
			phase := 2 * math.Pi * math.Mod(float64(t.Sub(origin)), float64(s)) / float64(s)
			s1, c1 := math.Sincos(phase)
			// Higher harmonics by the angle-addition formulas: two
			// trigonometric calls a season, not two a harmonic.
			sk, ck := s1, c1
			for range harmonics[i] {
				dst[c], dst[c+1] = sk, ck
				sk, ck = sk*c1+ck*s1, ck*c1-sk*s1
				c += 2
			}
		}
	}
	// Refit's own least squares (internal/linreg, as training uses): one
	// pass folding each row into the normal equations, no n×cols matrix.
	// A singular design (e.g. every point at one phase) gets the
	// minimum-norm solution, and the level term below still sets the value.
	// Solve fails only on overflow (values near MaxFloat64): then the
	// current value stands, as with too little history.
	p := cols - 1
	acc := linreg.NewAccumulator(p)
	idx := make([]int, p)
	for j := range idx {
		idx[j] = j
	}
	buf := make([]float64, cols)
	for _, pt := range pts {
		row(pt.T, buf)
		acc.Add(idx, buf[1:], pt.V)
	}
	sol, err := acc.Solve(0)
	if err != nil {
		return r, nil
	}
	fit := func(t time.Time) float64 {
		row(t, buf)
		return sol.Intercept + dot(buf[1:], sol.Coef)
	}
	// Level: the mean residual over the recent window.
	win := m.LevelWindow
	if win <= 0 {
		win = horizon
		if len(pts) > 1 {
			if ten := 10 * span / time.Duration(len(pts)-1); ten > win {
				win = ten
			}
		}
	}
	var sum float64
	var n int
	for i := len(pts) - 1; i >= 0 && last.T.Sub(pts[i].T) <= win; i-- {
		sum += pts[i].V - fit(pts[i].T)
		n++
	}
	r.Raw = fit(r.At) + sum/float64(n)
	r.Value = math.Max(r.Raw, r.Current)
	r.Seasons = len(seasons)
	return r, nil
}

func (m *Model) harmonics(i int) int {
	switch {
	case len(m.Harmonics) == 0:
		return 3
	case i < len(m.Harmonics):
		return max(1, m.Harmonics[i])
	default:
		return max(1, m.Harmonics[len(m.Harmonics)-1])
	}
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
