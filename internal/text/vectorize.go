package text

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Weightings.
const (
	// TFIDF: (1 + ln tf) × idf, idf = ln((1+n)/(1+df)) + 1, then the row
	// is scaled to unit L2 norm: TfidfVectorizer(sublinear_tf=True).
	TFIDF = "tfidf"
	// Count: the raw term count, not normalised (CountVectorizer).
	Count = "count"
	// Binary: 1 for a term present, not normalised (binary=True).
	Binary = "binary"
)

// Limits.
const (
	MaxNGram   = 5
	MaxBuckets = 1 << 24
	// DefaultMaxCandidates bounds the terms a vocabulary Learner counts at
	// once (about 100 bytes each, so ~100 MB): see Learner.
	DefaultMaxCandidates = 1 << 20
)

// ErrEmptyVocabulary: no term survived min_df and the documents' tokens.
var ErrEmptyVocabulary = errors.New("text: empty vocabulary (no term kept; check min_df and the documents)")

// Config is what a dataset definition says about a text feature.
type Config struct {
	// NGrams is [min, max] word n-gram lengths, e.g. [1, 2]; zero means
	// [1, 1].
	NGrams [2]int
	// Buckets > 0 selects the hashing trick: term → FNV-1a 64 mod Buckets,
	// no sign. Otherwise the vocabulary is learned.
	Buckets int
	// MaxFeatures keeps the most frequent terms (by count over the corpus,
	// ties by term); 0 keeps all. Vocabulary mode only.
	MaxFeatures int
	// MinDF drops terms found in fewer documents; 0 means 1.
	MinDF int
	// Weighting is TFIDF (default), Count or Binary.
	Weighting string
	// MaxCandidates bounds the Learner's term table (0: the default).
	MaxCandidates int
}

func (c Config) ngrams() (int, int) {
	if c.NGrams == [2]int{} {
		return 1, 1
	}
	return c.NGrams[0], c.NGrams[1]
}

func (c Config) weighting() string {
	if c.Weighting == "" {
		return TFIDF
	}
	return c.Weighting
}

// Validate names the first bad setting.
func (c Config) Validate() error {
	lo, hi := c.ngrams()
	if lo < 1 || hi < lo || hi > MaxNGram {
		return fmt.Errorf("ngrams [%d, %d]: want 1 <= min <= max <= %d", lo, hi, MaxNGram)
	}
	if c.Buckets < 0 || c.Buckets > MaxBuckets {
		return fmt.Errorf("buckets %d: want 1..%d (or 0 for a learned vocabulary)", c.Buckets, MaxBuckets)
	}
	if c.Buckets > 0 && (c.MaxFeatures != 0 || c.MinDF != 0) {
		return errors.New("buckets and max_features/min_df exclude each other: hashing learns no vocabulary")
	}
	if c.MaxFeatures < 0 || c.MinDF < 0 || c.MaxCandidates < 0 {
		return errors.New("max_features, min_df and max_candidates must not be negative")
	}
	switch c.weighting() {
	case TFIDF, Count, Binary:
	default:
		return fmt.Errorf("weighting %q: want tfidf, count or binary", c.Weighting)
	}
	return nil
}

// Vectorizer is a fitted text feature: it maps a document to a sparse row
// of Width() features. It is plain data (JSON in the model artifact) and
// its encoding is deterministic; after Fit or UnmarshalJSON it is ready and
// safe for concurrent use by Encode (each goroutine with its own Buffer).
type Vectorizer struct {
	NGrams    [2]int `json:"ngrams"`
	Weighting string `json:"weighting"`
	// Buckets > 0: hashing trick; Vocabulary is then empty.
	Buckets int `json:"buckets,omitempty"`
	// Vocabulary is sorted (by bytes, i.e. code points); a term's feature
	// is its position.
	Vocabulary []string `json:"vocabulary,omitempty"`
	// IDF has one weight per feature (TFIDF only).
	IDF []float64 `json:"idf,omitempty"`
	// Docs is the number of training documents.
	Docs int `json:"docs"`

	index map[string]int32
}

