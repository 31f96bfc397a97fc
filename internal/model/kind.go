package model

import (
	"context"

	"github.com/refit-ml/refit/internal/dataset"
)

// Kind is one kind of model a spec can name ("kind": "linear"). Every kind
// fits the same way from the outside: on a version's train split, from an
// optional warm-start artifact of the same spec; it gives an Artifact that
// carries the kind's format, and Artifact.Predictor compiles any kind's
// artifact into a Predictor, which EvaluateEach scores on a test split.
// A new kind is a new file implementing Kind plus its row in kinds(), and
// it must pass the suite in internal/model/kindtest.
type Kind interface {
	// Name is the spec's "kind".
	Name() string
	// Format is the artifact format the kind writes.
	Format() string
	// Fit fits spec on train (training rows only; the scan gives the same
	// rows in the same order each time). warm, when not nil, is an
	// artifact of the same spec (a parent version's) to start from; a
	// kind without iterations ignores it.
	Fit(ctx context.Context, def *dataset.Definition, spec dataset.ModelSpec, train dataset.Scan, warm *Artifact) (*Artifact, FitInfo, error)

	// validate checks the kind's own part of an artifact (the common part
	// is checked already).
	validate(a *Artifact) error
	// compile readies the kind's part of a predictor.
	compile(a *Artifact, def *dataset.Definition, p *Predictor) error
}

// FitInfo is how a fit went.
type FitInfo struct {
	// Iterations of an iterative optimiser (0 for a closed-form fit).
	Iterations int
	// Converged is false when the optimiser stopped at its iteration limit.
	Converged bool
	// Warm: the fit started from the warm artifact.
	Warm bool
}

// kinds is the table of model kinds.
func kinds() []Kind { return []Kind{linearKind{}, logisticKind{}} }

// LookupKind returns the kind a spec names.
func LookupKind(name string) (Kind, bool) {
	for _, k := range kinds() {
		if k.Name() == name {
			return k, true
		}
	}
	return nil, false
}

func kindOfFormat(format string) (Kind, bool) {
	for _, k := range kinds() {
		if k.Format() == format {
			return k, true
		}
	}
	return nil, false
}

func formats() []string {
	var fs []string
	for _, k := range kinds() {
		fs = append(fs, k.Format())
	}
	return fs
}

// linearKind is least squares (fit.go): closed form, so no warm start.
type linearKind struct{}

func (linearKind) Name() string   { return dataset.KindLinear }
func (linearKind) Format() string { return FormatLinearV1 }

func (linearKind) Fit(ctx context.Context, def *dataset.Definition, spec dataset.ModelSpec, train dataset.Scan, _ *Artifact) (*Artifact, FitInfo, error) {
	a, err := Fit(ctx, def, spec, train)
	return a, FitInfo{Converged: err == nil}, err
}

func (linearKind) validate(a *Artifact) error { return a.validateLinear() }

func (linearKind) compile(a *Artifact, _ *dataset.Definition, p *Predictor) error {
	p.intercept, p.coef = a.Intercept, append([]float64(nil), a.Coef...)
	return nil
}
