package model

import (
	"fmt"
	"slices"

	"github.com/refit-ml/refit/internal/dataset"
)

// Predictor is an artifact compiled against a dataset definition. It is
// safe for concurrent use.
type Predictor struct {
	intercept float64
	coef      []float64
	terms     []term
	columns   []string
	width     int // fields in a row of the definition
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
	p := &Predictor{intercept: a.Intercept, coef: slices.Clone(a.Coef), terms: terms, width: len(def.Kept())}
	for _, tr := range a.Transforms {
		if !slices.Contains(p.columns, tr.Column) {
			p.columns = append(p.columns, tr.Column)
		}
	}
	return p, nil
}

// Predict returns the model's prediction for r, a row of the definition the
// predictor was compiled for. It does not allocate, and equals the
// intercept plus Artifact.Features · Coef summed in feature order.
func (p *Predictor) Predict(r dataset.Row) float64 {
	s := p.intercept
	for i := range p.terms {
		t := &p.terms[i]
		if j, v, ok := t.encode(r.Fields[t.field]); ok {
			s += p.coef[t.offset+j] * v
		}
	}
	return s
}

// Columns lists the columns the model reads, in the order of first use.
func (p *Predictor) Columns() []string { return slices.Clone(p.columns) }
