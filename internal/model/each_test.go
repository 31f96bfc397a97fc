package model

import (
	"context"
	"math"
	"testing"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/stretchr/testify/require"
)

// countingScan counts how often its rows are read.
func countingScan(rows []dataset.StagedRow, reads *int) dataset.Scan {
	return func(fn func(dataset.StagedRow) error) error {
		*reads++
		return scanOf(rows)(fn)
	}
}

func TestFitEachIsFitPerSpec(t *testing.T) {
	def := housingDef(t)
	rows := housingRows(t, def, 3000, 40)
	lot, ok := def.Index("sqft_lot")
	require.True(t, ok)
	withInf := make([]dataset.StagedRow, len(rows))
	copy(withInf, rows)
	bad := withInf[100]
	bad.Fields = append([]dataset.Field(nil), bad.Fields...)
	bad.Fields[lot] = dataset.Field{Num: math.Inf(1)}
	withInf[100] = bad

	noLot := identifiable() // does not read sqft_lot
	broken := dataset.ModelSpec{Name: "broken", Kind: "tree", Features: noLot.Features}
	for _, tt := range []struct {
		name  string
		rows  []dataset.StagedRow
		specs []dataset.ModelSpec
		fails []bool
	}{
		{"housing specs", rows, []dataset.ModelSpec{mustSpec(t, def, "linear-onehot"), mustSpec(t, def, "linear-hashed"), noLot}, []bool{false, false, false}},
		{"an invalid spec fails alone", rows, []dataset.ModelSpec{broken, mustSpec(t, def, "linear-hashed")}, []bool{true, false}},
		{"an infinite value fails the specs that read it", withInf, []dataset.ModelSpec{mustSpec(t, def, "linear-onehot"), noLot}, []bool{true, false}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reads := 0
			arts, errs := FitEach(context.Background(), def, tt.specs, countingScan(tt.rows, &reads))
			require.Equal(t, 2, reads, "two reads whatever the number of specs")
			for i, spec := range tt.specs {
				alone, err := Fit(context.Background(), def, spec, scanOf(tt.rows))
				if tt.fails[i] {
					require.Error(t, errs[i], spec.Name)
					require.Error(t, err)
					require.Nil(t, arts[i])
					continue
				}
				require.NoError(t, errs[i], spec.Name)
				require.NoError(t, err)
				want, err := alone.Marshal()
				require.NoError(t, err)
				got, err := arts[i].Marshal()
				require.NoError(t, err)
				require.Equal(t, string(want), string(got), spec.Name)
			}
		})
	}
}

func TestFitEachScanErrorFailsAll(t *testing.T) {
	def := housingDef(t)
	specs := []dataset.ModelSpec{mustSpec(t, def, "linear-onehot"), mustSpec(t, def, "linear-hashed")}
	_, errs := FitEach(context.Background(), def, specs, scanOf(nil))
	for _, err := range errs {
		require.ErrorIs(t, err, ErrNoRows)
	}
}

func TestEvaluateEachIsEvaluatePerPredictor(t *testing.T) {
	def := housingDef(t)
	train, test := housingRows(t, def, 3000, 41), housingRows(t, def, 1000, 42)
	var ps []*Predictor
	for _, name := range []string{"linear-onehot", "linear-hashed"} {
		p, err := mustFit(t, def, mustSpec(t, def, name), train).Predictor(def)
		require.NoError(t, err)
		ps = append(ps, p)
	}
	reads := 0
	ms, err := EvaluateEach(context.Background(), ps, countingScan(test, &reads))
	require.NoError(t, err)
	require.Equal(t, 1, reads)
	require.NotEqual(t, ms[0], ms[1])
	for i, p := range ps {
		m, err := Evaluate(context.Background(), p, scanOf(test))
		require.NoError(t, err)
		require.Equal(t, m, ms[i])
	}
}
