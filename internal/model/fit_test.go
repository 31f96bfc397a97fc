package model

import (
	"context"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"testing"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/sajari/regression"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// identifiable is a spec without collinear features (sqft_above +
// sqft_basement = sqft_living, and zip codes nest in cities).
func identifiable() dataset.ModelSpec {
	return dataset.ModelSpec{Name: "truth", Kind: "linear", Features: []dataset.Feature{
		{Column: "sqft_living", Transform: dataset.TransformNumeric},
		{Column: "bathrooms", Transform: dataset.TransformNumeric},
		{Column: "bedrooms", Transform: dataset.TransformNumeric},
		{Column: "waterfront", Transform: dataset.TransformNumeric},
		{Column: "view", Transform: dataset.TransformNumeric},
		{Column: "yr_built", Transform: dataset.TransformNumeric},
		{Column: "city", Transform: dataset.TransformOneHot},
	}}
}

func mustFit(t testing.TB, def *dataset.Definition, spec dataset.ModelSpec, rows []dataset.StagedRow) *Artifact {
	t.Helper()
	a, err := Fit(context.Background(), def, spec, scanOf(rows))
	require.NoError(t, err)
	return a
}

func mustSpec(t testing.TB, def *dataset.Definition, name string) dataset.ModelSpec {
	t.Helper()
	s, ok := def.Spec(name)
	require.True(t, ok)
	return s
}

func TestFitRecoversTruth(t *testing.T) {
	def := housingDef(t)
	rows := housingRows(t, def, 10_000, 2)
	a := mustFit(t, def, identifiable(), rows)
	require.Equal(t, len(rows), a.TrainRows)

	off := 0
	for _, tr := range a.Transforms {
		switch {
		case tr.Numeric != nil:
			raw := a.Coef[off] / tr.Numeric.Std
			require.InEpsilonf(t, truth()[tr.Column], raw, 0.02, "%s", tr.Column)
		case tr.OneHot != nil:
			effect := map[string]float64{}
			for _, c := range testCities() {
				effect[c.name] = c.effect
			}
			require.Equal(t, "Seattle", tr.OneHot.Reference, "the most frequent city")
			require.Len(t, tr.OneHot.Levels, len(testCities())-1)
			for j, lv := range tr.OneHot.Levels {
				require.InDeltaf(t, effect[lv]-effect["Seattle"], a.Coef[off+j], 2000, "city %s", lv)
			}
			require.Zero(t, a.Coef[off+len(tr.OneHot.Levels)], "other: never seen in training")
		}
		off += tr.Width()
	}

	p, err := a.Predictor(def)
	require.NoError(t, err)
	m, err := Evaluate(context.Background(), p, scanOf(housingRows(t, def, 5000, 3)))
	require.NoError(t, err)
	require.InEpsilon(t, truthNoise, m.RMSE, 0.05)
	require.Greater(t, m.R2, 0.99)
}

// design builds the dense design matrix from Artifact.Features, with a ones
// column first, leaving out the columns that do not vary.
func design(def *dataset.Definition, a *Artifact, rows []dataset.StagedRow) (x *mat.Dense, y *mat.VecDense, kept []int) {
	dense := make([][]float64, len(rows))
	for i, r := range rows {
		dense[i] = a.Features(def, r.Row, nil)
	}
	for j := range a.Coef {
		if slices.ContainsFunc(dense, func(row []float64) bool { return row[j] != dense[0][j] }) {
			kept = append(kept, j)
		}
	}
	x = mat.NewDense(len(rows), len(kept)+1, nil)
	y = mat.NewVecDense(len(rows), nil)
	for i, row := range dense {
		x.Set(i, 0, 1)
		for k, j := range kept {
			x.Set(i, k+1, row[j])
		}
		y.SetVec(i, rows[i].Target.Num)
	}
	return x, y, kept
}

func TestFitMatchesOracles(t *testing.T) {
	def := housingDef(t)
	tests := []struct {
		name string
		rows int
	}{
		{"800 rows, sajari and QR", 800},
		{"20k rows, QR", 20_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := housingRows(t, def, tt.rows, 4)
			a := mustFit(t, def, identifiable(), rows)
			x, y, kept := design(def, a, rows)
			for j := range a.Coef {
				if !slices.Contains(kept, j) {
					require.Zerof(t, a.Coef[j], "coef %d of a constant feature", j)
				}
			}

			var qr mat.QR
			qr.Factorize(x)
			var b mat.VecDense
			require.NoError(t, qr.SolveVecTo(&b, false, y))
			oracles := [][]float64{b.RawVector().Data}

			if tt.rows <= 2000 {
				var reg regression.Regression
				n, p := x.Dims()
				for i := range n {
					reg.Train(regression.DataPoint(y.AtVec(i), mat.Row(nil, i, x)[1:p]))
				}
				require.NoError(t, reg.Run())
				oracles = append(oracles, reg.GetCoeffs())
			}
			for _, want := range oracles {
				require.InDelta(t, want[0], a.Intercept, 1e-6*math.Abs(want[0]))
				for k, j := range kept {
					require.InDeltaf(t, want[k+1], a.Coef[j], 1e-6*math.Abs(want[k+1]), "coef %d", j)
				}
			}
		})
	}
}

