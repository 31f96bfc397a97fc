package classmetrics

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12*max(1, math.Abs(b)) }

func metricsOf(t *testing.T, classes int, y []int, proba [][]float64) Metrics {
	t.Helper()
	a, err := New(classes)
	if err != nil {
		t.Fatal(err)
	}
	for i := range y {
		if err := a.Add(y[i], proba[i]); err != nil {
			t.Fatal(err)
		}
	}
	m, err := a.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Hand-computed: 4 positives, 4 negatives.
func TestHandComputed(t *testing.T) {
	y := []int{1, 1, 1, 1, 0, 0, 0, 0}
	p1 := []float64{0.9, 0.8, 0.4, 0.5, 0.5, 0.3, 0.2, 0.6}
	proba := make([][]float64, len(p1))
	for i, p := range p1 {
		proba[i] = []float64{1 - p, p}
	}
	m := metricsOf(t, 2, y, proba)
	// predictions (class 1 when p > 0.5): 1 1 0 0 | 0 0 0 1
	if want := [][]int{{3, 1}, {2, 2}}; !slices.EqualFunc(m.Confusion, want, slices.Equal) {
		t.Fatalf("confusion %v, want %v", m.Confusion, want)
	}
	if !near(m.Accuracy, 5.0/8) {
		t.Errorf("accuracy %v", m.Accuracy)
	}
	// class 0: precision 3/5, recall 3/4; class 1: precision 2/3, recall 2/4.
	f0 := 2 * (0.6 * 0.75) / (0.6 + 0.75)
	f1 := 2 * (2.0 / 3 * 0.5) / (2.0/3 + 0.5)
	if !near(m.Precision[0], 0.6) || !near(m.Recall[0], 0.75) || !near(m.Precision[1], 2.0/3) || !near(m.Recall[1], 0.5) {
		t.Errorf("precision %v recall %v", m.Precision, m.Recall)
	}
	if !near(m.MacroF1, (f0+f1)/2) {
		t.Errorf("macro F1 %v, want %v", m.MacroF1, (f0+f1)/2)
	}
	// AUC: pairs (pos, neg) with pos > neg, ties ½. Positives 0.9 0.8 0.4
	// 0.5 vs negatives 0.5 0.3 0.2 0.6: 0.9→4, 0.8→4, 0.4→2, 0.5→2.5.
	if m.ROCAUC == nil || !near(*m.ROCAUC, 12.5/16) {
		t.Errorf("auc %v, want %v", m.ROCAUC, 12.5/16)
	}
	ll := 0.0
	for i, p := range p1 {
		if y[i] == 1 {
			ll -= math.Log(p)
		} else {
			ll -= math.Log(1 - p)
		}
	}
	if !near(m.LogLoss, ll/8) {
		t.Errorf("log loss %v, want %v", m.LogLoss, ll/8)
	}
}

func TestMatchesScikitLearn(t *testing.T) {
	b, err := os.ReadFile("testdata/sklearn_metrics.json")
	if err != nil {
		t.Fatal(err)
	}
	var oracle struct {
		Cases []struct {
			Name      string      `json:"name"`
			Y         []int       `json:"y"`
			Proba     [][]float64 `json:"proba"`
			Accuracy  float64     `json:"accuracy"`
			MacroF1   float64     `json:"macro_f1"`
			Precision []float64   `json:"precision"`
			Recall    []float64   `json:"recall"`
			LogLoss   float64     `json:"log_loss"`
			Confusion [][]int     `json:"confusion"`
			ROCAUC    *float64    `json:"roc_auc"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &oracle); err != nil {
		t.Fatal(err)
	}
	if len(oracle.Cases) != 3 {
		t.Fatalf("%d cases", len(oracle.Cases))
	}
	for _, c := range oracle.Cases {
		t.Run(c.Name, func(t *testing.T) {
			m := metricsOf(t, len(c.Proba[0]), c.Y, c.Proba)
			if !near(m.Accuracy, c.Accuracy) || !near(m.MacroF1, c.MacroF1) || !near(m.LogLoss, c.LogLoss) {
				t.Errorf("accuracy %v f1 %v logloss %v, sklearn %v %v %v", m.Accuracy, m.MacroF1, m.LogLoss, c.Accuracy, c.MacroF1, c.LogLoss)
			}
			if !slices.EqualFunc(m.Precision, c.Precision, near) || !slices.EqualFunc(m.Recall, c.Recall, near) {
				t.Errorf("precision %v recall %v, sklearn %v %v", m.Precision, m.Recall, c.Precision, c.Recall)
			}
			if !slices.EqualFunc(m.Confusion, c.Confusion, slices.Equal) {
				t.Errorf("confusion %v, sklearn %v", m.Confusion, c.Confusion)
			}
			if (m.ROCAUC == nil) != (c.ROCAUC == nil) || (c.ROCAUC != nil && !near(*m.ROCAUC, *c.ROCAUC)) {
				t.Errorf("auc %v, sklearn %v", m.ROCAUC, c.ROCAUC)
			}
		})
	}
}

func TestEdgeCases(t *testing.T) {
	if _, err := New(1); err == nil {
		t.Error("one class accepted")
	}
	a, _ := New(2)
	if _, err := a.Metrics(); err != ErrNoRows {
		t.Errorf("no rows: %v", err)
	}
	for _, bad := range []struct {
		class int
		proba []float64
	}{{2, []float64{0.5, 0.5}}, {0, []float64{1}}, {0, []float64{math.NaN(), 1}}, {0, []float64{-0.1, 1.1}}} {
		if err := a.Add(bad.class, bad.proba); err == nil {
			t.Errorf("Add(%d, %v) accepted", bad.class, bad.proba)
		}
	}
	// Only one class present: AUC undefined; a certain wrong answer is
	// clipped, not infinite.
	m := metricsOf(t, 2, []int{1, 1}, [][]float64{{1, 0}, {0, 1}})
	if m.ROCAUC != nil {
		t.Errorf("auc %v with one class", *m.ROCAUC)
	}
	if want := -math.Log(Eps/(1)) / 2; math.IsInf(m.LogLoss, 0) || math.Abs(m.LogLoss-want) > 1e-3 {
		t.Errorf("log loss %v, want about %v", m.LogLoss, want)
	}
}
