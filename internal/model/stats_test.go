package model

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/sajari/regression"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

func mustStats(t testing.TB, def *dataset.Definition, rows []dataset.StagedRow) *Stats {
	t.Helper()
	st, err := ComputeStats(context.Background(), def, scanOf(rows))
	require.NoError(t, err)
	return st
}

// withSplit marks rows as the definition's split does.
func withSplit(def *dataset.Definition, rows []dataset.StagedRow) []dataset.StagedRow {
	for i := range rows {
		rows[i].Test = def.IsTest(rows[i].Hash)
	}
	return rows
}

func trainOf(rows []dataset.StagedRow) []dataset.StagedRow {
	var out []dataset.StagedRow
	for _, r := range rows {
		if !r.Test {
			out = append(out, r)
		}
	}
	return out
}

func testOf(rows []dataset.StagedRow) []dataset.StagedRow {
	var out []dataset.StagedRow
	for _, r := range rows {
		if r.Test {
			out = append(out, r)
		}
	}
	return out
}

// awkward makes the housing rows ill-conditioned: a rare city, missing
// floors, and the country column is constant already.
func awkward(t testing.TB, def *dataset.Definition, rows []dataset.StagedRow) []dataset.StagedRow {
	ci, fi := mustIndex(t, def, "city"), mustIndex(t, def, "floors")
	for i := range rows {
		rows[i].Fields = append([]dataset.Field(nil), rows[i].Fields...)
		if i%7 == 3 {
			rows[i].Fields[fi].Num = math.NaN()
		}
	}
	rows[5].Fields[ci].Str = "Tinytown"
	rows[11].Fields[ci].Str = "Tinytown"
	return rows
}

func requireRel(t testing.TB, want, got, tol float64, what string) {
	t.Helper()
	scale := math.Max(math.Abs(want), 1e-300)
	require.LessOrEqualf(t, math.Abs(want-got)/scale, tol, "%s: want %.17g, got %.17g", what, want, got)
}

// requireSameTransforms: stats give pass 1's vocabulary and moments.
func requireSameTransforms(t testing.TB, want, got *Artifact) {
	t.Helper()
	require.Equal(t, want.TrainRows, got.TrainRows)
	require.Equal(t, want.Spec, got.Spec)
	require.Len(t, got.Transforms, len(want.Transforms))
	for i, w := range want.Transforms {
		g := got.Transforms[i]
		if w.Numeric == nil {
			require.Equal(t, w, g)
			continue
		}
		require.Equal(t, w.Numeric.Missing, g.Numeric.Missing)
		requireRel(t, w.Numeric.Mean, g.Numeric.Mean, 1e-13, w.Column+" mean")
		requireRel(t, w.Numeric.Std, g.Numeric.Std, 1e-12, w.Column+" std")
	}
}

func requireSamePredictions(t testing.TB, def *dataset.Definition, want, got *Artifact, rows []dataset.StagedRow, tol float64) {
	t.Helper()
	pw, err := want.Predictor(def)
	require.NoError(t, err)
	pg, err := got.Predictor(def)
	require.NoError(t, err)
	for i, r := range rows {
		w, g := pw.Predict(r.Row), pg.Predict(r.Row)
		if math.Abs(w-g) > tol*math.Abs(w) {
			t.Fatalf("row %d: prediction %.17g from rows, %.17g from statistics", i, w, g)
		}
	}
}

