package linreg

import (
	"math/rand/v2"
	"testing"
)

const benchRows = 1_000_000

// sparseRows is a pool of rows cycled through by the benchmarks (1M
// distinct rows would cost more memory than the accumulator itself).
type sparseRows struct {
	idx [][]int
	val [][]float64
	y   []float64
}

func makeRows(pool, dense int, levels []int) (sparseRows, int) {
	r := rand.New(rand.NewPCG(11, 12))
	p := dense
	for _, l := range levels {
		p += l
	}
	s := sparseRows{idx: make([][]int, pool), val: make([][]float64, pool), y: make([]float64, pool)}
	for i := range pool {
		var idx []int
		var val []float64
		for j := range dense {
			idx = append(idx, j)
			val = append(val, r.NormFloat64())
		}
		off := dense
		for _, l := range levels {
			idx = append(idx, off+r.IntN(l))
			val = append(val, 1)
			off += l
		}
		s.idx[i], s.val[i], s.y[i] = idx, val, r.NormFloat64()
	}
	return s, p
}

func benchAdd(b *testing.B, dense int, levels []int) {
	const pool = 1 << 14
	rows, p := makeRows(pool, dense, levels)
	b.ResetTimer()
	for b.Loop() {
		a := NewAccumulator(p)
		for i := range benchRows {
			k := i & (pool - 1)
			a.Add(rows.idx[k], rows.val[k], rows.y[k])
		}
		if _, err := a.Solve(0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchRows, "ns/row")
}

// 1M rows × 15 dense features, then Solve.
func BenchmarkAccumulate1MDense15(b *testing.B) { benchAdd(b, 15, nil) }

// 1M rows, 15 dense + 2 one-hot features (60 and 75 levels): 150 columns,
// 17 nonzeros a row.
func BenchmarkAccumulate1MOneHot150(b *testing.B) { benchAdd(b, 15, []int{60, 75}) }

func BenchmarkSolve150(b *testing.B) {
	rows, p := makeRows(1<<14, 15, []int{60, 75})
	a := NewAccumulator(p)
	for k := range rows.y {
		a.Add(rows.idx[k], rows.val[k], rows.y[k])
	}
	for b.Loop() {
		if _, err := a.Solve(0); err != nil {
			b.Fatal(err)
		}
	}
}
