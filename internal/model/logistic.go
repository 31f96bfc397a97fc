package model

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/logreg"
	"github.com/refit-ml/refit/internal/text"
)

// Logistic is a classifier artifact's fitted part: the classes (the
// target's choices when fitted), the weights over the transforms' features
// in order, and how the fit went.
type Logistic struct {
	Classes []string      `json:"classes"`
	Model   *logreg.Model `json:"model"`
	// L2 is the penalty fitted with (the spec's, or the default 1).
	L2         float64 `json:"l2"`
	Iterations int     `json:"iterations"`
	Converged  bool    `json:"converged"`
	// WarmStart is the checksum of the artifact the fit started from
	// ("" for a cold start): with the rows and the spec, it decides the
	// result.
	WarmStart string `json:"warm_start,omitempty"`
}

// logisticKind is L2-regularised logistic regression on sparse features
// (internal/logreg): text features through internal/text, numeric, one-hot
// and hashed ones as linear models encode them.
type logisticKind struct{}

func (logisticKind) Name() string   { return dataset.KindLogistic }
func (logisticKind) Format() string { return FormatLogisticV1 }

// textConfig is what a spec's text feature asks of internal/text, with the
// defaults filled in as a fitted vectoriser records them.
func textConfig(f dataset.Feature) text.Config {
	c := text.Config{NGrams: [2]int{1, 1}, Buckets: f.Buckets, MaxFeatures: f.MaxFeatures, MinDF: f.MinDF, Weighting: f.Weighting}
	if len(f.NGrams) == 2 {
		c.NGrams = [2]int{f.NGrams[0], f.NGrams[1]}
	}
	if c.Weighting == "" {
		c.Weighting = text.TFIDF
	}
	return c
}

// logisticFeature is one spec feature's pass-1 learner: a text learner or
// one of the linear model's.
type logisticFeature struct {
	text  *text.Learner
	field int
	other *learner
}

func (logisticKind) Fit(ctx context.Context, def *dataset.Definition, spec dataset.ModelSpec, train dataset.Scan, warm *Artifact) (*Artifact, FitInfo, error) {
	a, info, err := fitLogistic(ctx, def, spec, train, warm)
	if err != nil {
		return nil, FitInfo{}, fmt.Errorf("fit %s/%s: %w", def.Name, spec.Name, err)
	}
	return a, info, nil
}

func fitLogistic(ctx context.Context, def *dataset.Definition, spec dataset.ModelSpec, train dataset.Scan, warm *Artifact) (*Artifact, FitInfo, error) {
	if spec.Kind != dataset.KindLogistic {
		return nil, FitInfo{}, fmt.Errorf("kind %q: want %s", spec.Kind, dataset.KindLogistic)
	}
	classes := def.Classes()
	if len(classes) < 2 {
		return nil, FitInfo{}, fmt.Errorf("dataset %q is not a classification dataset with two or more classes", def.Name)
	}
	l2 := spec.LogisticL2()
	if spec.L2.Auto || l2 <= 0 || !finite(l2) {
		return nil, FitInfo{}, errors.New("l2: want a positive number for logistic")
	}
	feats, err := newLogisticFeatures(def, spec)
	if err != nil {
		return nil, FitInfo{}, err
	}
	width := len(def.Kept())

	// Pass 1: vocabularies, IDF, numeric moments, one-hot levels.
	n := 0
	err = train(func(r dataset.StagedRow) error {
		if err := checkClassRow(ctx, def, n, width, r); err != nil {
			return err
		}
		for _, f := range feats {
			if f.text != nil {
				f.text.Observe(r.Fields[f.field].Str)
			} else if err := f.other.observe(r.Fields); err != nil {
				return fmt.Errorf("row %d: %w", n, err)
			}
		}
		n++
		return nil
	})
	if err != nil {
		return nil, FitInfo{}, fmt.Errorf("pass 1: %w", err)
	}
	if n == 0 {
		return nil, FitInfo{}, ErrNoRows
	}
	ts := make([]Transform, len(feats))
	nnz := 0
	for i, f := range feats {
		if f.text == nil {
			ts[i] = f.other.transform()
			nnz += n
			continue
		}
		v, err := f.text.Fit()
		if err != nil {
			return nil, FitInfo{}, fmt.Errorf("feature %q: %w", spec.Features[i].Column, err)
		}
		ts[i] = Transform{Column: spec.Features[i].Column, Transform: dataset.TransformText, Text: v}
		nnz += f.text.NGrams()
	}
	a := newArtifact(def, spec, ts, n)
	a.Format = FormatLogisticV1
	terms, features, err := compile(def, a.Transforms)
	if err != nil {
		return nil, FitInfo{}, err
	}

	// Pass 2: the rows as CSR.
	data, err := logreg.NewData(features, len(classes))
	if err != nil {
		return nil, FitInfo{}, err
	}
	data.Grow(n, nnz)
	enc := &Predictor{terms: terms}
	var s rowScratch
	m := 0
	err = train(func(r dataset.StagedRow) error {
		if err := checkClassRow(ctx, def, m, width, r); err != nil {
			return err
		}
		class, _ := def.ClassIndex(r.Target)
		idx, val := enc.encode(r.Row, &s)
		if err := data.Add(idx, val, class); err != nil {
			return fmt.Errorf("row %d: %w", m, err)
		}
		m++
		return nil
	})
	if err != nil {
		return nil, FitInfo{}, fmt.Errorf("pass 2: %w", err)
	}
	if m != n {
		return nil, FitInfo{}, fmt.Errorf("the scan gave %d rows on pass 1 and %d on pass 2", n, m)
	}

	start, warmSum, err := warmStart(a, warm, classes)
	if err != nil {
		return nil, FitInfo{}, err
	}
	res, err := logreg.Fit(ctx, data, logreg.Config{L2: l2}, start)
	if err != nil {
		return nil, FitInfo{}, err
	}
	a.Logistic = &Logistic{Classes: classes, Model: res.Model, L2: l2, Iterations: res.Iterations, Converged: res.Converged, WarmStart: warmSum}
	return a, FitInfo{Iterations: res.Iterations, Converged: res.Converged, Warm: start != nil}, nil
}

