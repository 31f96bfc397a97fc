// Package model turns staged rows into a fitted linear model (an Artifact),
// and an artifact into a fast Predictor; Evaluate scores a predictor on
// test rows.
package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/text"
)

// Artifact formats: FormatLinearV1 is the layout below with Intercept and
// Coef; FormatLogisticV1 has Logistic instead (and text transforms).
const (
	FormatLinearV1   = "refit.linear.v1"
	FormatLogisticV1 = "refit.logistic.v1"
)

// DefaultMaxCategories applies when a one-hot feature sets none.
const DefaultMaxCategories = 50

// ErrInvalidArtifact marks an artifact that can never be used as it is.
var ErrInvalidArtifact = errors.New("model: invalid artifact")

// Artifact is a fitted model, self-contained: with the dataset definition
// it is all a predictor needs. It holds no timestamps, so refitting on the
// same rows gives the same bytes and checksum.
type Artifact struct {
	Format     string      `json:"format"`
	Dataset    string      `json:"dataset"`
	Spec       SpecRef     `json:"spec"`
	Target     string      `json:"target"`
	Transforms []Transform `json:"features"`
	Intercept  float64     `json:"intercept"`
	// Coef has one entry per feature: the transforms' features in order.
	Coef      []float64 `json:"coef"`
	TrainRows int       `json:"train_rows"`
	// L2 is the penalty generalised cross-validation chose when the spec
	// says "l2": "auto" (absent otherwise: the spec's number applies).
	L2 *float64 `json:"l2,omitempty"`
	// Logistic is a classifier's fitted part (FormatLogisticV1 only).
	Logistic *Logistic `json:"logistic,omitempty"`
}

// SpecRef is the model spec the artifact was fitted from.
type SpecRef struct {
	Name  string            `json:"name"`
	Hash  string            `json:"hash"`
	Model dataset.ModelSpec `json:"model"`
}

// Marshal encodes the artifact. The encoding is stable: the same artifact
// always gives the same bytes.
func (a *Artifact) Marshal() ([]byte, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("model: marshal artifact: %w", err)
	}
	return b, nil
}

// Checksum identifies artifact bytes: "sha256:" and the hex digest.
func Checksum(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Unmarshal decodes and validates an artifact. Errors wrap
// ErrInvalidArtifact.
func Unmarshal(b []byte) (*Artifact, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var a Artifact
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArtifact, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing data after the artifact", ErrInvalidArtifact)
	}
	if err := a.check(); err != nil {
		return nil, err
	}
	return &a, nil
}

func (a *Artifact) check() error {
	if err := a.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArtifact, err)
	}
	return nil
}

func (a *Artifact) validate() error {
	k, ok := kindOfFormat(a.Format)
	if !ok {
		return fmt.Errorf("format %q, want one of %s", a.Format, strings.Join(formats(), ", "))
	}
	if a.Spec.Model.Kind != k.Name() {
		return fmt.Errorf("format %s is for kind %s, the spec's kind is %q", a.Format, k.Name(), a.Spec.Model.Kind)
	}
	if err := a.validateCommon(); err != nil {
		return err
	}
	return k.validate(a)
}

// validateCommon checks what every kind's artifact has.
func (a *Artifact) validateCommon() error {
	if a.Dataset == "" || a.Target == "" {
		return errors.New("dataset or target name missing")
	}
	spec := a.Spec.Model
	if a.Spec.Name != spec.Name || a.Spec.Hash != spec.Hash() {
		return fmt.Errorf("spec name/hash %s/%s do not match the spec (%s/%s)", a.Spec.Name, a.Spec.Hash, spec.Name, spec.Hash())
	}
	if len(a.Transforms) != len(spec.Features) {
		return fmt.Errorf("%d transforms for %d spec features", len(a.Transforms), len(spec.Features))
	}
	width := 0
	for i, tr := range a.Transforms {
		if err := checkTransform(tr, spec.Features[i]); err != nil {
			return fmt.Errorf("feature %d (%s): %w", i, tr.Column, err)
		}
		width += tr.Width()
	}
	if a.TrainRows <= 0 {
		return fmt.Errorf("train_rows %d", a.TrainRows)
	}
	return nil
}

