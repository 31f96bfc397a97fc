package model

import (
	"fmt"
	"slices"
	"sync"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/logreg"
	"github.com/refit-ml/refit/internal/text"
)

// Predictor is an artifact of any kind compiled against a dataset
// definition. It is safe for concurrent use.
//
// A regression model answers Predict. A classifier (Classes() not nil)
// answers PredictClass: the index of the predicted class in Classes() and,
// in probs, each class's probability.
type Predictor struct {
	intercept float64
	coef      []float64
	terms     []term
	columns   []string
	width     int // fields in a row of the definition
	cls       *classifier
}

// classifier is a Predictor's logistic part.
type classifier struct {
	classes []string
	model   *logreg.Model
	scratch sync.Pool // *rowScratch
}

// rowScratch is one goroutine's encoding buffers.
type rowScratch struct {
	text  text.Buffer
	idx   []int32
	val   []float64
	proba []float64
}

// Predictor compiles the artifact for rows of def.
func (a *Artifact) Predictor(def *dataset.Definition) (*Predictor, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	if def.Name != a.Dataset {
		return nil, fmt.Errorf("model: artifact is for dataset %q, not %q", a.Dataset, def.Name)
	}
	if def.Target.Name != a.Target {
		return nil, fmt.Errorf("model: artifact predicts %q, dataset %q's target is %q", a.Target, def.Name, def.Target.Name)
	}
	terms, _, err := compile(def, a.Transforms)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	p := &Predictor{terms: terms, width: len(def.Kept())}
	for _, tr := range a.Transforms {
		if !slices.Contains(p.columns, tr.Column) {
			p.columns = append(p.columns, tr.Column)
		}
	}
	k, _ := kindOfFormat(a.Format) // check() found it
	if err := k.compile(a, def, p); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	return p, nil
}

// Predict returns a regression model's prediction for r, a row of the
// definition the predictor was compiled for. It does not allocate, and
// equals the intercept plus Artifact.Features · Coef summed in feature
// order. For a classifier it returns the predicted class's index (as
// PredictClass does).
func (p *Predictor) Predict(r dataset.Row) float64 {
	if p.cls != nil {
		return float64(p.PredictClass(r, nil))
	}
	s := p.intercept
	for i := range p.terms {
		t := &p.terms[i]
		if j, v, ok := t.encode(r.Fields[t.field]); ok {
			s += p.coef[t.offset+j] * v
		}
	}
	return s
}

// PredictClass returns a classifier's predicted class for r (an index in
// Classes(): the most probable, the lowest on a tie) and writes each
// class's probability into probs when it has room for len(Classes())
// values (nil: not wanted). It does not allocate once warm. A regression
// model returns -1.
func (p *Predictor) PredictClass(r dataset.Row, probs []float64) int {
	c := p.cls
	if c == nil {
		return -1
	}
	s, _ := c.scratch.Get().(*rowScratch)
	if s == nil {
		s = &rowScratch{}
	}
	idx, val := p.encode(r, s)
	dst := s.proba
	if len(probs) >= len(c.classes) {
		dst = probs
	}
	dst = c.model.Proba(idx, val, dst)
	if len(probs) < len(c.classes) {
		s.proba = dst
	}
	class := logreg.Predict(dst[:len(c.classes)])
	c.scratch.Put(s)
	return class
}

// encode gives r's sparse feature row (feature order within each
// transform, transforms in order).
func (p *Predictor) encode(r dataset.Row, s *rowScratch) ([]int32, []float64) {
	s.idx, s.val = s.idx[:0], s.val[:0]
	for i := range p.terms {
		t := &p.terms[i]
		f := r.Fields[t.field]
		if t.text != nil {
			idx, val := t.text.Encode(f.Str, &s.text)
			for k, j := range idx {
				s.idx = append(s.idx, int32(t.offset)+j)
				s.val = append(s.val, val[k])
			}
			continue
		}
		if j, v, ok := t.encode(f); ok && v != 0 {
			s.idx = append(s.idx, int32(t.offset+j))
			s.val = append(s.val, v)
		}
	}
	return s.idx, s.val
}

// Classes are a classifier's classes, in the order of PredictClass's
// indexes and probabilities (the dataset's target choices); nil for a
// regression model.
func (p *Predictor) Classes() []string {
	if p.cls == nil {
		return nil
	}
	return slices.Clone(p.cls.classes)
}

// Columns lists the columns the model reads, in the order of first use.
func (p *Predictor) Columns() []string { return slices.Clone(p.columns) }