func TestFitFromStatsMatchesFit(t *testing.T) {
	def := housingDef(t)
	hashedNum := dataset.ModelSpec{Name: "hashed-num", Kind: "linear", Features: []dataset.Feature{
		{Column: "sqft_living", Transform: dataset.TransformNumeric},
		{Column: "view", Transform: dataset.TransformHashed, Buckets: 3},
		{Column: "condition", Transform: dataset.TransformOneHot},
		{Column: "city", Transform: dataset.TransformOneHot, MaxCategories: 4},
		{Column: "city", Transform: dataset.TransformHashed, Buckets: 5},
	}}
	ridge := identifiable()
	ridge.Name, ridge.L2 = "ridge", dataset.Ridge{Lambda: 0.05}
	auto := mustSpec(t, def, "linear-onehot")
	auto.Name, auto.L2 = "auto", dataset.Ridge{Auto: true}
	def.Models = append(def.Models, hashedNum)
	tests := []struct {
		name string
		spec dataset.ModelSpec
		rows []dataset.StagedRow
		// coefficient tolerance (relative), or 0 to compare predictions
		// (the spec is collinear: coefficients are a minimum-norm choice).
		coefTol float64
	}{
		{"well conditioned", identifiable(), housingRows(t, def, 5000, 40), 1e-8},
		{"ridge", ridge, housingRows(t, def, 3000, 41), 1e-8},
		{"hashed numbers, one-hot numbers, a column twice", hashedNum, housingRows(t, def, 3000, 42), 1e-8},
		{"onehot spec: collinear, a rare city, missing floors, constant country", mustSpec(t, def, "linear-onehot"), awkward(t, def, housingRows(t, def, 4000, 43)), 0},
		{"hashed spec", mustSpec(t, def, "linear-hashed"), awkward(t, def, housingRows(t, def, 4000, 44)), 0},
		{"auto l2", auto, awkward(t, def, housingRows(t, def, 300, 45)), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := mustFit(t, def, tt.spec, tt.rows)
			got, err := FitFromStats(def, tt.spec, mustStats(t, def, tt.rows))
			require.NoError(t, err)
			requireSameTransforms(t, want, got)
			if tt.spec.L2.Auto {
				require.NotNil(t, got.L2)
				require.Equal(t, *want.L2, *got.L2)
			}
			if tt.coefTol > 0 {
				requireRel(t, want.Intercept, got.Intercept, tt.coefTol, "intercept")
				for j := range want.Coef {
					requireRel(t, want.Coef[j], got.Coef[j], tt.coefTol, "coef")
				}
			}
			requireSamePredictions(t, def, want, got, tt.rows, 1e-6)
			b1, err := got.Marshal()
			require.NoError(t, err)
			again, err := FitFromStats(def, tt.spec, mustStats(t, def, tt.rows))
			require.NoError(t, err)
			b2, err := again.Marshal()
			require.NoError(t, err)
			require.Equal(t, b1, b2, "the same statistics fit the same bytes")
		})
	}
}

// Random sequences of blobs: merged statistics fit what statistics of all
// the rows at once fit, and what the rows fit.
func TestMergedStatsEqualFullRecomputation(t *testing.T) {
	def := housingDef(t)
	for seed := range uint64(6) {
		r := rand.New(rand.NewPCG(seed, 99))
		all := withSplit(def, awkward(t, def, housingRows(t, def, 500+r.IntN(3000), 50+seed)))
		var parts []*Stats
		for at := 0; at < len(all); {
			size := 1 + r.IntN(len(all)/2)
			if r.IntN(4) == 0 {
				size = 1 + r.IntN(5) // tiny blobs, some with no test row
			}
			end := min(len(all), at+size)
			parts = append(parts, mustStats(t, def, all[at:end]))
			at = end
		}
		merged, err := Merge(parts...)
		require.NoError(t, err)
		full := mustStats(t, def, all)
		require.Equal(t, full.Train.N, merged.Train.N)
		require.Equal(t, full.Test.N, merged.Test.N)
		require.Equal(t, full.Train.Pairs, merged.Train.Pairs)
		require.Equal(t, full.Test.Sample, merged.Test.Sample)
		require.Len(t, merged.Test.Sample, int(merged.Test.N))
		for c := range full.Train.Levels {
			require.Len(t, merged.Train.Levels[c], len(full.Train.Levels[c]))
			for l, lev := range full.Train.Levels[c] {
				require.Equal(t, lev.Value, merged.Train.Levels[c][l].Value)
				require.Equal(t, lev.N, merged.Train.Levels[c][l].N)
			}
		}
		for _, name := range []string{"linear-onehot", "linear-hashed"} {
			spec := mustSpec(t, def, name)
			fromRows := mustFit(t, def, spec, trainOf(all))
			fromFull, err := FitFromStats(def, spec, full)
			require.NoError(t, err)
			fromMerged, err := FitFromStats(def, spec, merged)
			require.NoError(t, err)
			requireSameTransforms(t, fromRows, fromMerged)
			requireSamePredictions(t, def, fromRows, fromMerged, all, 1e-6)
			requireSamePredictions(t, def, fromFull, fromMerged, all, 1e-9)

			want, err := Evaluate(context.Background(), mustPredictor(t, def, fromRows), scanOf(testOf(all)))
			require.NoError(t, err)
			got, err := ScoreFromStats(def, fromRows, merged)
			require.NoError(t, err)
			require.Equal(t, want.Rows, got.Rows)
			requireRel(t, want.RMSE, got.RMSE, 1e-8, name+" rmse")
			requireRel(t, want.R2, got.R2, 1e-8, name+" r2")
			requireRel(t, want.MAE, got.MAE, 1e-9, name+" mae (exact: the sample holds every test row)")
		}
		// A fixed merge order gives the same bytes every time.
		again, err := Merge(parts...)
		require.NoError(t, err)
		require.Equal(t, merged.Marshal(), again.Marshal())
	}
}

