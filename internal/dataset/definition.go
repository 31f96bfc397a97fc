// Package dataset holds what Refit knows about a dataset: its definition
// (columns, target, constraints, batching, model specs), the validation of
// one row against it, and the CSV formats rows travel in.
package dataset

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
)

// Column types.
const (
	TypeFloat  = "float"
	TypeInt    = "int"
	TypeBool   = "bool" // 0/1, true/false
	TypeString = "string"
	TypeText   = "text" // free UTF-8 text (a review), for text features
)

// DefaultTextMaxLength bounds a text column's value, in bytes, when the
// column sets no max_length.
const DefaultTextMaxLength = 100_000

// Tasks.
const (
	TaskRegression     = "regression"
	TaskClassification = "classification"
)

// Definition describes one dataset. Datasets are data, not code: one JSON
// file each (schemas/datasets/*.json, or REFIT_DATASETS_DIR).
type Definition struct {
	Name         string      `json:"name"`
	Description  string      `json:"description,omitempty"`
	Task         string      `json:"task"`
	Target       Column      `json:"target"`
	Columns      []Column    `json:"columns"`
	BatchSize    int         `json:"batch_size"`
	TestFraction float64     `json:"test_fraction"`
	Promotion    Promotion   `json:"promotion"`
	Models       []ModelSpec `json:"models"`

	kept    []Column
	index   map[string]int // kept column name -> position in kept
	all     map[string]Column
	pattern map[string]*regexp.Regexp
}

// Column is one CSV column (or the target).
type Column struct {
	Name string   `json:"name"`
	Type string   `json:"type"`
	Min  *float64 `json:"min,omitempty"`
	Max  *float64 `json:"max,omitempty"`
	// ExclusiveMin rejects values equal to Min (a price of 0 is not a price).
	ExclusiveMin bool     `json:"exclusive_min,omitempty"`
	Choices      []string `json:"choices,omitempty"`
	Pattern      string   `json:"pattern,omitempty"`
	MaxLength    int      `json:"max_length,omitempty"`
	// Optional columns may be empty; others must have a value.
	Optional bool `json:"optional,omitempty"`
	// Drop: accepted in input, then discarded (e.g. a timestamp).
	Drop        bool   `json:"drop,omitempty"`
	Description string `json:"description,omitempty"`
}

// Promotion holds the rules for promoting a challenger.
type Promotion struct {
	// PrimaryMetric compares challenger and champion. Regression: rmse,
	// mae (lower is better) or r2 (higher; default rmse). Classification:
	// accuracy (default), f1_macro, roc_auc (two classes; higher is
	// better) or log_loss (lower).
	PrimaryMetric string `json:"primary_metric"`
	// MinImprovement: how much better the challenger must be, in the
	// metric's units (0: any improvement).
	MinImprovement float64 `json:"min_improvement"`
	// Min and Max are absolute bounds per metric (rmse, mae, r2) on the
	// challenger's scores: a challenger outside them is rejected whatever
	// the champion does, e.g. {"r2": 0} refuses a model worse than the mean.
	Min map[string]float64 `json:"min,omitempty"`
	Max map[string]float64 `json:"max,omitempty"`
	// AutoPromote (default true): false records a winning challenger as
	// awaiting approval; a person promotes it (POST .../promotions).
	AutoPromote *bool `json:"auto_promote,omitempty"`
}

// Metrics a promotion rule can name, per task.
func regressionMetrics() []string     { return []string{"rmse", "mae", "r2"} }
func classificationMetrics() []string { return []string{"accuracy", "f1_macro", "log_loss", "roc_auc"} }

// promotionMetrics are every metric a rule can name (the task decides
// which apply).
func promotionMetrics() []string { return append(regressionMetrics(), classificationMetrics()...) }

// LowerIsBetterMetric reports whether smaller values of metric win.
func LowerIsBetterMetric(metric string) bool {
	return metric == "rmse" || metric == "mae" || metric == "log_loss"
}