func newLogisticFeatures(def *dataset.Definition, spec dataset.ModelSpec) ([]logisticFeature, error) {
	if len(spec.Features) == 0 {
		return nil, errors.New("no features")
	}
	feats := make([]logisticFeature, len(spec.Features))
	var others []dataset.Feature
	for i, f := range spec.Features {
		field, ok := def.Index(f.Column)
		if !ok {
			return nil, fmt.Errorf("feature column %q is not a kept column", f.Column)
		}
		feats[i].field = field
		if f.Transform != dataset.TransformText {
			others = append(others, f)
			continue
		}
		if col := def.Kept()[field]; col.Type != dataset.TypeText {
			return nil, fmt.Errorf("feature %q: text transform of a %s column", f.Column, col.Type)
		}
		l, err := text.NewLearner(textConfig(f))
		if err != nil {
			return nil, fmt.Errorf("feature %q: %w", f.Column, err)
		}
		feats[i].text = l
	}
	// The other transforms learn as a linear model's do.
	ls, err := newLearners(def, dataset.ModelSpec{Kind: dataset.KindLinear, Features: others})
	if len(others) > 0 && err != nil {
		return nil, err
	}
	k := 0
	for i := range feats {
		if feats[i].text == nil {
			feats[i].other = &ls[k]
			k++
		}
	}
	return feats, nil
}

func checkClassRow(ctx context.Context, def *dataset.Definition, i, width int, r dataset.StagedRow) error {
	if i%ctxEvery == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if len(r.Fields) != width {
		return fmt.Errorf("row %d: %d fields, the definition keeps %d", i, len(r.Fields), width)
	}
	if _, ok := def.ClassIndex(r.Target); !ok {
		return fmt.Errorf("row %d: label %q is not one of the classes %v", i, r.Target.Str, def.Target.Choices)
	}
	return nil
}

// warmStart maps a parent artifact's weights onto a's features: text terms
// by term (Vectorizer.Remap), one-hot levels by value, numeric and hashed
// features one to one. A parent of another spec or other classes gives no
// warm start (nil), not an error: it is an optimisation only.
func warmStart(a, warm *Artifact, classes []string) (*logreg.Model, string, error) {
	if warm == nil || warm.Logistic == nil || warm.Spec.Hash != a.Spec.Hash || warm.Dataset != a.Dataset ||
		!slices.Equal(warm.Logistic.Classes, classes) || len(warm.Transforms) != len(a.Transforms) {
		return nil, "", nil
	}
	if err := warm.check(); err != nil {
		return nil, "", fmt.Errorf("warm start: %w", err)
	}
	var from []int32
	oldOff := 0
	for i, tr := range a.Transforms {
		old := warm.Transforms[i]
		switch {
		case tr.Text != nil:
			m, err := tr.Text.Remap(old.Text)
			if err != nil {
				return nil, "", fmt.Errorf("warm start: feature %s: %w", tr.Column, err)
			}
			for _, j := range m {
				if j >= 0 {
					j += int32(oldOff)
				}
				from = append(from, j)
			}
		case tr.OneHot != nil:
			for _, v := range tr.OneHot.Levels {
				j := slices.Index(old.OneHot.Levels, v)
				if j >= 0 {
					j += oldOff
				}
				from = append(from, int32(j))
			}
			from = append(from, int32(oldOff+len(old.OneHot.Levels))) // "other"
		default: // numeric, hashed: the same features
			for j := range tr.Width() {
				from = append(from, int32(oldOff+j))
			}
		}
		oldOff += old.Width()
	}
	m, err := logreg.Warm(warm.Logistic.Model, from)
	if err != nil {
		return nil, "", fmt.Errorf("warm start: %w", err)
	}
	b, err := warm.Marshal()
	if err != nil {
		return nil, "", err
	}
	return m, Checksum(b), nil
}

func (logisticKind) validate(a *Artifact) error {
	l := a.Logistic
	if l == nil || l.Model == nil {
		return errors.New("logistic part missing")
	}
	if len(a.Coef) != 0 || a.Intercept != 0 || a.L2 != nil {
		return errors.New("a logistic artifact has no linear coefficients")
	}
	if len(l.Classes) < 2 || len(l.Classes) != l.Model.Classes {
		return fmt.Errorf("%d classes for a model of %d", len(l.Classes), l.Model.Classes)
	}
	width := 0
	for _, tr := range a.Transforms {
		width += tr.Width()
	}
	if l.Model.Features != width {
		return fmt.Errorf("model of %d features for transforms of %d", l.Model.Features, width)
	}
	if err := l.Model.Validate(); err != nil {
		return err
	}
	if l.L2 <= 0 || !finite(l.L2) || l.Iterations < 0 {
		return fmt.Errorf("l2 %g, iterations %d", l.L2, l.Iterations)
	}
	return nil
}

func (logisticKind) compile(a *Artifact, def *dataset.Definition, p *Predictor) error {
	if !slices.Equal(a.Logistic.Classes, def.Classes()) {
		return fmt.Errorf("artifact classes %v, dataset %q's are %v", a.Logistic.Classes, def.Name, def.Classes())
	}
	p.cls = &classifier{classes: slices.Clone(a.Logistic.Classes), model: a.Logistic.Model}
	return nil
}
