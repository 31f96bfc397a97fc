package linreg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sajari/regression"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

const relTol = 1e-6

// sajari/regression builds an n×n matrix: keep it to small data.
const maxSajariRows = 2000

type data struct {
	x [][]float64
	y []float64
}

// gen makes n rows of p columns from col (column j of one row) and
// y = intercept + Σ beta[j] x[j] + noise.
func gen(seed uint64, n, p int, intercept float64, beta []float64, noise float64, col func(r *rand.Rand, j int, row []float64) float64) data {
	r := rand.New(rand.NewPCG(seed, 42))
	d := data{x: make([][]float64, n), y: make([]float64, n)}
	for i := range n {
		row := make([]float64, p)
		for j := range p {
			row[j] = col(r, j, row)
		}
		y := intercept + noise*r.NormFloat64()
		for j, b := range beta {
			y += b * row[j]
		}
		d.x[i], d.y[i] = row, y
	}
	return d
}

// fit runs the accumulator over d, passing only the nonzeros of each row.
func fit(t testing.TB, d data, l2 float64) Solution {
	a := accumulate(d, 0, len(d.x))
	s, err := a.Solve(l2)
	require.NoError(t, err)
	return s
}

func accumulate(d data, from, to int) *Accumulator {
	a := NewAccumulator(len(d.x[0]))
	var idx []int
	var val []float64
	for i := from; i < to; i++ {
		idx, val = idx[:0], val[:0]
		for j, v := range d.x[i] {
			if v != 0 {
				idx = append(idx, j)
				val = append(val, v)
			}
		}
		a.Add(idx, val, d.y[i])
	}
	return a
}

// keep returns d restricted to the columns not in drop.
func keep(d data, drop []int) data {
	out := data{x: make([][]float64, len(d.x)), y: d.y}
	for i, row := range d.x {
		for j, v := range row {
			if !slices.Contains(drop, j) {
				out.x[i] = append(out.x[i], v)
			}
		}
	}
	return out
}

// qrOLS is an independent dense least squares with an explicit ones column.
func qrOLS(t testing.TB, d data) Solution {
	n, p := len(d.x), len(d.x[0])
	x := mat.NewDense(n, p+1, nil)
	for i, row := range d.x {
		x.Set(i, 0, 1)
		for j, v := range row {
			x.Set(i, j+1, v)
		}
	}
	return qrSolve(t, x, mat.NewVecDense(n, slices.Clone(d.y)))
}

func qrSolve(t testing.TB, x *mat.Dense, y *mat.VecDense) Solution {
	var qr mat.QR
	qr.Factorize(x)
	var b mat.VecDense
	require.NoError(t, qr.SolveVecTo(&b, false, y))
	coef := make([]float64, b.Len()-1)
	for j := range coef {
		coef[j] = b.AtVec(j + 1)
	}
	return Solution{Intercept: b.AtVec(0), Coef: coef}
}

func sajariOLS(t testing.TB, d data) Solution {
	require.LessOrEqual(t, len(d.x), maxSajariRows)
	var r regression.Regression
	for i, row := range d.x {
		r.Train(regression.DataPoint(d.y[i], row))
	}
	require.NoError(t, r.Run())
	c := r.GetCoeffs()
	return Solution{Intercept: c[0], Coef: c[1:]}
}

// ridge is the closed-form ridge on centred data, solved as least squares
// on the data augmented with √(n·l2)·I (so the penalty matches Solve's).
func ridge(t testing.TB, d data, l2 float64) Solution {
	n, p := len(d.x), len(d.x[0])
	mx := make([]float64, p)
	my := 0.0
	for i, row := range d.x {
		for j, v := range row {
			mx[j] += v
		}
		my += d.y[i]
	}
	for j := range mx {
		mx[j] /= float64(n)
	}
	my /= float64(n)
	x := mat.NewDense(n+p, p, nil)
	y := mat.NewVecDense(n+p, nil)
	for i, row := range d.x {
		for j, v := range row {
			x.Set(i, j, v-mx[j])
		}
		y.SetVec(i, d.y[i]-my)
	}
	for j := range p {
		x.Set(n+j, j, math.Sqrt(float64(n)*l2))
	}
	var qr mat.QR
	qr.Factorize(x)
	var b mat.VecDense
	require.NoError(t, qr.SolveVecTo(&b, false, y))
	s := Solution{Intercept: my, Coef: make([]float64, p)}
	for j := range p {
		s.Coef[j] = b.AtVec(j)
		s.Intercept -= mx[j] * s.Coef[j]
	}
	return s
}