func mustPredictor(t testing.TB, def *dataset.Definition, a *Artifact) *Predictor {
	t.Helper()
	p, err := a.Predictor(def)
	require.NoError(t, err)
	return p
}

func TestStatsRoundTripAndCorruption(t *testing.T) {
	def := housingDef(t)
	st := mustStats(t, def, withSplit(def, awkward(t, def, housingRows(t, def, 800, 60))))
	b := st.Marshal()
	back, err := UnmarshalStats(b)
	require.NoError(t, err)
	require.Equal(t, st, back)
	require.Equal(t, b, back.Marshal())

	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		bad := append([]byte(nil), b...)
		bad[r.IntN(len(bad))] ^= byte(1 + r.IntN(255))
		_, err := UnmarshalStats(bad)
		require.ErrorIs(t, err, ErrCorruptStats)
	}
	for _, cut := range []int{0, 5, len(b) / 2, len(b) - 1} {
		_, err := UnmarshalStats(b[:cut])
		require.ErrorIs(t, err, ErrCorruptStats)
	}
	_, err = UnmarshalStats(append(append([]byte(nil), b...), 0))
	require.ErrorIs(t, err, ErrCorruptStats)
}

func TestStatsErrors(t *testing.T) {
	def := housingDef(t)
	rows := housingRows(t, def, 50, 61)
	st := mustStats(t, def, rows)
	street := dataset.ModelSpec{Name: "street-num", Kind: "linear", Features: []dataset.Feature{{Column: "sqft_lot", Transform: dataset.TransformOneHot}}}
	_, err := FitFromStats(def, street, st)
	require.ErrorIs(t, err, ErrStatsLayout)

	// street is only hashed, into 10 buckets: its statistics are residues
	// modulo 10, which serve 5 buckets but not 16 nor a one-hot.
	for _, f := range []dataset.Feature{
		{Column: "street", Transform: dataset.TransformHashed, Buckets: 16},
		{Column: "street", Transform: dataset.TransformOneHot},
	} {
		_, err = FitFromStats(def, dataset.ModelSpec{Name: "street", Kind: "linear", Features: []dataset.Feature{f}}, st)
		require.ErrorIs(t, err, ErrStatsLayout)
	}
	five := dataset.ModelSpec{Name: "street", Kind: "linear", Features: []dataset.Feature{
		{Column: "sqft_living", Transform: dataset.TransformNumeric},
		{Column: "street", Transform: dataset.TransformHashed, Buckets: 5},
	}}
	big := housingRows(t, def, 2000, 62)
	want := mustFit(t, def, five, big)
	got, err := FitFromStats(def, five, mustStats(t, def, big))
	require.NoError(t, err)
	for j := range want.Coef {
		requireRel(t, want.Coef[j], got.Coef[j], 1e-8, "coef")
	}

	_, err = FitFromStats(def, mustSpec(t, def, "linear-onehot"), mustStats(t, def, nil))
	require.ErrorIs(t, err, ErrNoRows)

	a := mustFit(t, def, identifiable(), rows)
	_, err = ScoreFromStats(def, a, st) // no test rows
	require.ErrorIs(t, err, ErrNoRows)

	other := *st
	other.Num = other.Num[1:]
	_, err = Merge(st, &other)
	require.Error(t, err)

	inf := housingRows(t, def, 3, 63)
	inf[1].Fields[mustIndex(t, def, "sqft_lot")].Num = math.Inf(1)
	_, err = ComputeStats(context.Background(), def, scanOf(inf))
	require.ErrorContains(t, err, `"sqft_lot"`)
}

