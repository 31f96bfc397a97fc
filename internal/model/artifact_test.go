package model

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/stretchr/testify/require"
)

func TestArtifactRoundTrip(t *testing.T) {
	def := housingDef(t)
	rows := housingRows(t, def, 3000, 20)
	a := mustFit(t, def, mustSpec(t, def, "linear-onehot"), rows)
	b, err := a.Marshal()
	require.NoError(t, err)
	require.NotContains(t, string(b), "time", "no timestamps in the artifact")

	back, err := Unmarshal(b)
	require.NoError(t, err)
	require.Equal(t, a, back)
	b2, err := back.Marshal()
	require.NoError(t, err)
	require.Equal(t, Checksum(b), Checksum(b2))
	require.True(t, strings.HasPrefix(Checksum(b), "sha256:"))
	require.Len(t, Checksum(b), len("sha256:")+64)

	p1, err := a.Predictor(def)
	require.NoError(t, err)
	p2, err := back.Predictor(def)
	require.NoError(t, err)
	for _, r := range rows[:200] {
		require.Equal(t, p1.Predict(r.Row), p2.Predict(r.Row))
	}
}

// edit marshals a fitted artifact as a generic JSON object, lets fn change
// it, and re-encodes it.
func edit(t *testing.T, b []byte, fn func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	fn(m)
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

func TestUnmarshalRejects(t *testing.T) {
	def := housingDef(t)
	a := mustFit(t, def, mustSpec(t, def, "linear-onehot"), housingRows(t, def, 1000, 21))
	good, err := a.Marshal()
	require.NoError(t, err)
	features := func(m map[string]any) []any { return m["features"].([]any) }
	tests := []struct {
		name string
		b    []byte
	}{
		{"not JSON", []byte("{")},
		{"bad format", edit(t, good, func(m map[string]any) { m["format"] = "refit.linear.v0" })},
		{"no format", edit(t, good, func(m map[string]any) { delete(m, "format") })},
		{"coefficient missing", edit(t, good, func(m map[string]any) { m["coef"] = m["coef"].([]any)[1:] })},
		{"coefficient extra", edit(t, good, func(m map[string]any) { m["coef"] = append(m["coef"].([]any), 1.0) })},
		{"unknown field", edit(t, good, func(m map[string]any) { m["trained_at"] = "yesterday" })},
		{"spec hash mismatch", edit(t, good, func(m map[string]any) { m["spec"].(map[string]any)["hash"] = "0000" })},
		{"transform without parameters", edit(t, good, func(m map[string]any) { delete(features(m)[0].(map[string]any), "numeric") })},
		{"transform with two parameter sets", edit(t, good, func(m map[string]any) {
			features(m)[0].(map[string]any)["hashed"] = map[string]any{"buckets": 3}
		})},
		{"transform out of order", edit(t, good, func(m map[string]any) { f := features(m); f[0], f[1] = f[1], f[0] })},
		{"negative std", edit(t, good, func(m map[string]any) {
			features(m)[0].(map[string]any)["numeric"].(map[string]any)["std"] = -1
		})},
		{"repeated level", edit(t, good, func(m map[string]any) {
			oh := features(m)[12].(map[string]any)["onehot"].(map[string]any)
			oh["levels"] = append(oh["levels"].([]any), oh["reference"])
		})},
		{"no training rows", edit(t, good, func(m map[string]any) { m["train_rows"] = 0 })},
		{"trailing data", append(append([]byte{}, good...), []byte(` {}`)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Unmarshal(tt.b)
			require.ErrorIs(t, err, ErrInvalidArtifact)
		})
	}
	// edit itself keeps a valid artifact valid.
	_, err = Unmarshal(edit(t, good, func(map[string]any) {}))
	require.NoError(t, err)
}

func TestPredictor(t *testing.T) {
	def := housingDef(t)
	rows := housingRows(t, def, 2000, 22)
	a := mustFit(t, def, mustSpec(t, def, "linear-onehot"), rows)
	p, err := a.Predictor(def)
	require.NoError(t, err)
	require.Equal(t, []string{"bedrooms", "bathrooms", "sqft_living", "sqft_lot", "floors", "waterfront", "view",
		"condition", "sqft_above", "sqft_basement", "yr_built", "yr_renovated", "city", "statezip"}, p.Columns())
	r := rows[0].Row
	require.Zero(t, testing.AllocsPerRun(100, func() { p.Predict(r) }))

	other := *a
	other.Dataset = "houses"
	_, err = other.Predictor(def)
	require.Error(t, err)

	bad := *a
	bad.Coef = bad.Coef[1:]
	_, err = bad.Predictor(def)
	require.ErrorIs(t, err, ErrInvalidArtifact)
}

func TestFitErrors(t *testing.T) {
	def := housingDef(t)
	rows := housingRows(t, def, 100, 23)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	short := []dataset.StagedRow{{Row: dataset.Row{Fields: rows[0].Fields[1:], Target: rows[0].Target}}}
	tests := []struct {
		name string
		ctx  context.Context
		spec dataset.ModelSpec
		rows []dataset.StagedRow
		is   error
	}{
		{name: "no rows", spec: identifiable(), is: ErrNoRows},
		{name: "cancelled", ctx: cancelled, spec: identifiable(), rows: rows, is: context.Canceled},
		{name: "unknown column", spec: dataset.ModelSpec{Name: "x", Kind: "linear", Features: []dataset.Feature{{Column: "colour", Transform: "numeric"}}}, rows: rows},
		{name: "numeric of a string", spec: dataset.ModelSpec{Name: "x", Kind: "linear", Features: []dataset.Feature{{Column: "city", Transform: "numeric"}}}, rows: rows},
		{name: "no buckets", spec: dataset.ModelSpec{Name: "x", Kind: "linear", Features: []dataset.Feature{{Column: "city", Transform: "hashed"}}}, rows: rows},
		{name: "not linear", spec: dataset.ModelSpec{Name: "x", Kind: "tree", Features: identifiable().Features}, rows: rows},
		{name: "negative l2", spec: dataset.ModelSpec{Name: "x", Kind: "linear", L2: dataset.Ridge{Lambda: -1}, Features: identifiable().Features}, rows: rows},
		{name: "row of another definition", spec: identifiable(), rows: short},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			_, err := Fit(ctx, def, tt.spec, scanOf(tt.rows))
			require.Error(t, err)
			if tt.is != nil {
				require.ErrorIs(t, err, tt.is)
			}
		})
	}
}

func TestFitRidgeShrinks(t *testing.T) {
	def := housingDef(t)
	rows := housingRows(t, def, 2000, 24)
	spec := identifiable()
	ols := mustFit(t, def, spec, rows)
	spec.L2 = dataset.Ridge{Lambda: 1}
	ridge := mustFit(t, def, spec, rows)
	require.NotEqual(t, ols.Spec.Hash, ridge.Spec.Hash)
	norm := func(c []float64) (s float64) {
		for _, v := range c {
			s += v * v
		}
		return s
	}
	require.Less(t, norm(ridge.Coef), norm(ols.Coef))
}
