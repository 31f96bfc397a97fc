package model

import (
	"fmt"
	"math"
	"strconv"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/text"
)

// Transform is one spec feature with the parameters learned in training.
// Exactly one of Numeric, OneHot, Hashed, Text is set, after Transform.
type Transform struct {
	Column    string   `json:"column"`
	Transform string   `json:"transform"`
	Numeric   *Numeric `json:"numeric,omitempty"`
	OneHot    *OneHot  `json:"onehot,omitempty"`
	Hashed    *Hashed  `json:"hashed,omitempty"`
	// Text is a fitted text vectoriser (logistic models only).
	Text *text.Vectorizer `json:"text,omitempty"`
}

// Numeric standardises a column: (x - Mean) / Std (only centred when Std is
// 0, i.e. the column was constant in training). A missing value (NaN)
// becomes Impute, the training mean of the present values.
type Numeric struct {
	Mean    float64 `json:"mean"`
	Std     float64 `json:"std"`
	Impute  float64 `json:"impute"`
	Missing int     `json:"missing"` // missing values seen in training
}

// OneHot has one feature per level in Levels, then one "other" feature for
// values outside the vocabulary. Reference, the most frequent value, has no
// feature: it is what the intercept describes.
type OneHot struct {
	Reference string   `json:"reference"`
	Levels    []string `json:"levels"`
}

// Hashed sends a value to one of Buckets features with value ±1 (the
// hashing trick): FNV-1a 64 of the value's canonical text, bucket from
// bits 1..63, sign from bit 0.
type Hashed struct {
	Buckets int `json:"buckets"`
}

// Width is the number of features the transform produces.
func (t Transform) Width() int {
	switch {
	case t.Numeric != nil:
		return 1
	case t.OneHot != nil:
		return len(t.OneHot.Levels) + 1
	case t.Hashed != nil:
		return t.Hashed.Buckets
	case t.Text != nil:
		return t.Text.Width()
	}
	return 0
}

func (n *Numeric) apply(x float64) float64 {
	if math.IsNaN(x) {
		x = n.Impute
	}
	x -= n.Mean
	if n.Std > 0 {
		x /= n.Std
	}
	return x
}

func fnv1a[T string | []byte](s T) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func hashBucket(h uint64, buckets int) (int, float64) {
	sign := 1.0
	if h&1 == 1 {
		sign = -1
	}
	return int((h >> 1) % uint64(buckets)), sign
}

// fieldHash is FNV-1a of the field's canonical text (dataset.Format),
// without allocating.
func fieldHash(numCol bool, f dataset.Field) uint64 {
	switch {
	case numCol && math.IsNaN(f.Num):
		return fnv1a("") // missing: dataset.Format writes ""
	case numCol:
		var buf [32]byte
		return fnv1a(strconv.AppendFloat(buf[:0], f.Num, 'g', -1, 64))
	}
	return fnv1a(f.Str)
}

// numKey identifies a numeric value as its canonical text does
// (dataset.Format), without allocating: all NaNs are one value.
func numKey(x float64) uint64 {
	if math.IsNaN(x) {
		return math.Float64bits(math.NaN())
	}
	return math.Float64bits(x)
}

// term is one transform compiled against a definition.
type term struct {
	field   int  // position in Row.Fields
	numCol  bool // the column holds numbers (Field.Num), not text
	offset  int  // first feature
	numeric *Numeric
	buckets int
	// onehot: value -> position in Levels, or -1 for the reference.
	strLevel map[string]int
	numLevel map[uint64]int
	other    int
	text     *text.Vectorizer
}

// encode gives the transform's one nonzero feature for f, if any, as a
// position relative to the term's offset.
func (t *term) encode(f dataset.Field) (int, float64, bool) {
	switch {
	case t.numeric != nil:
		return 0, t.numeric.apply(f.Num), true
	case t.buckets > 0:
		b, sign := hashBucket(fieldHash(t.numCol, f), t.buckets)
		return b, sign, true
	default:
		var j int
		var ok bool
		if t.numCol {
			j, ok = t.numLevel[numKey(f.Num)]
		} else {
			j, ok = t.strLevel[f.Str]
		}
		switch {
		case !ok:
			return t.other, 1, true
		case j < 0:
			return 0, 0, false
		}
		return j, 1, true
	}
}

// compile binds transforms to a definition's row layout. A text transform
// gets a term with text set: it is encoded by its vectoriser, not encode.
func compile(def *dataset.Definition, ts []Transform) ([]term, int, error) {
	terms := make([]term, len(ts))
	off := 0
	for i, tr := range ts {
		field, ok := def.Index(tr.Column)
		if !ok {
			return nil, 0, fmt.Errorf("column %q is not a kept column of dataset %q", tr.Column, def.Name)
		}
		col := def.Kept()[field]
		t := term{field: field, numCol: dataset.IsNumeric(col), offset: off}
		switch {
		case tr.Numeric != nil:
			if !t.numCol {
				return nil, 0, fmt.Errorf("column %q: numeric transform of a %s column", tr.Column, col.Type)
			}
			t.numeric = tr.Numeric
		case tr.Hashed != nil:
			t.buckets = tr.Hashed.Buckets
		case tr.Text != nil:
			if col.Type != dataset.TypeText {
				return nil, 0, fmt.Errorf("column %q: text transform of a %s column", tr.Column, col.Type)
			}
			t.text = tr.Text
		case tr.OneHot != nil:
			oh := tr.OneHot
			t.other = len(oh.Levels)
			if t.numCol {
				t.numLevel = make(map[uint64]int, len(oh.Levels)+1)
				for j, v := range append([]string{oh.Reference}, oh.Levels...) {
					x, err := strconv.ParseFloat(v, 64)
					if err != nil {
						return nil, 0, fmt.Errorf("column %q: level %q is not a number: %w", tr.Column, v, err)
					}
					t.numLevel[numKey(x)] = j - 1
				}
			} else {
				t.strLevel = make(map[string]int, len(oh.Levels)+1)
				t.strLevel[oh.Reference] = -1
				for j, v := range oh.Levels {
					t.strLevel[v] = j
				}
			}
		default:
			return nil, 0, fmt.Errorf("column %q: transform has no parameters", tr.Column)
		}
		terms[i] = t
		off += tr.Width()
	}
	return terms, off, nil
}
