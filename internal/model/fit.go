package model

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/linreg"
)

// ErrNoRows: there was nothing to fit or evaluate on.
var ErrNoRows = errors.New("model: no rows")

// How often (in rows) long scans look at the context.
const ctxEvery = 4096

// Fit fits spec on the rows of train, which must yield training rows only
// and give the same rows in the same order each time it is called: pass 1
// learns the transforms, pass 2 accumulates the least-squares system.
// A missing numeric value is NaN in Field.Num.
func Fit(ctx context.Context, def *dataset.Definition, spec dataset.ModelSpec, train dataset.Scan) (*Artifact, error) {
	arts, errs := FitEach(ctx, def, []dataset.ModelSpec{spec}, train)
	return arts[0], errs[0]
}

// FitEach fits every spec on the rows of train as Fit does, but reads the
// rows twice in all rather than twice per spec: reading and parsing staged
// rows costs more than fitting them. Each spec sees the same rows in the
// same order as alone, so its artifact is bit for bit the one Fit gives.
// It returns an artifact or an error per spec: an invalid spec, a value
// that spec cannot use or a degenerate system fails that spec only; an
// error of the scan itself fails every spec.
func FitEach(ctx context.Context, def *dataset.Definition, specs []dataset.ModelSpec, train dataset.Scan) ([]*Artifact, []error) {
	fits := make([]specFit, len(specs))
	for i, spec := range specs {
		fits[i].spec = spec
		fits[i].learners, fits[i].err = newLearners(def, spec)
	}
	scanErr := fitAll(ctx, def, fits, train)
	arts := make([]*Artifact, len(specs))
	errs := make([]error, len(specs))
	for i := range fits {
		err := fits[i].err
		if err == nil {
			err = scanErr
		}
		if err != nil {
			errs[i] = fmt.Errorf("fit %s/%s: %w", def.Name, specs[i].Name, err)
			continue
		}
		arts[i] = fits[i].art
	}
	return arts, errs
}

// specFit is one spec's progress through FitEach; once err is set the spec
// sees no more rows.
type specFit struct {
	spec     dataset.ModelSpec
	learners []learner
	terms    []term
	acc      *linreg.Accumulator
	art      *Artifact
	err      error
}

