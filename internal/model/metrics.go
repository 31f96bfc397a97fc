package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/refit-ml/refit/internal/classmetrics"
	"github.com/refit-ml/refit/internal/dataset"
)

// Metrics score predictions against targets.
type Metrics struct {
	Rows int     `json:"rows"`
	RMSE float64 `json:"rmse"`
	MAE  float64 `json:"mae"`
	// R2 is 1 - SSE/SST; it is 0 when the targets do not vary (SST = 0),
	// where the ratio is undefined.
	R2 float64 `json:"r2"`
	// Classification is a classifier's scores (nil for regression).
	Classification *Classification `json:"classification,omitempty"`
}

// Classification is a classifier's scores on held-out rows; per-class lists
// follow Classes. It has registry.Classification's fields, so one converts
// to the other.
type Classification struct {
	Accuracy  float64   `json:"accuracy"`
	F1Macro   float64   `json:"f1_macro"`
	LogLoss   float64   `json:"log_loss"`
	ROCAUC    *float64  `json:"roc_auc,omitempty"`
	Classes   []string  `json:"classes"`
	Precision []float64 `json:"precision"`
	Recall    []float64 `json:"recall"`
	F1        []float64 `json:"f1"`
	Confusion [][]int   `json:"confusion"`
}

// EvaluateEach scores every predictor on the rows of test in one streaming
// pass, each as if scored alone (the same sums in the same order).
// Classifiers get classification scores (and 0 for the regression ones);
// ps must then all be classifiers.
func EvaluateEach(ctx context.Context, ps []*Predictor, test dataset.Scan) ([]Metrics, error) {
	if len(ps) > 0 && ps[0].cls != nil {
		return evaluateClassifiers(ctx, ps, test)
	}
	type errSums struct{ sse, sae float64 }
	sums := make([]errSums, len(ps))
	var (
		n             int
		meanY, sstDev float64 // Welford: running mean and Σ (y - mean)²
	)
	err := test(func(r dataset.StagedRow) error {
		if n%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		y := r.Target.Num
		for i, p := range ps {
			if len(r.Fields) != p.width {
				return fmt.Errorf("row %d: %d fields, the definition keeps %d", n, len(r.Fields), p.width)
			}
			e := y - p.Predict(r.Row)
			sums[i].sse += e * e
			sums[i].sae += math.Abs(e)
		}
		n++
		d := y - meanY
		meanY += d / float64(n)
		sstDev += d * (y - meanY)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("evaluate: %w", ErrNoRows)
	}
	ms := make([]Metrics, len(ps))
	for i, s := range sums {
		ms[i] = Metrics{Rows: n, RMSE: math.Sqrt(s.sse / float64(n)), MAE: s.sae / float64(n)}
		if sstDev > 0 {
			ms[i].R2 = 1 - s.sse/sstDev
		}
	}
	return ms, nil
}

// evaluateClassifiers scores classifiers on the rows of test in one pass.
func evaluateClassifiers(ctx context.Context, ps []*Predictor, test dataset.Scan) ([]Metrics, error) {
	accs := make([]*classmetrics.Accumulator, len(ps))
	for i, p := range ps {
		if p.cls == nil {
			return nil, errors.New("evaluate: a regression model among classifiers")
		}
		acc, err := classmetrics.New(len(p.cls.classes))
		if err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
		accs[i] = acc
	}
	var probs []float64
	n := 0
	err := test(func(r dataset.StagedRow) error {
		if n%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		for i, p := range ps {
			if len(r.Fields) != p.width {
				return fmt.Errorf("row %d: %d fields, the definition keeps %d", n, len(r.Fields), p.width)
			}
			class := slices.Index(p.cls.classes, r.Target.Str)
			if class < 0 {
				return fmt.Errorf("row %d: label %q is not one of the classes %v", n, r.Target.Str, p.cls.classes)
			}
			probs = slices.Grow(probs[:0], len(p.cls.classes))[:len(p.cls.classes)]
			p.PredictClass(r.Row, probs)
			if err := accs[i].Add(class, probs); err != nil {
				return fmt.Errorf("row %d: %w", n, err)
			}
		}
		n++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("evaluate: %w", ErrNoRows)
	}
	ms := make([]Metrics, len(ps))
	for i, acc := range accs {
		cm, err := acc.Metrics()
		if err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
		ms[i] = Metrics{Rows: cm.Rows, Classification: &Classification{
			Accuracy: cm.Accuracy, F1Macro: cm.MacroF1, LogLoss: cm.LogLoss, ROCAUC: cm.ROCAUC,
			Classes: slices.Clone(ps[i].cls.classes), Precision: cm.Precision, Recall: cm.Recall, F1: cm.F1, Confusion: cm.Confusion,
		}}
	}
	return ms, nil
}
