// Package linreg fits linear least squares in one streaming pass: rows are
// folded into O(p²) sufficient statistics, which are solved at the end.
package linreg

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// ErrNoRows is returned by Solve when no row was added.
var ErrNoRows = errors.New("linreg: no rows")

const (
	// A column whose variance is below this fraction of its mean square is
	// constant up to rounding.
	constantTol = 1e-12
	// Above this condition number (of the standardised system) Cholesky is
	// not trusted and the minimum-norm solve takes over.
	maxCond = 1e10
	// Eigenvalues below this fraction of the largest are treated as zero in
	// the minimum-norm solve.
	rcond = 1e-10
)

// Accumulator holds the sufficient statistics of rows added so far. It is
// not safe for concurrent use: give each goroutine its own and Merge them.
type Accumulator struct {
	p   int
	n   int
	y0  float64   // shift: the first y; y sums are of y - y0, to limit cancellation
	sy  float64   // Σ (y - y0)
	syy float64   // Σ (y - y0)²
	sx  []float64 // Σ x
	sxy []float64 // Σ x (y - y0)
	sxx []float64 // Σ x xᵀ, p×p row-major, upper triangle only
}

// Solution is a fitted model: y ≈ Intercept + Σ Coef[j] x[j].
type Solution struct {
	Intercept float64
	Coef      []float64
}

// NewAccumulator is for rows of p features (the intercept is implicit).
func NewAccumulator(p int) *Accumulator {
	if p < 0 {
		panic(fmt.Sprintf("linreg: negative feature count %d", p))
	}
	return &Accumulator{
		p:   p,
		sx:  make([]float64, p),
		sxy: make([]float64, p),
		sxx: make([]float64, p*p),
	}
}

// Add folds in one sparse row: feature idx[k] has value val[k], every other
// feature is 0. Its cost is O(len(idx)²). A repeated index is summed.
func (a *Accumulator) Add(idx []int, val []float64, y float64) {
	if len(idx) != len(val) {
		panic(fmt.Sprintf("linreg: %d indices, %d values", len(idx), len(val)))
	}
	if a.n == 0 {
		a.y0 = y
	}
	y -= a.y0
	a.n++
	a.sy += y
	a.syy += y * y
	p, xx := a.p, a.sxx
	val = val[:len(idx)]
	for k, i := range idx {
		v := val[k]
		a.sx[i] += v
		a.sxy[i] += v * y
		row := xx[i*p : i*p+p]
		row[i] += v * v
		for m := k + 1; m < len(idx); m++ {
			j, w := idx[m], v*val[m]
			switch {
			case j > i:
				row[j] += w
			case j < i:
				xx[j*p+i] += w
			default: // (v+w)² has the cross term twice
				row[i] += 2 * w
			}
		}
	}
}

// Merge adds b's rows to a, as if they had been added after a's.
func (a *Accumulator) Merge(b *Accumulator) {
	if a.p != b.p {
		panic(fmt.Sprintf("linreg: merge of %d and %d features", a.p, b.p))
	}
	if b.n == 0 {
		return
	}
	if a.n == 0 {
		a.y0 = b.y0
	}
	// Re-express b's y sums against a's shift.
	d := b.y0 - a.y0
	a.n += b.n
	a.syy += b.syy + 2*d*b.sy + float64(b.n)*d*d
	a.sy += b.sy + float64(b.n)*d
	for i := range a.sx {
		a.sxy[i] += b.sxy[i] + d*b.sx[i]
		a.sx[i] += b.sx[i]
	}
	for i, v := range b.sxx {
		a.sxx[i] += v
	}
}

// Solve returns the least-squares fit minimising
//
//	(1/n) Σ (y - b - xβ)² + l2 ‖β‖²
//
// (the intercept b is not penalised). Columns with zero variance get
// coefficient 0. If the columns are collinear, it returns the solution of
// minimum norm in standardised coordinates. The same rows in the same
// order give bit-identical results.
func (a *Accumulator) Solve(l2 float64) (Solution, error) {
	if a.n == 0 {
		return Solution{}, ErrNoRows
	}
	if l2 < 0 || math.IsNaN(l2) || math.IsInf(l2, 0) {
		return Solution{}, fmt.Errorf("linreg: l2 must be finite and non-negative, got %g", l2)
	}
	p, n := a.p, float64(a.n)
	my := a.sy / n
	mx := make([]float64, p)
	for i := range mx {
		mx[i] = a.sx[i] / n
	}
	sys := system{
		p: p, mx: mx, my: my, y0: a.y0,
		meanSq: func(i int) float64 { return a.sxx[i*p+i] / n },
		cov:    func(i, j int) float64 { return a.sxx[i*p+j]/n - mx[i]*mx[j] },
		covY:   func(i int) float64 { return a.sxy[i]/n - mx[i]*my },
	}
	return sys.solve(l2)
}