// validateLinear checks a linear artifact's own part.
func (a *Artifact) validateLinear() error {
	spec := a.Spec.Model
	width := 0
	for _, tr := range a.Transforms {
		width += tr.Width()
	}
	if a.Logistic != nil {
		return errors.New("a linear artifact has no logistic part")
	}
	for _, tr := range a.Transforms {
		if tr.Text != nil {
			return fmt.Errorf("feature %s: text features are for logistic models", tr.Column)
		}
	}
	if len(a.Coef) != width {
		return fmt.Errorf("%d coefficients for %d features", len(a.Coef), width)
	}
	if !finite(a.Intercept) || slices.ContainsFunc(a.Coef, func(c float64) bool { return !finite(c) }) {
		return errors.New("non-finite coefficient")
	}
	if spec.L2.Auto != (a.L2 != nil) {
		return errors.New("l2: a chosen penalty is recorded exactly when the spec says auto")
	}
	if a.L2 != nil && (*a.L2 < 0 || !finite(*a.L2)) {
		return fmt.Errorf("l2 %g: want finite and non-negative", *a.L2)
	}
	return nil
}

func checkTransform(tr Transform, f dataset.Feature) error {
	if tr.Column != f.Column || tr.Transform != f.Transform {
		return fmt.Errorf("%s %s does not match the spec's %s %s", tr.Column, tr.Transform, f.Column, f.Transform)
	}
	set := 0
	for _, p := range []bool{tr.Numeric != nil, tr.OneHot != nil, tr.Hashed != nil, tr.Text != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("want exactly one parameter set, got %d", set)
	}
	switch f.Transform {
	case dataset.TransformNumeric:
		n := tr.Numeric
		if n == nil {
			return errors.New("numeric parameters missing")
		}
		if !finite(n.Mean) || !finite(n.Std) || n.Std < 0 || !finite(n.Impute) || n.Missing < 0 {
			return errors.New("bad numeric parameters")
		}
	case dataset.TransformOneHot:
		o := tr.OneHot
		if o == nil {
			return errors.New("onehot parameters missing")
		}
		if len(o.Levels)+1 > maxCategories(f) {
			return fmt.Errorf("%d levels, more than max_categories %d", len(o.Levels)+1, maxCategories(f))
		}
		seen := map[string]bool{o.Reference: true}
		for _, v := range o.Levels {
			if seen[v] {
				return fmt.Errorf("level %q repeated", v)
			}
			seen[v] = true
		}
	case dataset.TransformHashed:
		h := tr.Hashed
		if h == nil {
			return errors.New("hashed parameters missing")
		}
		if h.Buckets != f.Buckets || h.Buckets <= 0 || h.Buckets > 1<<16 {
			return fmt.Errorf("buckets %d, spec says %d (1..65536)", h.Buckets, f.Buckets)
		}
	case dataset.TransformText:
		v := tr.Text
		if v == nil {
			return errors.New("text parameters missing")
		}
		want := textConfig(f)
		if v.NGrams != want.NGrams || v.Buckets != want.Buckets || v.Weighting != want.Weighting {
			return fmt.Errorf("vectoriser ngrams %v, buckets %d, weighting %s do not match the spec's %v, %d, %s",
				v.NGrams, v.Buckets, v.Weighting, want.NGrams, want.Buckets, want.Weighting)
		}
		if v.Width() == 0 {
			return errors.New("text vectoriser has no features")
		}
	default:
		return fmt.Errorf("unknown transform %q", f.Transform)
	}
	return nil
}

func maxCategories(f dataset.Feature) int {
	if f.MaxCategories > 0 {
		return f.MaxCategories
	}
	return DefaultMaxCategories
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// Features writes r's dense feature vector (len(a.Coef) values) into dst,
// reusing its storage, and returns it. It follows the transforms' text
// definitions directly, independently of the compiled Predictor, so tests
// can build a design matrix with it. It panics if def lacks a column the
// artifact uses (Predictor reports that as an error).
func (a *Artifact) Features(def *dataset.Definition, r dataset.Row, dst []float64) []float64 {
	dst = slices.Grow(dst[:0], len(a.Coef))[:len(a.Coef)]
	clear(dst)
	off := 0
	for _, tr := range a.Transforms {
		field, ok := def.Index(tr.Column)
		if !ok {
			panic(fmt.Sprintf("model: column %q is not a kept column of dataset %q", tr.Column, def.Name))
		}
		col, f := def.Kept()[field], r.Fields[field]
		switch {
		case tr.Numeric != nil:
			dst[off] = tr.Numeric.apply(f.Num)
		case tr.OneHot != nil:
			if v := dataset.Format(col, f); v != tr.OneHot.Reference {
				j := slices.Index(tr.OneHot.Levels, v)
				if j < 0 {
					j = len(tr.OneHot.Levels)
				}
				dst[off+j] = 1
			}
		case tr.Hashed != nil:
			b, sign := hashBucket(fnv1a(dataset.Format(col, f)), tr.Hashed.Buckets)
			dst[off+b] = sign
		case tr.Text != nil:
			idx, val := tr.Text.Encode(f.Str, &text.Buffer{})
			for k, j := range idx {
				dst[off+int(j)] = val[k]
			}
		}
		off += tr.Width()
	}
	return dst
}