func requireClose(t testing.TB, want, got, scale float64, what string) {
	t.Helper()
	require.LessOrEqualf(t, math.Abs(got-want), relTol*max(math.Abs(want), scale),
		"%s: got %.12g, want %.12g", what, got, want)
}

// requireSame compares coefficients relatively and the intercept relative
// to the spread of y (it can be near 0 when y is large).
func requireSame(t testing.TB, want, got Solution, d data) {
	t.Helper()
	require.Len(t, got.Coef, len(want.Coef))
	for j := range want.Coef {
		requireClose(t, want.Coef[j], got.Coef[j], 0, fmt.Sprintf("coef %d", j))
	}
	requireClose(t, want.Intercept, got.Intercept, spread(d.y), "intercept")
}

func spread(y []float64) float64 {
	lo, hi := slices.Min(y), slices.Max(y)
	return hi - lo
}

func predict(s Solution, row []float64) float64 {
	p := s.Intercept
	for j, c := range s.Coef {
		p += c * row[j]
	}
	return p
}

// insert puts a 0 coefficient at each dropped position (ascending).
func insert(s Solution, drop []int) Solution {
	out := Solution{Intercept: s.Intercept, Coef: slices.Clone(s.Coef)}
	for _, j := range drop {
		out.Coef = slices.Insert(out.Coef, j, 0)
	}
	return out
}

func normal(r *rand.Rand, _ int, _ []float64) float64 { return r.NormFloat64() + 0.3 }

func TestSolveMatchesOracles(t *testing.T) {
	scales := []float64{1e-3, 1, 50, 1e4, 0.1, 3e2}
	tests := []struct {
		name    string
		d       data
		l2      float64
		drop    []int // zero-variance or collinear columns left out of the oracle
		collide bool  // collinear: compare predictions, not coefficients
	}{
		{
			name: "well conditioned",
			d:    gen(1, 600, 8, 3.5, []float64{1, -2, 0.5, 4, -1.5, 2.5, 0.75, -3}, 0.5, normal),
		},
		{
			name: "very different scales",
			d: gen(2, 600, 6, -20, []float64{2e3, -1.5, 0.04, 3e-4, 12, -0.01}, 1,
				func(r *rand.Rand, j int, _ []float64) float64 { return scales[j] * (r.NormFloat64() + 0.5) }),
		},
		{
			name: "constant column",
			d: gen(3, 500, 5, 1, []float64{1, 2, 3, 4, 5}, 0.3,
				func(r *rand.Rand, j int, _ []float64) float64 {
					if j == 2 {
						return 7.5
					}
					return r.NormFloat64()
				}),
			drop: []int{2},
		},
		{
			name: "collinear columns",
			d: gen(4, 500, 5, 2, []float64{1, -1, 2, 0.5, 0}, 0.2,
				func(r *rand.Rand, j int, row []float64) float64 {
					if j == 4 {
						return 2*row[1] - row[3]
					}
					return r.NormFloat64()
				}),
			drop:    []int{4},
			collide: true,
		},
		{
			name: "sparse indicators",
			// columns 0-2 dense; 3-13 indicators of a 12-level category
			// (level 0 is the reference); 14 is never set.
			d: gen(5, 800, 15, 10, []float64{1, 2, -1, 0.5, -0.5, 1, 1.5, -2, 2, 3, -3, 0.25, -0.25, 4, 0}, 0.4,
				func(r *rand.Rand, j int, row []float64) float64 {
					switch {
					case j < 3:
						return r.NormFloat64()
					case j == 3:
						level := r.IntN(12)
						if level > 0 {
							row[2+level] = 1 // fills columns 3..13 ahead of time
						}
						return row[3]
					case j < 14:
						return row[j]
					default:
						return 0
					}
				}),
			drop: []int{14},
		},
		{
			name: "ridge",
			d:    gen(6, 600, 6, 1, []float64{1, -2, 0.5, 4, -1.5, 2.5}, 0.5, normal),
			l2:   0.5,
		},
		{
			name: "large, against dense QR",
			d:    gen(7, 50_000, 12, -4, []float64{1, -2, 0.5, 4, -1.5, 2.5, 0.75, -3, 0.1, 9, -7, 0.2}, 2, normal),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fit(t, tt.d, tt.l2)
			for _, j := range tt.drop {
				if !tt.collide {
					require.Zerof(t, got.Coef[j], "coef %d of a zero-variance column", j)
				}
			}
			kept := keep(tt.d, tt.drop)
			var oracles []Solution
			if tt.l2 > 0 {
				oracles = append(oracles, insert(ridge(t, kept, tt.l2), tt.drop))
			} else {
				oracles = append(oracles, insert(qrOLS(t, kept), tt.drop))
				if len(kept.x) <= maxSajariRows {
					oracles = append(oracles, insert(sajariOLS(t, kept), tt.drop))
				}
			}
			for _, want := range oracles {
				if tt.collide {
					for _, row := range tt.d.x {
						requireClose(t, predict(want, row), predict(got, row), spread(tt.d.y), "prediction")
					}
					continue
				}
				requireSame(t, want, got, tt.d)
			}
		})
	}
}

