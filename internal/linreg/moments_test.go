package linreg

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

func TestMomentsSolveIsAccumulatorSolve(t *testing.T) {
	d := gen(20, 3000, 6, 1e4, []float64{1, -2, 0.5, 4, -1.5, 2.5}, 1, normal)
	a := accumulate(d, 0, len(d.x))
	for _, l2 := range []float64{0, 0.01, 1} {
		want, err := a.Solve(l2)
		require.NoError(t, err)
		got, err := a.Moments().Solve(l2)
		require.NoError(t, err)
		require.InEpsilon(t, want.Intercept, got.Intercept, 1e-10)
		for j := range want.Coef {
			require.InEpsilon(t, want.Coef[j], got.Coef[j], 1e-9)
		}
	}
	m := a.Moments()
	var vy float64
	for _, y := range d.y {
		vy += (y - m.MeanY) * (y - m.MeanY)
	}
	require.InEpsilon(t, vy/float64(len(d.y)), m.VarY, 1e-9)
}

// gcvByHand computes GCV(λ) from the rows: the ridge fit's residuals and
// the trace of the explicit hat matrix 11ᵀ/n + Xc (XcᵀXc + nλI)⁺ Xcᵀ.
func gcvByHand(t *testing.T, d data, lambda float64) float64 {
	n, p := len(d.x), len(d.x[0])
	mean := make([]float64, p)
	for _, row := range d.x {
		for j, v := range row {
			mean[j] += v / float64(n)
		}
	}
	xc := mat.NewDense(n, p, nil)
	for i, row := range d.x {
		for j, v := range row {
			xc.Set(i, j, v-mean[j])
		}
	}
	var g mat.Dense
	g.Mul(xc.T(), xc)
	for j := range p {
		g.Set(j, j, g.At(j, j)+float64(n)*lambda)
	}
	var inv mat.Dense
	require.NoError(t, inv.Inverse(&g))
	var h, tmp mat.Dense
	tmp.Mul(xc, &inv)
	h.Mul(&tmp, xc.T())
	df := 1 + mat.Trace(&h)
	s := fit(t, d, lambda)
	rss := 0.0
	for i, row := range d.x {
		e := d.y[i] - predict(s, row)
		rss += e * e
	}
	return rss / float64(n) / math.Pow(1-df/float64(n), 2)
}

func TestSolveGCVPicksTheMinimum(t *testing.T) {
	// Few rows, many noisy features: some shrinkage pays.
	d := gen(21, 40, 12, 3, []float64{2, -1, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0.3}, 2, normal)
	grid := GCVGrid()
	_, chosen, err := accumulate(d, 0, len(d.x)).Moments().SolveGCV(grid)
	require.NoError(t, err)
	best, bestGCV := -1.0, math.Inf(1)
	for _, l := range grid[1:] { // λ = 0: the explicit inverse is fine too, but keep it well posed
		if g := gcvByHand(t, d, l); g < bestGCV {
			best, bestGCV = l, g
		}
	}
	if g0 := gcvByHand(t, d, 0); g0 < bestGCV {
		best = 0
	}
	require.Equal(t, best, chosen)
	require.Positive(t, chosen, "40 rows of 12 mostly useless features: GCV should shrink")

	// Plenty of rows and signal: (almost) no penalty.
	d = gen(22, 5000, 4, 3, []float64{2, -1, 0.5, 3}, 0.1, normal)
	_, chosen, err = accumulate(d, 0, len(d.x)).Moments().SolveGCV(grid)
	require.NoError(t, err)
	require.LessOrEqual(t, chosen, 1e-3)
}

func TestSolveGCVErrors(t *testing.T) {
	_, _, err := NewAccumulator(2).Moments().SolveGCV(GCVGrid())
	require.ErrorIs(t, err, ErrNoRows)
	a := accumulate(gen(23, 10, 2, 1, []float64{1, 1}, 1, normal), 0, 10)
	_, _, err = a.Moments().SolveGCV(nil)
	require.Error(t, err)
	_, _, err = a.Moments().SolveGCV([]float64{-1})
	require.Error(t, err)
}