// Auto reports whether a winning challenger is promoted without approval.
func (p Promotion) Auto() bool { return p.AutoPromote == nil || *p.AutoPromote }

// Bounds returns the first bound the scores break ("" when within all),
// naming the bound, e.g. "r2 -0.12 is below promotion.min.r2 = 0".
// score returns a metric's value by name.
func (p Promotion) Bounds(score func(metric string) float64) string {
	for _, m := range promotionMetrics() {
		if lo, ok := p.Min[m]; ok && score(m) < lo {
			return fmt.Sprintf("%s %.6g is below promotion.min.%s = %g", m, score(m), m, lo)
		}
		if hi, ok := p.Max[m]; ok && score(m) > hi {
			return fmt.Sprintf("%s %.6g is above promotion.max.%s = %g", m, score(m), m, hi)
		}
	}
	return ""
}

func (p Promotion) validate(metrics []string) error {
	want := strings.Join(metrics, ", ")
	for _, b := range []struct {
		name   string
		bounds map[string]float64
	}{{"min", p.Min}, {"max", p.Max}} {
		for m, v := range b.bounds {
			if !slices.Contains(metrics, m) {
				return fmt.Errorf("promotion.%s.%s: unknown metric (want one of %s)", b.name, m, want)
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("promotion.%s.%s must be a finite number", b.name, m)
			}
		}
	}
	for m, lo := range p.Min {
		if hi, ok := p.Max[m]; ok && lo > hi {
			return fmt.Errorf("promotion.min.%s = %g is above promotion.max.%s = %g: no model could pass", m, lo, m, hi)
		}
	}
	return nil
}

// ModelSpec is one model to fit on every version of the dataset.
type ModelSpec struct {
	Name     string    `json:"name"`
	Kind     string    `json:"kind"` // KindLinear or KindLogistic
	Features []Feature `json:"features"`
	// L2 adds a ridge penalty (0: ordinary least squares), or "auto".
	// For logistic it is λ of the L2 penalty (scikit-learn's C = 1/λ),
	// default 1; "auto" is for linear only.
	L2          Ridge  `json:"l2,omitzero"`
	Description string `json:"description,omitempty"`
}

// Ridge is a spec's "l2": a penalty λ, or "auto" (λ chosen per fit by
// generalised cross-validation). It encodes as the number, so specs
// written before "auto" keep their hash.
type Ridge struct {
	Lambda float64
	Auto   bool
}

// IsZero: no penalty (ordinary least squares).
func (r Ridge) IsZero() bool { return !r.Auto && r.Lambda == 0 }

// MarshalJSON writes "auto" or the number.
func (r Ridge) MarshalJSON() ([]byte, error) {
	if r.Auto {
		return []byte(`"auto"`), nil
	}
	return json.Marshal(r.Lambda)
}

// UnmarshalJSON reads "auto" or a number.
func (r *Ridge) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		if s != "auto" {
			return fmt.Errorf("l2 %q: want a number or \"auto\"", s)
		}
		*r = Ridge{Auto: true}
		return nil
	}
	var x float64
	if err := json.Unmarshal(b, &x); err != nil {
		return fmt.Errorf("l2: want a number or \"auto\": %w", err)
	}
	*r = Ridge{Lambda: x}
	return nil
}

// Model kinds.
const (
	KindLinear   = "linear"   // least squares (regression)
	KindLogistic = "logistic" // L2 logistic regression (classification)
)

// DefaultLogisticL2 is a logistic spec's λ when it sets none
// (scikit-learn's C = 1).
const DefaultLogisticL2 = 1.0

// LogisticL2 is the penalty a logistic spec fits with.
func (s ModelSpec) LogisticL2() float64 {
	if s.L2.Lambda == 0 {
		return DefaultLogisticL2
	}
	return s.L2.Lambda
}

// Feature transforms.
const (
	TransformNumeric = "numeric"
	TransformOneHot  = "onehot"
	TransformHashed  = "hashed"
	TransformText    = "text" // a text column's words (internal/text)
)

