// Package classmetrics scores a classifier's probabilities against the true
// classes, as scikit-learn's metrics do: accuracy, per-class precision and
// recall, macro F1, log loss, ROC AUC (two classes) and the confusion
// matrix. Rows stream in through Add; Metrics summarises them.
package classmetrics

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Eps clips probabilities in the log loss: float64 machine epsilon, as
// scikit-learn 1.2 does (eps="auto"); older versions used 1e-15.
const Eps = 2.220446049250313e-16

// ErrNoRows: nothing was added.
var ErrNoRows = errors.New("classmetrics: no rows")

// Metrics is the summary. Precision, recall and F1 of a class that was
// never predicted (or never true) are 0, as scikit-learn's zero_division
// default gives.
type Metrics struct {
	Rows      int       `json:"rows"`
	Accuracy  float64   `json:"accuracy"`
	MacroF1   float64   `json:"macro_f1"`
	LogLoss   float64   `json:"log_loss"`
	Precision []float64 `json:"precision"`
	Recall    []float64 `json:"recall"`
	F1        []float64 `json:"f1"`
	// ROCAUC of class 1's probability (two classes only; nil when one of
	// the classes is absent, where it is undefined).
	ROCAUC *float64 `json:"roc_auc,omitempty"`
	// Confusion[t][p] counts rows of true class t predicted as p.
	Confusion [][]int `json:"confusion"`
}

// Accumulator gathers rows. For two classes it keeps each row's score (for
// the AUC): 9 bytes a row; otherwise O(classes²).
type Accumulator struct {
	classes   int
	confusion [][]int
	logloss   float64
	scores    []scored
	n         int
}

type scored struct {
	p   float64
	pos bool
}

// New accumulates rows of classes classes (>= 2).
func New(classes int) (*Accumulator, error) {
	if classes < 2 {
		return nil, fmt.Errorf("classmetrics: %d classes, want at least 2", classes)
	}
	a := &Accumulator{classes: classes, confusion: make([][]int, classes)}
	for i := range a.confusion {
		a.confusion[i] = make([]int, classes)
	}
	return a, nil
}

// Add records one row: its true class and the predicted probabilities
// (len classes). The prediction is the most probable class, the lowest on
// a tie. The probabilities are renormalised to sum to 1 for the log loss,
// as scikit-learn does.
func (a *Accumulator) Add(class int, proba []float64) error {
	if class < 0 || class >= a.classes {
		return fmt.Errorf("classmetrics: class %d of %d", class, a.classes)
	}
	if len(proba) != a.classes {
		return fmt.Errorf("classmetrics: %d probabilities for %d classes", len(proba), a.classes)
	}
	best, sum := 0, 0.0
	for c, p := range proba {
		if math.IsNaN(p) || p < 0 || math.IsInf(p, 0) {
			return fmt.Errorf("classmetrics: probability %g", p)
		}
		if p > proba[best] {
			best = c
		}
		sum += min(max(p, Eps), 1-Eps)
	}
	a.confusion[class][best]++
	a.logloss -= math.Log(min(max(proba[class], Eps), 1-Eps) / sum)
	if a.classes == 2 {
		a.scores = append(a.scores, scored{proba[1], class == 1})
	}
	a.n++
	return nil
}

// Metrics summarises the rows added so far.
func (a *Accumulator) Metrics() (Metrics, error) {
	if a.n == 0 {
		return Metrics{}, ErrNoRows
	}
	k := a.classes
	m := Metrics{
		Rows:      a.n,
		LogLoss:   a.logloss / float64(a.n),
		Precision: make([]float64, k),
		Recall:    make([]float64, k),
		F1:        make([]float64, k),
		Confusion: make([][]int, k),
	}
	correct := 0
	for c := range k {
		m.Confusion[c] = slices.Clone(a.confusion[c])
		correct += a.confusion[c][c]
		tp, predicted, actual := a.confusion[c][c], 0, 0
		for o := range k {
			predicted += a.confusion[o][c]
			actual += a.confusion[c][o]
		}
		if predicted > 0 {
			m.Precision[c] = float64(tp) / float64(predicted)
		}
		if actual > 0 {
			m.Recall[c] = float64(tp) / float64(actual)
		}
		if s := m.Precision[c] + m.Recall[c]; s > 0 {
			m.F1[c] = 2 * m.Precision[c] * m.Recall[c] / s
		}
		m.MacroF1 += m.F1[c] / float64(k)
	}
	m.Accuracy = float64(correct) / float64(a.n)
	if k == 2 {
		if auc, ok := rocAUC(a.scores); ok {
			m.ROCAUC = &auc
		}
	}
	return m, nil
}

// rocAUC is the Mann-Whitney statistic: the chance that a random positive
// scores above a random negative, ties counting one half (the trapezoids
// of scikit-learn's roc_auc_score). It sorts s.
func rocAUC(s []scored) (float64, bool) {
	slices.SortFunc(s, func(a, b scored) int { return cmp.Compare(a.p, b.p) })
	var pos, neg, negBelow float64
	var sum float64 // Σ over positives of (negatives below + ½ negatives tied)
	for i := 0; i < len(s); {
		j := i
		var tp, tn float64
		for j < len(s) && s[j].p == s[i].p {
			if s[j].pos {
				tp++
			} else {
				tn++
			}
			j++
		}
		sum += tp * (negBelow + tn/2)
		negBelow += tn
		pos += tp
		neg += tn
		i = j
	}
	if pos == 0 || neg == 0 {
		return 0, false
	}
	return sum / (pos * neg), true
}