func TestCollinearIsMinimumNorm(t *testing.T) {
	// x1 duplicates x0 exactly: the standardised minimum-norm solution
	// splits the effect equally.
	d := gen(8, 500, 2, 1, []float64{3, 0}, 0.1, func(r *rand.Rand, j int, row []float64) float64 {
		if j == 1 {
			return row[0]
		}
		return r.NormFloat64()
	})
	got := fit(t, d, 0)
	require.InDelta(t, got.Coef[0], got.Coef[1], 1e-9)
	require.InDelta(t, 3, got.Coef[0]+got.Coef[1], 0.05)
}

func TestDeterministic(t *testing.T) {
	d := gen(9, 3000, 10, 1, []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 1, normal)
	require.Equal(t, fit(t, d, 0), fit(t, d, 0))
	require.Equal(t, fit(t, d, 0.1), fit(t, d, 0.1))
}

func TestMerge(t *testing.T) {
	d := gen(10, 4000, 6, 1e5, []float64{1, -2, 0.5, 4, -1.5, 2.5}, 1, normal)
	want := fit(t, d, 0)
	tests := []struct {
		name string
		cut  int
	}{
		{"halves", 2000},
		{"empty first", 0},
		{"empty second", 4000},
		{"uneven", 17},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := accumulate(d, 0, tt.cut)
			a.Merge(accumulate(d, tt.cut, len(d.x)))
			require.Equal(t, len(d.x), a.N())
			got, err := a.Solve(0)
			require.NoError(t, err)
			for j := range want.Coef {
				require.InEpsilon(t, want.Coef[j], got.Coef[j], 1e-9)
			}
			require.InEpsilon(t, want.Intercept, got.Intercept, 1e-9)
		})
	}
}

func TestAddIndexOrder(t *testing.T) {
	tests := []struct {
		name string
		idx  []int
		val  []float64
	}{
		{"sorted", []int{0, 1, 2}, []float64{1, 2, 3}},
		{"reversed", []int{2, 1, 0}, []float64{3, 2, 1}},
		{"repeated index is summed", []int{0, 1, 2, 0}, []float64{0.25, 2, 3, 0.75}},
	}
	ref := NewAccumulator(3)
	ref.Add([]int{0, 1, 2}, []float64{1, 2, 3}, 5)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAccumulator(3)
			a.Add(tt.idx, tt.val, 5)
			require.Equal(t, ref, a)
		})
	}
}

func TestSolveErrors(t *testing.T) {
	_, err := NewAccumulator(3).Solve(0)
	require.ErrorIs(t, err, ErrNoRows)

	a := NewAccumulator(1)
	a.Add([]int{0}, []float64{1}, 1)
	_, err = a.Solve(-1)
	require.Error(t, err)

	a.Add([]int{0}, []float64{math.Inf(1)}, 1)
	_, err = a.Solve(0)
	require.Error(t, err)
}

func TestInterceptOnly(t *testing.T) {
	a := NewAccumulator(2)
	for _, y := range []float64{1, 2, 3, 6} {
		a.Add(nil, nil, y)
	}
	s, err := a.Solve(0)
	require.NoError(t, err)
	require.Equal(t, Solution{Intercept: 3, Coef: []float64{0, 0}}, s)
}

// N is the number of rows added.
func (a *Accumulator) N() int { return a.n }