// Width is the number of features.
func (v *Vectorizer) Width() int {
	if v.Buckets > 0 {
		return v.Buckets
	}
	return len(v.Vocabulary)
}

// UnmarshalJSON decodes strictly (no unknown fields) and readies the
// vectorizer, so a decoded artifact is usable as it is.
func (v *Vectorizer) UnmarshalJSON(b []byte) error {
	type plain Vectorizer
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("text vectorizer: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("text vectorizer: trailing data")
	}
	*v = Vectorizer(p)
	return v.prepare()
}

// prepare validates and builds the term index.
func (v *Vectorizer) prepare() error {
	c := Config{NGrams: v.NGrams, Buckets: v.Buckets, Weighting: v.Weighting}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("text vectorizer: %w", err)
	}
	if v.NGrams == [2]int{} || v.Weighting == "" {
		return errors.New("text vectorizer: ngrams and weighting must be explicit")
	}
	if v.Docs <= 0 {
		return fmt.Errorf("text vectorizer: docs %d", v.Docs)
	}
	if v.Buckets > 0 && len(v.Vocabulary) > 0 {
		return errors.New("text vectorizer: both buckets and a vocabulary")
	}
	if v.Buckets == 0 {
		if len(v.Vocabulary) == 0 {
			return ErrEmptyVocabulary
		}
		v.index = make(map[string]int32, len(v.Vocabulary))
		for i, t := range v.Vocabulary {
			if i > 0 && v.Vocabulary[i-1] >= t {
				return fmt.Errorf("text vectorizer: vocabulary not sorted or repeated at %q", t)
			}
			if t == "" || strings.Count(t, " ")+1 < v.NGrams[0] || strings.Count(t, " ")+1 > v.NGrams[1] {
				return fmt.Errorf("text vectorizer: term %q is not a %d..%d-gram", t, v.NGrams[0], v.NGrams[1])
			}
			v.index[t] = int32(i)
		}
	}
	if v.Weighting == TFIDF {
		if len(v.IDF) != v.Width() {
			return fmt.Errorf("text vectorizer: %d idf weights for %d features", len(v.IDF), v.Width())
		}
		for _, w := range v.IDF {
			if math.IsNaN(w) || w < 1 || math.IsInf(w, 0) {
				return fmt.Errorf("text vectorizer: idf %g (want finite, >= 1)", w)
			}
		}
	} else if len(v.IDF) != 0 {
		return fmt.Errorf("text vectorizer: idf weights with weighting %s", v.Weighting)
	}
	return nil
}

// Buffer is the per-goroutine scratch of Encode and Learner.Observe.
type Buffer struct {
	tok           tokens
	keys, scratch []int32
	// Idx and Val are the last encoded row.
	Idx []int32
	Val []float64
}