// fitAll runs both passes for the specs not failed yet; it returns the
// scan's error, which concerns them all.
func fitAll(ctx context.Context, def *dataset.Definition, fits []specFit, train dataset.Scan) error {
	live := func() bool {
		return slices.ContainsFunc(fits, func(f specFit) bool { return f.err == nil })
	}
	if !live() {
		return nil
	}
	width := len(def.Kept())

	n := 0
	err := train(func(r dataset.StagedRow) error {
		if err := checkRow(ctx, n, width, r); err != nil {
			return err
		}
		for i := range fits {
			f := &fits[i]
			if f.err != nil {
				continue
			}
			for j := range f.learners {
				if err := f.learners[j].observe(r.Fields); err != nil {
					f.err = fmt.Errorf("pass 1: row %d: %w", n, err)
					break
				}
			}
		}
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("pass 1: %w", err)
	}
	if n == 0 {
		return ErrNoRows
	}
	for i := range fits {
		if f := &fits[i]; f.err == nil {
			f.err = f.prepare(def, n)
		}
	}
	if !live() {
		return nil
	}

	var idx []int
	var val []float64
	m := 0
	err = train(func(r dataset.StagedRow) error {
		if err := checkRow(ctx, m, width, r); err != nil {
			return err
		}
		for i := range fits {
			f := &fits[i]
			if f.err != nil {
				continue
			}
			idx, val = idx[:0], val[:0]
			for k := range f.terms {
				t := &f.terms[k]
				if j, v, ok := t.encode(r.Fields[t.field]); ok {
					idx = append(idx, t.offset+j)
					val = append(val, v)
				}
			}
			f.acc.Add(idx, val, r.Target.Num)
		}
		m++
		return nil
	})
	if err != nil {
		return fmt.Errorf("pass 2: %w", err)
	}
	if m != n {
		return fmt.Errorf("the scan gave %d rows on pass 1 and %d on pass 2", n, m)
	}
	for i := range fits {
		f := &fits[i]
		if f.err != nil {
			continue
		}
		var sol linreg.Solution
		var err error
		if f.spec.L2.Auto {
			var lambda float64
			sol, lambda, err = f.acc.Moments().SolveGCV(linreg.GCVGrid())
			f.art.L2 = &lambda
		} else {
			sol, err = f.acc.Solve(f.spec.L2.Lambda)
		}
		if err != nil {
			f.err = err
			continue
		}
		f.art.Intercept, f.art.Coef = sol.Intercept, sol.Coef
	}
	return nil
}

// prepare turns what pass 1 learned into the artifact's transforms and
// readies pass 2.
func (f *specFit) prepare(def *dataset.Definition, rows int) error {
	ts := make([]Transform, len(f.learners))
	for i := range f.learners {
		ts[i] = f.learners[i].transform()
	}
	a := newArtifact(def, f.spec, ts, rows)
	terms, p, err := compile(def, a.Transforms)
	if err != nil {
		return err
	}
	f.art, f.terms, f.acc = a, terms, linreg.NewAccumulator(p)
	return nil
}

// newArtifact is an artifact of spec with its transforms, yet to be solved.
func newArtifact(def *dataset.Definition, spec dataset.ModelSpec, ts []Transform, rows int) *Artifact {
	spec.Features = slices.Clone(spec.Features)
	return &Artifact{
		Format:     FormatLinearV1,
		Dataset:    def.Name,
		Target:     def.Target.Name,
		Spec:       SpecRef{Name: spec.Name, Hash: spec.Hash(), Model: spec},
		Transforms: ts,
		TrainRows:  rows,
	}
}

func checkRow(ctx context.Context, i, width int, r dataset.StagedRow) error {
	if i%ctxEvery == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return checkFields(i, width, r)
}

// checkFields is checkRow without the context.
func checkFields(i, width int, r dataset.StagedRow) error {
	if len(r.Fields) != width {
		return fmt.Errorf("row %d: %d fields, the definition keeps %d", i, len(r.Fields), width)
	}
	if !finite(r.Target.Num) {
		return fmt.Errorf("row %d: target %g is not finite", i, r.Target.Num)
	}
	return nil
}

// learner gathers what pass 1 learns about one feature.
type learner struct {
	feature dataset.Feature
	field   int
	col     dataset.Column
	// numeric: Welford's running mean and sum of squared deviations.
	n, missing int
	mean, m2   float64
	// onehot: value counts.
	counts map[string]int
}

func newLearners(def *dataset.Definition, spec dataset.ModelSpec) ([]learner, error) {
	if spec.Kind != "linear" {
		return nil, fmt.Errorf("kind %q: want linear", spec.Kind)
	}
	if !spec.L2.Auto && (spec.L2.Lambda < 0 || !finite(spec.L2.Lambda)) {
		return nil, fmt.Errorf("l2 %g: want finite and non-negative, or auto", spec.L2.Lambda)
	}
	if len(spec.Features) == 0 {
		return nil, errors.New("no features")
	}
	ls := make([]learner, len(spec.Features))
	for i, f := range spec.Features {
		field, ok := def.Index(f.Column)
		if !ok {
			return nil, fmt.Errorf("feature column %q is not a kept column", f.Column)
		}
		col := def.Kept()[field]
		switch f.Transform {
		case dataset.TransformNumeric:
			if !dataset.IsNumeric(col) {
				return nil, fmt.Errorf("feature %q: numeric transform of a %s column", f.Column, col.Type)
			}
		case dataset.TransformOneHot:
			if f.MaxCategories < 0 {
				return nil, fmt.Errorf("feature %q: negative max_categories", f.Column)
			}
		case dataset.TransformHashed:
			if f.Buckets <= 0 || f.Buckets > 1<<16 {
				return nil, fmt.Errorf("feature %q: buckets %d, want 1..65536", f.Column, f.Buckets)
			}
		default:
			return nil, fmt.Errorf("feature %q: unknown transform %q", f.Column, f.Transform)
		}
		ls[i] = learner{feature: f, field: field, col: col}
		if f.Transform == dataset.TransformOneHot {
			ls[i].counts = map[string]int{}
		}
	}
	return ls, nil
}

func (l *learner) observe(fields []dataset.Field) error {
	f := fields[l.field]
	switch l.feature.Transform {
	case dataset.TransformNumeric:
		x := f.Num
		switch {
		case math.IsNaN(x):
			l.missing++
		case math.IsInf(x, 0):
			return fmt.Errorf("column %q: value is infinite", l.col.Name)
		default:
			l.n++
			d := x - l.mean
			l.mean += d / float64(l.n)
			l.m2 += d * (x - l.mean)
		}
	case dataset.TransformOneHot:
		l.counts[dataset.Format(l.col, f)]++
	}
	return nil
}

func (l *learner) transform() Transform {
	t := Transform{Column: l.feature.Column, Transform: l.feature.Transform}
	switch l.feature.Transform {
	case dataset.TransformNumeric:
		std := 0.0
		if l.n > 0 {
			std = math.Sqrt(l.m2 / float64(l.n))
		}
		t.Numeric = &Numeric{Mean: l.mean, Std: std, Impute: l.mean, Missing: l.missing}
	case dataset.TransformOneHot:
		t.OneHot = vocabulary(l.counts, maxCategories(l.feature))
	case dataset.TransformHashed:
		t.Hashed = &Hashed{Buckets: l.feature.Buckets}
	}
	return t
}

// vocabulary keeps the limit most frequent values, ties broken by value, so
// that map order never shows.
func vocabulary(counts map[string]int, limit int) *OneHot {
	type count struct {
		v string
		n int
	}
	cs := make([]count, 0, len(counts))
	for v, n := range counts {
		cs = append(cs, count{v, n})
	}
	slices.SortFunc(cs, func(a, b count) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	cs = cs[:min(len(cs), limit)]
	o := &OneHot{Reference: cs[0].v, Levels: make([]string, 0, len(cs)-1)}
	for _, c := range cs[1:] {
		o.Levels = append(o.Levels, c.v)
	}
	return o
}