// system is a least-squares problem given by its moments: means, and
// covariances (divided by n) as functions, so that the accumulator and
// Moments share one solve, bit for bit.
type system struct {
	p      int
	mx     []float64
	my, y0 float64             // y0 is added to the intercept (the accumulator's shift)
	meanSq func(i int) float64 // mean of x_i²
	cov    func(i, j int) float64
	covY   func(i int) float64
}

func (s system) solve(l2 float64) (Solution, error) {
	p, mx, my := s.p, s.mx, s.my
	// Active columns and their standard deviations.
	var active []int
	var sd []float64
	for i := range p {
		ms := s.meanSq(i)
		v := ms - mx[i]*mx[i]
		if v > constantTol*ms {
			active = append(active, i)
			sd = append(sd, math.Sqrt(v))
		}
	}
	sol := Solution{Coef: make([]float64, p)}
	k := len(active)

	// The centred system scaled to unit diagonal (a correlation matrix), so
	// that conditioning reflects collinearity rather than units.
	sys := mat.NewSymDense(max(k, 1), nil)
	rhs := mat.NewVecDense(max(k, 1), nil)
	for r, i := range active {
		for c := r; c < k; c++ {
			j := active[c]
			cov := s.cov(i, j)
			if c == r {
				cov += l2
			}
			sys.SetSym(r, c, cov/(sd[r]*sd[c]))
		}
		rhs.SetVec(r, s.covY(i)/sd[r])
	}
	if k > 0 {
		gamma, err := solveSym(sys, rhs)
		if err != nil {
			return Solution{}, err
		}
		for r, i := range active {
			sol.Coef[i] = gamma.AtVec(r) / sd[r]
		}
	}
	b := my
	for i, c := range sol.Coef {
		b -= mx[i] * c
	}
	sol.Intercept = s.y0 + b
	for _, c := range sol.Coef {
		if math.IsNaN(c) || math.IsInf(c, 0) {
			return Solution{}, errors.New("linreg: solution is not finite (non-finite input?)")
		}
	}
	if math.IsNaN(sol.Intercept) || math.IsInf(sol.Intercept, 0) {
		return Solution{}, errors.New("linreg: intercept is not finite (non-finite input?)")
	}
	return sol, nil
}

// Moments returns the accumulated rows' moments (for SolveGCV).
func (a *Accumulator) Moments() Moments {
	p, n := a.p, float64(a.n)
	m := Moments{N: a.n, MeanX: make([]float64, p), Cov: make([]float64, p*p), CovY: make([]float64, p)}
	if a.n == 0 {
		return m
	}
	my := a.sy / n
	for i := range p {
		m.MeanX[i] = a.sx[i] / n
	}
	for i := range p {
		for j := i; j < p; j++ {
			c := a.sxx[i*p+j]/n - m.MeanX[i]*m.MeanX[j]
			m.Cov[i*p+j], m.Cov[j*p+i] = c, c
		}
		m.CovY[i] = a.sxy[i]/n - m.MeanX[i]*my
	}
	m.MeanY = a.y0 + my
	m.VarY = max(a.syy/n-my*my, 0)
	return m
}

// solveSym solves s x = b by Cholesky, or, when s is singular or nearly so,
// by the pseudo-inverse from its eigendecomposition (minimum norm).
func solveSym(s *mat.SymDense, b *mat.VecDense) (*mat.VecDense, error) {
	var x mat.VecDense
	var ch mat.Cholesky
	if ch.Factorize(s) && ch.Cond() < maxCond {
		if err := ch.SolveVecTo(&x, b); err == nil {
			return &x, nil
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(s, true) {
		return nil, errors.New("linreg: eigendecomposition failed (non-finite input?)")
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	top := 0.0
	for _, v := range vals {
		top = max(top, math.Abs(v))
	}
	pinv := mat.NewVecDense(len(vals), nil)
	for e, lambda := range vals {
		if lambda <= rcond*top {
			continue
		}
		col := vecs.ColView(e)
		pinv.AddScaledVec(pinv, mat.Dot(col, b)/lambda, col)
	}
	return pinv, nil
}