// The housing specs are collinear; their fits must still predict well and
// agree with Features · Coef exactly.
func TestFitHousingSpecs(t *testing.T) {
	def := housingDef(t)
	train := housingRows(t, def, 20_000, 5)
	test := housingRows(t, def, 3000, 6)
	test[0].Fields[mustIndex(t, def, "city")].Str = "Atlantis"
	test[1].Fields[mustIndex(t, def, "statezip")].Str = "WA 99999"
	tests := []struct {
		spec    string
		maxRMSE float64
	}{
		{"linear-onehot", 1.1 * truthNoise},
		// city and zip reach the hashed model only through buckets that
		// collide, so it cannot be as good.
		{"linear-hashed", 80_000},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			a := mustFit(t, def, mustSpec(t, def, tt.spec), train)
			p, err := a.Predictor(def)
			require.NoError(t, err)
			var x []float64
			for _, r := range test {
				x = a.Features(def, r.Row, x)
				dot := a.Intercept
				for j, c := range a.Coef {
					dot += c * x[j]
				}
				require.Equal(t, dot, p.Predict(r.Row))
			}
			m, err := Evaluate(context.Background(), p, scanOf(test))
			require.NoError(t, err)
			require.Less(t, m.RMSE, tt.maxRMSE)
		})
	}
}

func mustIndex(t testing.TB, def *dataset.Definition, name string) int {
	t.Helper()
	i, ok := def.Index(name)
	require.True(t, ok)
	return i
}

func TestRefitIsIdentical(t *testing.T) {
	def := housingDef(t)
	rows := housingRows(t, def, 5000, 7)
	for _, name := range []string{"linear-onehot", "linear-hashed"} {
		t.Run(name, func(t *testing.T) {
			spec := mustSpec(t, def, name)
			b1, err := mustFit(t, def, spec, rows).Marshal()
			require.NoError(t, err)
			b2, err := mustFit(t, def, spec, rows).Marshal()
			require.NoError(t, err)
			require.Equal(t, Checksum(b1), Checksum(b2))
			require.Equal(t, string(b1), string(b2))
		})
	}
}

func TestVocabulary(t *testing.T) {
	tests := []struct {
		name   string
		counts map[string]int
		limit  int
		want   OneHot
	}{
		{"ties broken by value", map[string]int{"d": 3, "b": 5, "e": 1, "a": 5, "c": 3}, 3, OneHot{Reference: "a", Levels: []string{"b", "c"}}},
		{"fewer values than the limit", map[string]int{"x": 1, "y": 2}, 50, OneHot{Reference: "y", Levels: []string{"x"}}},
		{"one value", map[string]int{"x": 4}, 50, OneHot{Reference: "x", Levels: []string{}}},
		{"limit one", map[string]int{"x": 4, "y": 9}, 1, OneHot{Reference: "y", Levels: []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, &tt.want, vocabulary(tt.counts, tt.limit))
		})
	}
}

func TestOneHot(t *testing.T) {
	def := housingDef(t)
	rows := housingRows(t, def, 3000, 8)
	spec := dataset.ModelSpec{Name: "city", Kind: "linear", Features: []dataset.Feature{
		{Column: "city", Transform: dataset.TransformOneHot, MaxCategories: 4},
		{Column: "view", Transform: dataset.TransformOneHot}, // a numeric column
	}}
	a := mustFit(t, def, spec, rows)
	city, view := a.Transforms[0].OneHot, a.Transforms[1].OneHot
	require.Equal(t, "Seattle", city.Reference)
	require.ElementsMatch(t, []string{"Renton", "Bellevue", "Kent"}, city.Levels)
	kent := slices.Index(city.Levels, "Kent")
	require.Len(t, view.Levels, 4)
	p, err := a.Predictor(def)
	require.NoError(t, err)

	ci, vi := mustIndex(t, def, "city"), mustIndex(t, def, "view")
	refView := mustParse(t, view.Reference)
	viewOff := len(city.Levels) + 1
	tests := []struct {
		name string
		city string
		view float64
		hot  []int // features set to 1
	}{
		{"reference levels", "Seattle", refView, nil},
		{"a level", "Kent", refView, []int{kent}},
		{"trained other", "Redmond", refView, []int{3}},
		{"unseen city is other", "Atlantis", refView, []int{3}},
		{"numeric level", "Seattle", mustParse(t, view.Levels[1]), []int{viewOff + 1}},
		{"unseen number is other", "Seattle", 17, []int{viewOff + len(view.Levels)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := dataset.Row{Fields: slices.Clone(rows[0].Fields)}
			r.Fields[ci] = dataset.Field{Str: tt.city}
			r.Fields[vi] = dataset.Field{Num: tt.view}
			x := a.Features(def, r, nil)
			want := make([]float64, len(a.Coef))
			pred := a.Intercept
			for _, j := range tt.hot {
				want[j] = 1
				pred += a.Coef[j]
			}
			require.Equal(t, want, x)
			require.InDelta(t, pred, p.Predict(r), 1e-9*math.Abs(pred))
		})
	}
	require.NotZero(t, a.Coef[3], "other was trained on the cities past max_categories")
}