// Text weightings (internal/text).
const (
	WeightingTFIDF  = "tfidf"
	WeightingCount  = "count"
	WeightingBinary = "binary"
)

// Limits of a text feature (internal/text has the same).
const (
	MaxTextNGram   = 5
	MaxTextBuckets = 1 << 24
)

// Feature is one input column and how it becomes model features.
type Feature struct {
	Column    string `json:"column"`
	Transform string `json:"transform"`
	// Buckets for hashed features, and for text features with the hashing
	// trick.
	Buckets int `json:"buckets,omitempty"`
	// Text features: word n-gram lengths [min, max] (default [1, 1]);
	// either Buckets (hashing) or a learned vocabulary of at most
	// MaxFeatures terms (0: all) found in at least MinDF documents
	// (0: 1); Weighting tfidf (default), count or binary.
	NGrams      []int  `json:"ngrams,omitempty"`
	MaxFeatures int    `json:"max_features,omitempty"`
	MinDF       int    `json:"min_df,omitempty"`
	Weighting   string `json:"weighting,omitempty"`
	// MaxCategories for one-hot: the most frequent values get a feature each,
	// the rest share an "other" feature.
	MaxCategories int `json:"max_categories,omitempty"`
}

// Hash identifies the spec's content: two specs with the same hash train
// the same model on the same data.
func (s ModelSpec) Hash() string {
	b, _ := json.Marshal(struct {
		Kind     string    `json:"kind"`
		Features []Feature `json:"features"`
		L2       Ridge     `json:"l2"`
	}{s.Kind, s.Features, s.L2})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Parse decodes and validates a definition.
func Parse(data []byte) (*Definition, error) {
	var d Definition
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("dataset definition: %w", err)
	}
	if err := d.init(); err != nil {
		return nil, fmt.Errorf("dataset %q: %w", d.Name, err)
	}
	return &d, nil
}

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{1,62}$`)

func (d *Definition) init() error {
	if !namePattern.MatchString(d.Name) {
		return fmt.Errorf("name %q: want lower-case letters, digits, - or _, starting with a letter", d.Name)
	}
	switch d.Task {
	case TaskRegression, TaskClassification:
	default:
		return fmt.Errorf("task %q: want regression or classification", d.Task)
	}
	if d.BatchSize <= 0 {
		return fmt.Errorf("batch_size must be positive, got %d", d.BatchSize)
	}
	if d.TestFraction <= 0 || d.TestFraction >= 1 {
		return fmt.Errorf("test_fraction must be in (0, 1), got %g", d.TestFraction)
	}
	metrics := d.Metrics()
	switch pm := d.Promotion.PrimaryMetric; {
	case pm == "":
		d.Promotion.PrimaryMetric = metrics[0]
	case !slices.Contains(metrics, pm):
		return fmt.Errorf("promotion.primary_metric %q: want one of %s for %s", pm, strings.Join(metrics, ", "), d.Task)
	}
	if d.Promotion.MinImprovement < 0 {
		return errors.New("promotion.min_improvement must not be negative")
	}
	if err := d.Promotion.validate(metrics); err != nil {
		return err
	}
	d.all = map[string]Column{}
	d.index = map[string]int{}
	d.pattern = map[string]*regexp.Regexp{}
	if d.Target.Name == "" {
		return errors.New("target has no name")
	}
	if err := d.checkTarget(); err != nil {
		return err
	}
	if d.Target.Optional || d.Target.Drop {
		return fmt.Errorf("target %q cannot be optional or dropped", d.Target.Name)
	}
	for _, c := range append([]Column{d.Target}, d.Columns...) {
		if c.Name == "" || strings.HasPrefix(c.Name, "_") {
			return fmt.Errorf("column name %q: must be non-empty and not start with _", c.Name)
		}
		if _, dup := d.all[c.Name]; dup {
			return fmt.Errorf("column %q defined twice", c.Name)
		}
		switch c.Type {
		case TypeFloat, TypeInt, TypeBool, TypeString, TypeText:
		default:
			return fmt.Errorf("column %q: unknown type %q", c.Name, c.Type)
		}
		if c.MaxLength < 0 {
			return fmt.Errorf("column %q: max_length must not be negative", c.Name)
		}
		if c.Type == TypeText {
			if len(c.Choices) > 0 || c.Pattern != "" || c.Min != nil || c.Max != nil {
				return fmt.Errorf("column %q: a text column takes no choices, pattern, min or max", c.Name)
			}
			if c.MaxLength == 0 {
				c.MaxLength = DefaultTextMaxLength
			}
		}
		if c.Pattern != "" {
			re, err := regexp.Compile(c.Pattern)
			if err != nil {
				return fmt.Errorf("column %q: pattern: %w", c.Name, err)
			}
			d.pattern[c.Name] = re
		}
		d.all[c.Name] = c
	}
	for _, c := range d.Columns {
		if c.Drop {
			continue
		}
		d.index[c.Name] = len(d.kept)
		d.kept = append(d.kept, d.all[c.Name]) // with its defaults
	}
	if len(d.Models) == 0 {
		return errors.New("no models defined")
	}
	seen := map[string]bool{}
	for _, m := range d.Models {
		if err := d.checkSpec(m); err != nil {
			return fmt.Errorf("model %q: %w", m.Name, err)
		}
		if seen[m.Name] {
			return fmt.Errorf("model %q defined twice", m.Name)
		}
		seen[m.Name] = true
	}
	return nil
}

func (d *Definition) checkSpec(m ModelSpec) error {
	if !namePattern.MatchString(m.Name) {
		return fmt.Errorf("name: want lower-case letters, digits, - or _")
	}
	switch {
	case d.Task == TaskRegression && m.Kind != KindLinear:
		return fmt.Errorf("kind %q: want %s for a regression dataset", m.Kind, KindLinear)
	case d.Task == TaskClassification && m.Kind != KindLogistic:
		return fmt.Errorf("kind %q: want %s for a classification dataset", m.Kind, KindLogistic)
	}
	if m.Kind == KindLogistic && m.L2.Auto {
		return errors.New("l2 \"auto\" is for linear models; give logistic a number (default 1)")
	}
	if !m.L2.Auto && (m.L2.Lambda < 0 || math.IsNaN(m.L2.Lambda) || math.IsInf(m.L2.Lambda, 0)) {
		return errors.New("l2 must be a non-negative number or \"auto\"")
	}
	if len(m.Features) == 0 {
		return errors.New("no features")
	}
	for _, f := range m.Features {
		i, ok := d.index[f.Column]
		if !ok {
			return fmt.Errorf("feature column %q is not a kept column of the dataset", f.Column)
		}
		typ := d.kept[i].Type
		switch f.Transform {
		case TransformNumeric:
			if typ != TypeFloat && typ != TypeInt && typ != TypeBool {
				return fmt.Errorf("feature %q: numeric transform needs a numeric column, %q is %s", f.Column, f.Column, typ)
			}
		case TransformOneHot:
			if f.MaxCategories < 0 {
				return fmt.Errorf("feature %q: max_categories must not be negative", f.Column)
			}
		case TransformHashed:
			if f.Buckets <= 0 || f.Buckets > 1<<16 {
				return fmt.Errorf("feature %q: hashed needs buckets in 1..65536", f.Column)
			}
		case TransformText:
			if err := checkText(f, typ, m.Kind); err != nil {
				return fmt.Errorf("feature %q: %w", f.Column, err)
			}
		default:
			return fmt.Errorf("feature %q: unknown transform %q (want numeric, onehot, hashed or text)", f.Column, f.Transform)
		}
		if f.Transform != TransformText && (f.NGrams != nil || f.MaxFeatures != 0 || f.MinDF != 0 || f.Weighting != "") {
			return fmt.Errorf("feature %q: ngrams, max_features, min_df and weighting are for text features", f.Column)
		}
	}
	return nil
}

// checkText validates a text feature's settings.
func checkText(f Feature, typ, kind string) error {
	if typ != TypeText {
		return fmt.Errorf("the text transform needs a text column, this one is %s", typ)
	}
	if kind != KindLogistic {
		return fmt.Errorf("text features need kind %s", KindLogistic)
	}
	if f.NGrams != nil {
		if len(f.NGrams) != 2 || f.NGrams[0] < 1 || f.NGrams[1] < f.NGrams[0] || f.NGrams[1] > MaxTextNGram {
			return fmt.Errorf("ngrams %v: want [min, max] with 1 <= min <= max <= %d", f.NGrams, MaxTextNGram)
		}
	}
	if f.Buckets < 0 || f.Buckets > MaxTextBuckets {
		return fmt.Errorf("buckets %d: want 1..%d (or none, for a vocabulary)", f.Buckets, MaxTextBuckets)
	}
	if f.Buckets > 0 && (f.MaxFeatures != 0 || f.MinDF != 0) {
		return errors.New("max_features and min_df are for a learned vocabulary, not buckets (hashing)")
	}
	if f.MaxFeatures < 0 || f.MinDF < 0 {
		return errors.New("max_features and min_df must not be negative")
	}
	switch f.Weighting {
	case "", WeightingTFIDF, WeightingCount, WeightingBinary:
	default:
		return fmt.Errorf("weighting %q: want tfidf, count or binary", f.Weighting)
	}
	return nil
}

// checkTarget validates the target against the task.
func (d *Definition) checkTarget() error {
	t := d.Target
	if d.Task == TaskRegression {
		if t.Type != TypeFloat && t.Type != TypeInt {
			return fmt.Errorf("target %q: a regression target must be float or int", t.Name)
		}
		return nil
	}
	if t.Type != TypeString || len(t.Choices) < 2 {
		return fmt.Errorf("target %q: a classification target must be a string column with two or more choices (the classes)", t.Name)
	}
	seen := map[string]bool{}
	for _, c := range t.Choices {
		if c == "" || c != strings.TrimSpace(c) {
			return fmt.Errorf("target %q: class %q must be non-empty, without leading or trailing spaces", t.Name, c)
		}
		if seen[c] {
			return fmt.Errorf("target %q: class %q listed twice", t.Name, c)
		}
		seen[c] = true
	}
	return nil
}

// Metrics lists the metrics a promotion rule can name for the dataset's
// task; the first is the default primary metric.
func (d *Definition) Metrics() []string {
	if d.Task == TaskClassification {
		return classificationMetrics()
	}
	return regressionMetrics()
}

// Classes are a classification dataset's classes (the target's choices),
// in order: a class's index is its position. Nil for regression.
func (d *Definition) Classes() []string {
	if d.Task != TaskClassification {
		return nil
	}
	return slices.Clone(d.Target.Choices)
}

// ClassIndex is the index of a target value in the classes (-1, false
// when it is not one, or the task is not classification).
func (d *Definition) ClassIndex(target Field) (int, bool) {
	if d.Task != TaskClassification {
		return -1, false
	}
	i := slices.Index(d.Target.Choices, target.Str)
	return i, i >= 0
}

// Kept returns the columns that are stored, in order (dropped ones left out).
// Row.Fields follows this order.
func (d *Definition) Kept() []Column { return d.kept }

// Index returns a kept column's position in Row.Fields.
func (d *Definition) Index(name string) (int, bool) {
	i, ok := d.index[name]
	return i, ok
}

// Lookup returns any column (kept, dropped or the target) by name.
func (d *Definition) Lookup(name string) (Column, bool) {
	c, ok := d.all[name]
	return c, ok
}

// Spec returns the model spec with that name.
func (d *Definition) Spec(name string) (ModelSpec, bool) {
	i := slices.IndexFunc(d.Models, func(m ModelSpec) bool { return m.Name == name })
	if i < 0 {
		return ModelSpec{}, false
	}
	return d.Models[i], true
}

// LowerIsBetter reports whether smaller values of the primary metric win.
func (d *Definition) LowerIsBetter() bool { return LowerIsBetterMetric(d.Promotion.PrimaryMetric) }
