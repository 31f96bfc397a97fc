package synth_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/refit-ml/refit/internal/dataset"
)

func acceptedRows(t *testing.T, d *dataset.Definition, data []byte) []dataset.Row {
	t.Helper()
	ir, err := d.NewInputReader(bytes.NewReader(data), dataset.InputOptions{})
	require.NoError(t, err)
	var rows []dataset.Row
	for {
		r, rj, err := ir.Next()
		if errors.Is(err, io.EOF) {
			return rows
		}
		if err != nil || rj != nil {
			t.Fatal(err, rj)
		}
		rows = append(rows, r)
	}
}

// featurizer turns a row into model features.
type featurizer struct {
	width int
	fill  func(r dataset.Row, x []float64)
}

func oneHotFeatures(train []dataset.Row, numeric []int, cats ...int) featurizer {
	index := make([]map[string]int, len(cats))
	width := len(numeric)
	for k, c := range cats {
		index[k] = map[string]int{}
		for _, r := range train {
			if _, ok := index[k][r.Fields[c].Str]; !ok {
				index[k][r.Fields[c].Str] = width
				width++
			}
		}
	}
	return featurizer{width, func(r dataset.Row, x []float64) {
		fillNumeric(r, numeric, x)
		for k, c := range cats {
			if j, ok := index[k][r.Fields[c].Str]; ok {
				x[j] = 1
			}
		}
	}}
}

func hashedFeatures(numeric, strs []int, hash func(string) uint32) featurizer {
	const buckets = 10
	return featurizer{len(numeric) + buckets*len(strs), func(r dataset.Row, x []float64) {
		fillNumeric(r, numeric, x)
		for k, c := range strs {
			x[len(numeric)+k*buckets+int(hash(r.Fields[c].Str)%buckets)] = 1
		}
	}}
}

func fillNumeric(r dataset.Row, numeric []int, x []float64) {
	clear(x)
	for j, c := range numeric {
		x[j] = r.Fields[c].Num
	}
}

// fitRMSE fits a (barely) ridge regression on standardized features and
// returns its RMSE on valid. The ridge only settles collinear columns.
func fitRMSE(t *testing.T, train, valid []dataset.Row, f featurizer) float64 {
	t.Helper()
	n, p := len(train), f.width
	x := mat.NewDense(n, p, nil)
	y := mat.NewVecDense(n, nil)
	mean, sd := make([]float64, p), make([]float64, p)
	var ymean float64
	for i, r := range train {
		f.fill(r, x.RawRowView(i))
		ymean += r.Target.Num / float64(n)
	}
	for j := range p {
		for i := range n {
			mean[j] += x.At(i, j) / float64(n)
		}
		for i := range n {
			d := x.At(i, j) - mean[j]
			sd[j] += d * d / float64(n)
		}
		sd[j] = math.Sqrt(sd[j])
		if sd[j] == 0 {
			sd[j] = 1 // a constant column: centred to zero, no effect
		}
		for i := range n {
			x.Set(i, j, (x.At(i, j)-mean[j])/sd[j])
		}
	}
	for i, r := range train {
		y.SetVec(i, r.Target.Num-ymean)
	}
	var xtx mat.SymDense
	xtx.SymOuterK(1, x.T())
	for j := range p {
		xtx.SetSym(j, j, xtx.At(j, j)+1e-3)
	}
	var ch mat.Cholesky
	require.True(t, ch.Factorize(&xtx), "not positive definite")
	var xty, beta mat.VecDense
	xty.MulVec(x.T(), y)
	require.NoError(t, ch.SolveVecTo(&beta, &xty))

	row := make([]float64, p)
	var sum2 float64
	for _, r := range valid {
		f.fill(r, row)
		pred := ymean
		for j := range p {
			pred += beta.AtVec(j) * (row[j] - mean[j]) / sd[j]
		}
		d := r.Target.Num - pred
		sum2 += d * d
	}
	return math.Sqrt(sum2 / float64(len(valid)))
}
