package model

import (
	"context"
	"math"
	"testing"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/stretchr/testify/require"
)

// linearOn returns a predictor of intercept + slope·sqft_living.
func linearOn(t *testing.T, def *dataset.Definition, intercept, slope float64) *Predictor {
	t.Helper()
	spec := dataset.ModelSpec{Name: "living", Kind: "linear", Features: []dataset.Feature{
		{Column: "sqft_living", Transform: dataset.TransformNumeric},
	}}
	a := &Artifact{
		Format:     FormatLinearV1,
		Dataset:    def.Name,
		Spec:       SpecRef{Name: spec.Name, Hash: spec.Hash(), Model: spec},
		Target:     def.Target.Name,
		Transforms: []Transform{{Column: "sqft_living", Transform: "numeric", Numeric: &Numeric{Std: 1}}},
		Intercept:  intercept,
		Coef:       []float64{slope},
		TrainRows:  1,
	}
	p, err := a.Predictor(def)
	require.NoError(t, err)
	return p
}

func rowsOf(t *testing.T, def *dataset.Definition, living, price []float64) []dataset.StagedRow {
	li := mustIndex(t, def, "sqft_living")
	rows := make([]dataset.StagedRow, len(living))
	for i := range living {
		f := make([]dataset.Field, len(def.Kept()))
		f[li].Num = living[i]
		rows[i] = dataset.StagedRow{Row: dataset.Row{Fields: f, Target: dataset.Field{Num: price[i]}}}
	}
	return rows
}

func TestEvaluate(t *testing.T) {
	def := housingDef(t)
	p := linearOn(t, def, 10, 2) // predicts 210, 410, 610
	tests := []struct {
		name  string
		price []float64
		want  Metrics
	}{
		{
			// errors 0, -5, 10; SSE 125; SST = 592525 - 1235²/3 = 252350/3
			name:  "by hand",
			price: []float64{210, 405, 620},
			want:  Metrics{Rows: 3, RMSE: math.Sqrt(125.0 / 3), MAE: 5, R2: 1 - 375.0/252350},
		},
		{
			name:  "perfect",
			price: []float64{210, 410, 610},
			want:  Metrics{Rows: 3, RMSE: 0, MAE: 0, R2: 1},
		},
		{
			// errors 90, -110, -310: SST is 0, so R2 is 0 by definition
			name:  "constant target",
			price: []float64{300, 300, 300},
			want:  Metrics{Rows: 3, RMSE: math.Sqrt((90*90 + 110*110 + 310*310) / 3.0), MAE: 510.0 / 3, R2: 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Evaluate(context.Background(), p, scanOf(rowsOf(t, def, []float64{100, 200, 300}, tt.price)))
			require.NoError(t, err)
			require.Equal(t, tt.want.Rows, got.Rows)
			require.InDelta(t, tt.want.RMSE, got.RMSE, 1e-9)
			require.InDelta(t, tt.want.MAE, got.MAE, 1e-9)
			require.InDelta(t, tt.want.R2, got.R2, 1e-12)
		})
	}

	_, err := Evaluate(context.Background(), p, scanOf(nil))
	require.ErrorIs(t, err, ErrNoRows)
}