// On a small, wide version (40 rows, a one-hot of 22 zip codes, several
// seen once or twice) ridge with the penalty GCV picks beats OLS on
// held-out rows.
func TestRidgeAutoBeatsOLSOnSmallWideVersion(t *testing.T) {
	def := housingDef(t)
	spec := dataset.ModelSpec{Name: "zips", Kind: "linear", Features: []dataset.Feature{
		{Column: "sqft_living", Transform: dataset.TransformNumeric},
		{Column: "bathrooms", Transform: dataset.TransformNumeric},
		{Column: "bedrooms", Transform: dataset.TransformNumeric},
		{Column: "sqft_lot", Transform: dataset.TransformNumeric},
		{Column: "floors", Transform: dataset.TransformNumeric},
		{Column: "condition", Transform: dataset.TransformNumeric},
		{Column: "yr_renovated", Transform: dataset.TransformNumeric},
		{Column: "statezip", Transform: dataset.TransformOneHot, MaxCategories: 120},
	}}
	wins := 0
	const trials = 10
	for seed := range uint64(trials) {
		train := housingRows(t, def, 40, 70+seed)
		heldOut := housingRows(t, def, 3000, 170+seed)
		ols := mustFit(t, def, spec, train)
		auto := spec
		auto.L2 = dataset.Ridge{Auto: true}
		st := mustStats(t, def, train)
		ridge, err := FitFromStats(def, auto, st)
		require.NoError(t, err)
		require.NotNil(t, ridge.L2)
		mo, err := Evaluate(context.Background(), mustPredictor(t, def, ols), scanOf(heldOut))
		require.NoError(t, err)
		mr, err := Evaluate(context.Background(), mustPredictor(t, def, ridge), scanOf(heldOut))
		require.NoError(t, err)
		t.Logf("seed %d: λ %.3g, held-out RMSE OLS %.0f ridge %.0f", seed, *ridge.L2, mo.RMSE, mr.RMSE)
		if mr.RMSE < mo.RMSE {
			wins++
		}
	}
	require.GreaterOrEqual(t, wins, trials-1)
}

// Past MaxSample test rows MAE is estimated from the bottom-K hash sample;
// RMSE and R² stay exact.
func TestScoreFromStatsLargeTestSplit(t *testing.T) {
	def := housingDef(t)
	rows := withSplit(def, housingRows(t, def, 25_000, 90))
	st := mustStats(t, def, rows)
	require.Greater(t, st.Test.N, int64(MaxSample))
	require.Len(t, st.Test.Sample, MaxSample)
	var hashes []dataset.RowHash
	for _, r := range testOf(rows) {
		hashes = append(hashes, r.Hash)
	}
	slices.SortFunc(hashes, func(a, b dataset.RowHash) int { return bytes.Compare(a[:], b[:]) })
	for i, r := range st.Test.Sample {
		require.Equal(t, hashes[i], r.Hash, "the sample is the bottom-K by row hash")
	}
	// Split in two blobs, merged: the same sample.
	half, err := Merge(mustStats(t, def, rows[:9000]), mustStats(t, def, rows[9000:]))
	require.NoError(t, err)
	require.Equal(t, st.Test.Sample, half.Test.Sample)
	for _, name := range []string{"linear-onehot", "linear-hashed"} {
		a, err := FitFromStats(def, mustSpec(t, def, name), st)
		require.NoError(t, err)
		want, err := Evaluate(context.Background(), mustPredictor(t, def, a), scanOf(testOf(rows)))
		require.NoError(t, err)
		got, err := ScoreFromStats(def, a, st)
		require.NoError(t, err)
		requireRel(t, want.RMSE, got.RMSE, 1e-8, "rmse")
		requireRel(t, want.R2, got.R2, 1e-8, "r2")
		requireRel(t, want.MAE, got.MAE, 0.05, "mae estimate")
		t.Logf("%s: MAE %.1f from %d rows, %.1f from a sample of %d", name, want.MAE, want.Rows, got.MAE, MaxSample)
	}
}

// FitFromStats against the oracles directly: a dense QR and
// sajari/regression on the design matrix of the same rows.
func TestFitFromStatsMatchesOracles(t *testing.T) {
	def := housingDef(t)
	rows := housingRows(t, def, 800, 91)
	a, err := FitFromStats(def, identifiable(), mustStats(t, def, rows))
	require.NoError(t, err)
	x, y, kept := design(def, a, rows)
	var qr mat.QR
	qr.Factorize(x)
	var b mat.VecDense
	require.NoError(t, qr.SolveVecTo(&b, false, y))
	var reg regression.Regression
	n, p := x.Dims()
	for i := range n {
		reg.Train(regression.DataPoint(y.AtVec(i), mat.Row(nil, i, x)[1:p]))
	}
	require.NoError(t, reg.Run())
	for _, want := range [][]float64{b.RawVector().Data, reg.GetCoeffs()} {
		requireRel(t, want[0], a.Intercept, 1e-8, "intercept")
		for k, j := range kept {
			requireRel(t, want[k+1], a.Coef[j], 1e-8, "coef")
		}
	}
}