// fnv1a is FNV-1a 64 of a term's UTF-8 bytes.
func fnv1a(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// Encode writes doc's feature row into b and returns it: feature indexes
// in increasing order and their values. Terms outside the vocabulary are
// ignored; a document without any known term gives an empty row. The
// slices are b's and valid until its next use.
func (v *Vectorizer) Encode(doc string, b *Buffer) ([]int32, []float64) {
	b.tok.split(doc)
	b.keys = b.keys[:0]
	lo, hi := v.NGrams[0], v.NGrams[1]
	n := b.tok.len()
	for k := lo; k <= hi; k++ {
		for i := 0; i+k <= n; i++ {
			g := b.tok.gram(i, k)
			if v.Buckets > 0 {
				b.keys = append(b.keys, int32(fnv1a(g)%uint64(v.Buckets)))
			} else if j, ok := v.index[string(g)]; ok {
				b.keys = append(b.keys, j)
			}
		}
	}
	b.scratch = sortKeys(b.keys, b.scratch, v.Width())
	b.Idx, b.Val = b.Idx[:0], b.Val[:0]
	for i := 0; i < len(b.keys); {
		j := i + 1
		for j < len(b.keys) && b.keys[j] == b.keys[i] {
			j++
		}
		b.Idx = append(b.Idx, b.keys[i])
		b.Val = append(b.Val, float64(j-i))
		i = j
	}
	switch v.Weighting {
	case Binary:
		for i := range b.Val {
			b.Val[i] = 1
		}
	case TFIDF:
		ss := 0.0
		for i, tf := range b.Val {
			w := v.IDF[b.Idx[i]] // tf = 1, the usual case: 1 + ln 1 = 1 exactly
			if tf > 1 {
				w = (1 + math.Log(tf)) * w
			}
			b.Val[i] = w
			ss += w * w
		}
		if ss > 0 {
			norm := math.Sqrt(ss)
			for i := range b.Val {
				b.Val[i] /= norm
			}
		}
	}
	return b.Idx, b.Val
}

// sortKeys sorts a row's feature keys (0 <= key < width) using scratch,
// which it may grow and returns: by insertion when short, else by bytes
// (least significant first). Comparison sorts mispredict about every
// other branch on these keys, and long rows made most of the sorting
// time; a byte pass has no data-dependent branch.
func sortKeys(k, scratch []int32, width int) []int32 {
	if len(k) <= 32 {
		for i := 1; i < len(k); i++ {
			v := k[i]
			j := i
			for ; j > 0 && k[j-1] > v; j-- {
				k[j] = k[j-1]
			}
			k[j] = v
		}
		return scratch
	}
	scratch = slices.Grow(scratch[:0], len(k))[:len(k)]
	src, dst := k, scratch
	for shift := 0; shift < 31 && (width-1)>>shift > 0; shift += 8 {
		var count [256]int32
		for _, v := range src {
			count[uint8(v>>shift)]++
		}
		sum := int32(0)
		for d, c := range count {
			count[d] = sum
			sum += c
		}
		for _, v := range src {
			d := uint8(v >> shift)
			dst[count[d]] = v
			count[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &k[0] {
		copy(k, src)
	}
	return scratch
}

// Remap gives, for each feature of v, the feature of old with the same
// term, or -1: how a warm start carries coefficients across versions whose
// vocabularies differ. With hashing both spaces must be the same size and
// the map is the identity.
func (v *Vectorizer) Remap(old *Vectorizer) ([]int32, error) {
	m := make([]int32, v.Width())
	if v.Buckets > 0 || old.Buckets > 0 {
		if v.Buckets != old.Buckets {
			return nil, fmt.Errorf("text: cannot map %d features onto %d", v.Width(), old.Width())
		}
		for i := range m {
			m[i] = int32(i)
		}
		return m, nil
	}
	for i, t := range v.Vocabulary {
		m[i] = -1
		if j, ok := slices.BinarySearch(old.Vocabulary, t); ok {
			m[i] = int32(j)
		}
	}
	return m, nil
}

// termStat is what the Learner knows of one vocabulary candidate.
type termStat struct {
	df, last int // documents holding it; the last one that did (1-based)
	tf       int64
}

// Learner observes the training documents (pass 1) and fits a Vectorizer:
// document frequencies for the IDF and, in vocabulary mode, the terms.
//
// Memory is bounded: in vocabulary mode the candidate table holds at most
// MaxCandidates terms. When it is full, the terms found in the fewest
// documents (df <= 1, then 2, ...) are dropped until it is three quarters
// full; a dropped term seen again starts from zero, so a rare term may end
// up with a lower df than its true one and is the one to lose out. With
// hashing the table is Buckets counters.
type Learner struct {
	cfg    Config
	buf    Buffer
	docs   int
	grams  int // n-grams seen: a bound on the encoded rows' non-zeros
	terms  map[string]*termStat
	pruned int // terms dropped to bound memory
	// hashing: per bucket document frequency and last document.
	df, last []int32
}

// NewLearner validates c.
func NewLearner(c Config) (*Learner, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("text: %w", err)
	}
	lo, hi := c.ngrams()
	c.NGrams, c.Weighting = [2]int{lo, hi}, c.weighting()
	if c.MinDF == 0 {
		c.MinDF = 1
	}
	if c.MaxCandidates == 0 {
		c.MaxCandidates = DefaultMaxCandidates
	}
	l := &Learner{cfg: c}
	if c.Buckets > 0 {
		l.df, l.last = make([]int32, c.Buckets), make([]int32, c.Buckets)
	} else {
		l.terms = map[string]*termStat{}
	}
	return l, nil
}

// Observe counts one training document.
func (l *Learner) Observe(doc string) {
	l.docs++
	t := &l.buf.tok
	t.split(doc)
	n := t.len()
	d := l.docs
	for k := l.cfg.NGrams[0]; k <= l.cfg.NGrams[1]; k++ {
		l.grams += max(0, n-k+1)
	}
	for k := l.cfg.NGrams[0]; k <= l.cfg.NGrams[1]; k++ {
		for i := 0; i+k <= n; i++ {
			g := t.gram(i, k)
			if l.cfg.Buckets > 0 {
				j := fnv1a(g) % uint64(l.cfg.Buckets)
				if l.last[j] != int32(d) {
					l.last[j] = int32(d)
					l.df[j]++
				}
				continue
			}
			s, ok := l.terms[string(g)]
			if !ok {
				if len(l.terms) >= l.cfg.MaxCandidates {
					l.prune()
				}
				s = &termStat{}
				l.terms[string(g)] = s
			}
			s.tf++
			if s.last != d {
				s.last = d
				s.df++
			}
		}
	}
}

func (l *Learner) prune() {
	target := l.cfg.MaxCandidates * 3 / 4
	for floor := 1; len(l.terms) > target; floor++ {
		for k, s := range l.terms {
			if s.df <= floor {
				delete(l.terms, k)
				l.pruned++
			}
		}
	}
}

// NGrams is the number of n-grams observed, which bounds the non-zeros of
// the training documents' rows (to size a CSR before pass 2).
func (l *Learner) NGrams() int { return l.grams }

// Fit returns the fitted vectorizer; ErrEmptyVocabulary when no term is
// kept (or no document was observed).
func (l *Learner) Fit() (*Vectorizer, error) {
	c := l.cfg
	if l.docs == 0 {
		return nil, ErrEmptyVocabulary
	}
	v := &Vectorizer{NGrams: c.NGrams, Weighting: c.Weighting, Buckets: c.Buckets, Docs: l.docs}
	idf := func(df int) float64 {
		return math.Log(float64(1+l.docs)/float64(1+df)) + 1
	}
	if c.Buckets > 0 {
		if c.Weighting == TFIDF {
			v.IDF = make([]float64, c.Buckets)
			for j, df := range l.df {
				v.IDF[j] = idf(int(df))
			}
		}
	} else {
		type cand struct {
			term string
			s    *termStat
		}
		cs := make([]cand, 0, len(l.terms))
		for t, s := range l.terms {
			if s.df >= c.MinDF {
				cs = append(cs, cand{t, s})
			}
		}
		if c.MaxFeatures > 0 && len(cs) > c.MaxFeatures {
			slices.SortFunc(cs, func(a, b cand) int {
				if r := cmp.Compare(b.s.tf, a.s.tf); r != 0 {
					return r
				}
				return strings.Compare(a.term, b.term)
			})
			cs = cs[:c.MaxFeatures]
		}
		slices.SortFunc(cs, func(a, b cand) int { return strings.Compare(a.term, b.term) })
		v.Vocabulary = make([]string, len(cs))
		if c.Weighting == TFIDF {
			v.IDF = make([]float64, len(cs))
		}
		for i, x := range cs {
			v.Vocabulary[i] = x.term
			if v.IDF != nil {
				v.IDF[i] = idf(x.s.df)
			}
		}
	}
	if err := v.prepare(); err != nil {
		return nil, err
	}
	return v, nil
}
