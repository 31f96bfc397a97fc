package model_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/model/kindtest"
	"github.com/refit-ml/refit/internal/synth"
)

func shipped(t *testing.T, name string) *dataset.Definition {
	t.Helper()
	b, err := os.ReadFile("../../schemas/datasets/" + name + ".json")
	require.NoError(t, err)
	def, err := dataset.Parse(b)
	require.NoError(t, err)
	return def
}

func TestKindsConform(t *testing.T) {
	housing, reviews := shipped(t, "housing"), shipped(t, "reviews")
	var hb, rb bytes.Buffer
	require.NoError(t, synth.Housing{Seed: 3}.Write(&hb, 1500))
	require.NoError(t, synth.Reviews{Seed: 3, LabelNoise: 0.05}.Write(&rb, 1500))
	htrain, htest := kindtest.Rows(t, housing, hb.Bytes())
	rtrain, rtest := kindtest.Rows(t, reviews, rb.Bytes())
	for _, spec := range housing.Models {
		t.Run("linear/"+spec.Name, func(t *testing.T) {
			k, ok := model.LookupKind(spec.Kind)
			require.True(t, ok)
			kindtest.Run(t, kindtest.Case{Kind: k, Def: housing, Spec: spec, Train: htrain, Test: htest, Other: reviews})
		})
	}
	for _, spec := range reviews.Models {
		t.Run("logistic/"+spec.Name, func(t *testing.T) {
			k, ok := model.LookupKind(spec.Kind)
			require.True(t, ok)
			kindtest.Run(t, kindtest.Case{Kind: k, Def: reviews, Spec: spec, Train: rtrain, Test: rtest, Other: housing})
		})
	}
	require.Equal(t, []string{"linear", "logistic"}, model.KindNames())
}

// The classifier learns: on generated reviews (ground truth about 0.85
// accurate) both shipped specs score well above chance.
func TestLogisticLearnsReviews(t *testing.T) {
	reviews := shipped(t, "reviews")
	var rb bytes.Buffer
	require.NoError(t, synth.Reviews{Seed: 5, LabelNoise: 0.05}.Write(&rb, 4000))
	train, test := kindtest.Rows(t, reviews, rb.Bytes())
	k, _ := model.LookupKind(dataset.KindLogistic)
	for _, spec := range reviews.Models {
		a, info, err := k.Fit(t.Context(), reviews, spec, scanRows(train), nil)
		require.NoError(t, err)
		p, err := a.Predictor(reviews)
		require.NoError(t, err)
		ms, err := model.EvaluateEach(t.Context(), []*model.Predictor{p}, scanRows(test))
		require.NoError(t, err)
		t.Logf("%s: accuracy %.4f, F1 %.4f, log loss %.4f, AUC %.4f, %d iterations", spec.Name,
			ms[0].Classification.Accuracy, ms[0].Classification.F1Macro, ms[0].Classification.LogLoss, *ms[0].Classification.ROCAUC, info.Iterations)
		require.Greater(t, ms[0].Classification.Accuracy, 0.75)
		require.Greater(t, *ms[0].Classification.ROCAUC, 0.8)
		require.Positive(t, info.Iterations)
		require.Equal(t, info.Iterations, a.Logistic.Iterations)
	}
}

func scanRows(rows []dataset.StagedRow) dataset.Scan {
	return func(fn func(dataset.StagedRow) error) error {
		for _, r := range rows {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
}