func mustParse(t testing.TB, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return v
}

func TestNumericImputesMissing(t *testing.T) {
	def := housingDef(t)
	rows := housingRows(t, def, 400, 9)
	bi := mustIndex(t, def, "bedrooms")
	sum, present := 0.0, 0
	for i := range rows {
		if i%4 == 0 {
			rows[i].Fields[bi].Num = math.NaN()
			continue
		}
		sum += rows[i].Fields[bi].Num
		present++
	}
	spec := dataset.ModelSpec{Name: "beds", Kind: "linear", Features: []dataset.Feature{
		{Column: "bedrooms", Transform: dataset.TransformNumeric},
	}}
	a := mustFit(t, def, spec, rows)
	n := a.Transforms[0].Numeric
	require.Equal(t, 100, n.Missing)
	require.InDelta(t, sum/float64(present), n.Impute, 1e-12)
	require.Equal(t, n.Mean, n.Impute)
	require.Equal(t, []float64{0}, a.Features(def, rows[0].Row, nil))
	p, err := a.Predictor(def)
	require.NoError(t, err)
	require.Equal(t, a.Intercept, p.Predict(rows[0].Row))
}

func TestHashed(t *testing.T) {
	// FNV-1a 64 of the canonical text, bucket from bits 1..63, sign from
	// bit 0: part of the artifact format, so these must never change.
	tests := []struct {
		value   string
		buckets int
		hash    uint64
		bucket  int
		sign    float64
	}{
		{"Seattle", 10, 0xbb750bf875dd30f7, 5, -1},
		{"", 10, 0xcbf29ce484222325, 8, -1},
		{"WA 98103", 1 << 16, 0xc24cb642426e2ddc, 5870, 1},
		{"3", 10, 0xaf63ae4c86019e62, 5, 1},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			h := fnv.New64a()
			h.Write([]byte(tt.value))
			require.Equal(t, h.Sum64(), fnv1a(tt.value))
			require.Equal(t, tt.hash, fnv1a(tt.value))
			b, s := hashBucket(fnv1a(tt.value), tt.buckets)
			require.Equal(t, tt.bucket, b)
			require.Equal(t, tt.sign, s)
		})
	}
}

// A hashed numeric column hashes the canonical text; the predictor does it
// without allocating.
func TestHashedNumericColumn(t *testing.T) {
	def := housingDef(t)
	rows := housingRows(t, def, 500, 10)
	spec := dataset.ModelSpec{Name: "hashed-numbers", Kind: "linear", Features: []dataset.Feature{
		{Column: "bathrooms", Transform: dataset.TransformHashed, Buckets: 7},
		{Column: "city", Transform: dataset.TransformHashed, Buckets: 5},
	}}
	a := mustFit(t, def, spec, rows)
	p, err := a.Predictor(def)
	require.NoError(t, err)
	bi := mustIndex(t, def, "bathrooms")
	r := dataset.Row{Fields: slices.Clone(rows[0].Fields)}
	for _, v := range []float64{3, 0.1, 2.25, 1e21, math.Copysign(0, -1), math.NaN(), 123456789.125} {
		r.Fields[bi].Num = v
		x := a.Features(def, r, nil)
		b, sign := hashBucket(fnv1a(dataset.Format(dataset.Column{Type: dataset.TypeFloat}, dataset.Field{Num: v})), 7)
		require.Equal(t, sign, x[b])
		dot := a.Intercept
		for j, c := range a.Coef {
			dot += c * x[j]
		}
		require.Equal(t, dot, p.Predict(r))
	}
	r.Fields[bi].Num = 2.25
	require.Zero(t, testing.AllocsPerRun(100, func() { p.Predict(r) }))
}
