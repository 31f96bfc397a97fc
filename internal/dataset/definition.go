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
	TypeText   = "text" // free text (a review); reserved for text models
)

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
	// PrimaryMetric compares challenger and champion: rmse, mae (lower is
	// better) or r2 (higher is better).
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

// Metrics a promotion rule can name.
var promotionMetrics = []string{"rmse", "mae", "r2"}

// Auto reports whether a winning challenger is promoted without approval.
func (p Promotion) Auto() bool { return p.AutoPromote == nil || *p.AutoPromote }

// Bounds returns the first bound the scores break ("" when within all),
// naming the bound, e.g. "r2 -0.12 is below promotion.min.r2 = 0".
// score returns a metric's value by name.
func (p Promotion) Bounds(score func(metric string) float64) string {
	for _, m := range promotionMetrics {
		if lo, ok := p.Min[m]; ok && score(m) < lo {
			return fmt.Sprintf("%s %.6g is below promotion.min.%s = %g", m, score(m), m, lo)
		}
		if hi, ok := p.Max[m]; ok && score(m) > hi {
			return fmt.Sprintf("%s %.6g is above promotion.max.%s = %g", m, score(m), m, hi)
		}
	}
	return ""
}

func (p Promotion) validate() error {
	for _, b := range []struct {
		name   string
		bounds map[string]float64
	}{{"min", p.Min}, {"max", p.Max}} {
		for m, v := range b.bounds {
			if !slices.Contains(promotionMetrics, m) {
				return fmt.Errorf("promotion.%s.%s: unknown metric (want rmse, mae or r2)", b.name, m)
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
	Kind     string    `json:"kind"` // "linear"
	Features []Feature `json:"features"`
	// L2 adds a ridge penalty (0: ordinary least squares), or "auto".
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

// Feature transforms.
const (
	TransformNumeric = "numeric"
	TransformOneHot  = "onehot"
	TransformHashed  = "hashed"
)

// Feature is one input column and how it becomes model features.
type Feature struct {
	Column    string `json:"column"`
	Transform string `json:"transform"`
	// Buckets for hashed features.
	Buckets int `json:"buckets,omitempty"`
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
	case TaskRegression:
	case TaskClassification:
		return errors.New("task classification is not supported yet (only regression)")
	default:
		return fmt.Errorf("task %q: want regression", d.Task)
	}
	if d.BatchSize <= 0 {
		return fmt.Errorf("batch_size must be positive, got %d", d.BatchSize)
	}
	if d.TestFraction <= 0 || d.TestFraction >= 1 {
		return fmt.Errorf("test_fraction must be in (0, 1), got %g", d.TestFraction)
	}
	switch d.Promotion.PrimaryMetric {
	case "":
		d.Promotion.PrimaryMetric = "rmse"
	case "rmse", "mae", "r2":
	default:
		return fmt.Errorf("promotion.primary_metric %q: want rmse, mae or r2", d.Promotion.PrimaryMetric)
	}
	if d.Promotion.MinImprovement < 0 {
		return errors.New("promotion.min_improvement must not be negative")
	}
	if err := d.Promotion.validate(); err != nil {
		return err
	}
	d.all = map[string]Column{}
	d.index = map[string]int{}
	d.pattern = map[string]*regexp.Regexp{}
	if d.Target.Name == "" {
		return errors.New("target has no name")
	}
	if d.Target.Type != TypeFloat && d.Target.Type != TypeInt {
		return fmt.Errorf("target %q: a regression target must be float or int", d.Target.Name)
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
		d.kept = append(d.kept, c)
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
	if m.Kind != "linear" {
		return fmt.Errorf("kind %q: want linear", m.Kind)
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
		default:
			return fmt.Errorf("feature %q: unknown transform %q (want numeric, onehot or hashed)", f.Column, f.Transform)
		}
	}
	return nil
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
func (d *Definition) LowerIsBetter() bool { return d.Promotion.PrimaryMetric != "r2" }
