package forecast

import (
	"math"
	"time"
)

// PredictLinear is PromQL's predict_linear: a least-squares line through the
// points of the last window, extrapolated horizon past the last point. It is
// the baseline the seasonal model is measured against.
func PredictLinear(history []Point, window, horizon time.Duration) float64 {
	if len(history) == 0 {
		return math.NaN()
	}
	last := history[len(history)-1].T
	var n, sx, sy, sxx, sxy float64
	for i := len(history) - 1; i >= 0 && last.Sub(history[i].T) <= window; i-- {
		p := history[i]
		if math.IsNaN(p.V) || math.IsInf(p.V, 0) {
			continue
		}
		x := p.T.Sub(last).Seconds()
		n++
		sx += x
		sy += p.V
		sxx += x * x
		sxy += x * p.V
	}
	if n == 0 {
		return math.NaN()
	}
	d := n*sxx - sx*sx
	if n < 2 || d == 0 {
		return sy / n
	}
	slope := (n*sxy - sx*sy) / d
	icept := (sy - slope*sx) / n
	return icept + slope*horizon.Seconds()
}
