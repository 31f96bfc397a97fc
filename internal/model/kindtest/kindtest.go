// Package kindtest is the conformance suite every model kind passes: the
// shape of its outputs, determinism (the same rows and spec give the same
// artifact checksum), the save/load round trip, checksum verification, a
// warm start, and refusing a dataset the model was not fitted for.
package kindtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
)

// Case is one kind with a dataset and spec it fits.
type Case struct {
	Kind model.Kind
	Def  *dataset.Definition
	Spec dataset.ModelSpec
	// Train and Test are rows of Def (their splits).
	Train, Test []dataset.StagedRow
	// Other is a definition the artifact must refuse (another dataset).
	Other *dataset.Definition
}

// Run runs the suite.
func Run(t *testing.T, c Case) {
	t.Helper()
	require.NotEmpty(t, c.Train)
	require.NotEmpty(t, c.Test)
	ctx := context.Background()
	fit := func(t *testing.T, warm *model.Artifact) (*model.Artifact, model.FitInfo) {
		t.Helper()
		a, info, err := c.Kind.Fit(ctx, c.Def, c.Spec, scan(c.Train), warm)
		require.NoError(t, err)
		return a, info
	}
	art, info := fit(t, nil)
	classifier := c.Def.Task == dataset.TaskClassification

	t.Run("shape", func(t *testing.T) {
		require.Equal(t, c.Kind.Format(), art.Format)
		require.Equal(t, c.Spec.Name, art.Spec.Name)
		require.Equal(t, c.Spec.Hash(), art.Spec.Hash)
		require.Equal(t, len(c.Train), art.TrainRows)
		require.False(t, info.Warm)
		p, err := art.Predictor(c.Def)
		require.NoError(t, err)
		if !classifier {
			require.Nil(t, p.Classes())
			for _, r := range c.Test {
				require.False(t, math.IsNaN(p.Predict(r.Row)) || math.IsInf(p.Predict(r.Row), 0))
				require.Equal(t, -1, p.PredictClass(r.Row, nil))
			}
		} else {
			classes := p.Classes()
			require.Equal(t, c.Def.Classes(), classes)
			probs := make([]float64, len(classes))
			for _, r := range c.Test {
				k := p.PredictClass(r.Row, probs)
				require.GreaterOrEqual(t, k, 0)
				require.Less(t, k, len(classes))
				sum := 0.0
				for j, q := range probs {
					require.GreaterOrEqual(t, q, 0.0)
					require.LessOrEqual(t, q, 1.0)
					require.GreaterOrEqual(t, probs[k], q, "the predicted class is the most probable (class %d)", j)
					sum += q
				}
				require.InDelta(t, 1, sum, 1e-9)
				require.Equal(t, float64(k), p.Predict(r.Row))
				require.Equal(t, k, p.PredictClass(r.Row, nil), "probabilities not wanted: same class")
			}
		}
		ms, err := model.EvaluateEach(ctx, []*model.Predictor{p, p}, scan(c.Test))
		require.NoError(t, err)
		require.Len(t, ms, 2)
		require.Equal(t, ms[0], ms[1])
		m := ms[0]
		require.Equal(t, len(c.Test), m.Rows)
		if !classifier {
			require.Nil(t, m.Classification)
			require.GreaterOrEqual(t, m.RMSE, m.MAE)
			return
		}
		cm := m.Classification
		require.NotNil(t, cm)
		k := len(c.Def.Classes())
		require.Equal(t, c.Def.Classes(), cm.Classes)
		require.Len(t, cm.Precision, k)
		require.Len(t, cm.Recall, k)
		require.Len(t, cm.Confusion, k)
		total := 0
		for _, row := range cm.Confusion {
			require.Len(t, row, k)
			for _, x := range row {
				total += x
			}
		}
		require.Equal(t, len(c.Test), total)
		require.True(t, cm.Accuracy >= 0 && cm.Accuracy <= 1)
		require.Positive(t, cm.LogLoss)
		if k == 2 {
			require.NotNil(t, cm.ROCAUC)
		}
	})

	b, err := art.Marshal()
	require.NoError(t, err)
	sum := model.Checksum(b)

	t.Run("determinism", func(t *testing.T) {
		again, _ := fit(t, nil)
		b2, err := again.Marshal()
		require.NoError(t, err)
		require.Equal(t, sum, model.Checksum(b2), "same rows and spec, another artifact")
	})

	t.Run("save and load", func(t *testing.T) {
		o := opener{"m": b}
		loaded, err := model.Load(ctx, o, "m", sum)
		require.NoError(t, err)
		b2, err := loaded.Marshal()
		require.NoError(t, err)
		require.Equal(t, b, b2)
		p1, err := art.Predictor(c.Def)
		require.NoError(t, err)
		p2, err := loaded.Predictor(c.Def)
		require.NoError(t, err)
		probs1, probs2 := make([]float64, len(c.Def.Classes())), make([]float64, len(c.Def.Classes()))
		for _, r := range c.Test {
			require.Equal(t, p1.Predict(r.Row), p2.Predict(r.Row))
			require.Equal(t, p1.PredictClass(r.Row, probs1), p2.PredictClass(r.Row, probs2))
			require.Equal(t, probs1, probs2)
		}
	})

	t.Run("checksum", func(t *testing.T) {
		bad := bytes.Clone(b)
		i := bytes.LastIndexByte(bad, '1')
		if i < 0 {
			i = bytes.LastIndexByte(bad, '2')
		}
		require.GreaterOrEqual(t, i, 0)
		bad[i] = '3' // still a valid artifact, perhaps, but not this one
		_, err := model.Load(ctx, opener{"m": bad}, "m", sum)
		require.ErrorIs(t, err, model.ErrInvalidArtifact)
		_, err = model.Load(ctx, opener{"m": b[:len(b)/2]}, "m", "")
		require.ErrorIs(t, err, model.ErrInvalidArtifact, "a truncated artifact")
	})

	t.Run("warm start", func(t *testing.T) {
		warm, winfo := fit(t, art)
		require.Equal(t, c.Kind.Format(), warm.Format)
		p, err := warm.Predictor(c.Def)
		require.NoError(t, err)
		cold, err := art.Predictor(c.Def)
		require.NoError(t, err)
		ms, err := model.EvaluateEach(ctx, []*model.Predictor{cold, p}, scan(c.Test))
		require.NoError(t, err)
		if classifier {
			require.True(t, winfo.Warm, "a classifier starts from its parent")
			require.LessOrEqual(t, winfo.Iterations, info.Iterations, "starting at the optimum takes no more iterations")
			require.InDelta(t, ms[0].Classification.Accuracy, ms[1].Classification.Accuracy, 0.02)
		} else {
			require.InDelta(t, ms[0].RMSE, ms[1].RMSE, 1e-6*ms[0].RMSE+1e-9)
		}
	})

	t.Run("refuses another dataset", func(t *testing.T) {
		_, err := art.Predictor(c.Other)
		require.Error(t, err)
	})
}

func scan(rows []dataset.StagedRow) dataset.Scan {
	return func(fn func(dataset.StagedRow) error) error {
		for _, r := range rows {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
}

type opener map[string][]byte

func (o opener) Open(_ context.Context, name string) (io.ReadCloser, error) {
	b, ok := o[name]
	if !ok {
		return nil, fmt.Errorf("open %s: %w", name, errors.New("not found"))
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Rows reads CSV (a header, then rows of def) into staged rows with their
// hashes and splits, as preprocessing stages them. Rejected rows fail t.
func Rows(t testing.TB, def *dataset.Definition, csv []byte) (train, test []dataset.StagedRow) {
	t.Helper()
	ir, err := def.NewInputReader(bytes.NewReader(csv), dataset.InputOptions{})
	require.NoError(t, err)
	for {
		r, rej, err := ir.Next()
		if errors.Is(err, io.EOF) {
			return train, test
		}
		require.NoError(t, err)
		require.Nil(t, rej)
		h := def.Hash(r)
		sr := dataset.StagedRow{Row: r, Hash: h, Test: def.IsTest(h), Source: "kindtest"}
		if sr.Test {
			test = append(test, sr)
		} else {
			train = append(train, sr)
		}
	}
}
