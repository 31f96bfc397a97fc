package linreg

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Moments describe rows by their count, means and centred covariances
// (sums of centred products divided by N): what a fit needs, and what
// statistics merged from many blobs give without the rows.
type Moments struct {
	N     int
	MeanX []float64
	MeanY float64
	Cov   []float64 // p×p row-major, symmetric: Σ (x-μ)(x-μ)ᵀ / N
	CovY  []float64 // Σ (x-μ)(y-μy) / N
	VarY  float64   // Σ (y-μy)² / N
}

func (m Moments) check() error {
	if m.N <= 0 {
		return ErrNoRows
	}
	p := len(m.MeanX)
	if len(m.Cov) != p*p || len(m.CovY) != p {
		return fmt.Errorf("linreg: moments of %d features with %d covariances and %d target covariances", p, len(m.Cov), len(m.CovY))
	}
	return nil
}

func (m Moments) system() system {
	p := len(m.MeanX)
	return system{
		p: p, mx: m.MeanX, my: m.MeanY,
		meanSq: func(i int) float64 { return m.Cov[i*p+i] + m.MeanX[i]*m.MeanX[i] },
		cov:    func(i, j int) float64 { return m.Cov[i*p+j] },
		covY:   func(i int) float64 { return m.CovY[i] },
	}
}

// Solve is Accumulator.Solve from moments: the same objective, the same
// treatment of constant and collinear columns.
func (m Moments) Solve(l2 float64) (Solution, error) {
	if err := m.check(); err != nil {
		return Solution{}, err
	}
	if l2 < 0 || math.IsNaN(l2) || math.IsInf(l2, 0) {
		return Solution{}, fmt.Errorf("linreg: l2 must be finite and non-negative, got %g", l2)
	}
	return m.system().solve(l2)
}

// GCVGrid is the ridge penalties SolveGCV chooses from: 0 and 10^-6 .. 10
// in half decades. The penalty is on the model's own features (the
// objective of Solve), which for Refit are standardised numbers and 0/1
// indicators, so one absolute grid serves every spec.
func GCVGrid() []float64 {
	g := []float64{0}
	for e := -12; e <= 2; e++ {
		g = append(g, math.Pow(10, float64(e)/2))
	}
	return g
}

// SolveGCV picks the penalty of grid that minimises generalised
// cross-validation, GCV(λ) = (SSE/n) / (1 - df/n)², with
// df = 1 + Σ eᵢ/(eᵢ+λ) over the eigenvalues eᵢ of the centred covariance
// (the trace of the hat matrix, the intercept counted once), and returns
// Solve(λ) with that λ. Everything comes from the moments: one
// eigendecomposition, then O(p) per candidate. The first minimum in grid
// order wins.
func (m Moments) SolveGCV(grid []float64) (Solution, float64, error) {
	if err := m.check(); err != nil {
		return Solution{}, 0, err
	}
	if len(grid) == 0 {
		return Solution{}, 0, errors.New("linreg: empty penalty grid")
	}
	p := len(m.MeanX)
	var active []int
	for i := range p {
		v := m.Cov[i*p+i]
		if v > constantTol*(v+m.MeanX[i]*m.MeanX[i]) {
			active = append(active, i)
		}
	}
	k := len(active)
	e, z := []float64(nil), []float64(nil)
	if k > 0 {
		c := mat.NewSymDense(k, nil)
		cy := mat.NewVecDense(k, nil)
		for r, i := range active {
			for s := r; s < k; s++ {
				c.SetSym(r, s, m.Cov[i*p+active[s]])
			}
			cy.SetVec(r, m.CovY[i])
		}
		var eig mat.EigenSym
		if !eig.Factorize(c, true) {
			return Solution{}, 0, errors.New("linreg: eigendecomposition failed (non-finite input?)")
		}
		e = eig.Values(nil)
		var vecs mat.Dense
		eig.VectorsTo(&vecs)
		top := 0.0
		for _, v := range e {
			top = max(top, math.Abs(v))
		}
		for i := range e {
			if e[i] <= rcond*top {
				e[i] = 0 // the pseudo-inverse ignores this direction
			}
			z = append(z, mat.Dot(vecs.ColView(i), cy))
		}
	}
	n := float64(m.N)
	best, bestGCV := math.NaN(), math.Inf(1)
	for _, lambda := range grid {
		if lambda < 0 || math.IsNaN(lambda) || math.IsInf(lambda, 0) {
			return Solution{}, 0, fmt.Errorf("linreg: penalty %g in the grid: want finite and non-negative", lambda)
		}
		rss, df := m.VarY, 1.0
		for i, ei := range e {
			d := ei + lambda
			if d == 0 {
				continue
			}
			// ‖y - Xβ‖²/n = var y - 2βᵀc + βᵀCβ in the eigenbasis.
			rss -= z[i] * z[i] * (ei + 2*lambda) / (d * d)
			df += ei / d
		}
		rss = max(rss, 0)
		if df >= n {
			continue
		}
		g := rss / ((1 - df/n) * (1 - df/n))
		if g < bestGCV {
			best, bestGCV = lambda, g
		}
	}
	if math.IsNaN(best) {
		return Solution{}, 0, fmt.Errorf("linreg: %d rows are too few for generalised cross-validation of %d features", m.N, k)
	}
	sol, err := m.system().solve(best)
	return sol, best, err
}
