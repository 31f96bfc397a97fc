package text

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
)

type sklearnCase struct {
	Vocabulary []string    `json:"vocabulary"`
	IDF        []float64   `json:"idf"`
	Rows       []sparseRow `json:"rows"`
}

type sparseRow struct {
	Idx []int32   `json:"idx"`
	Val []float64 `json:"val"`
}

// The oracle is scikit-learn itself: testdata/sklearn_tfidf.py made the file.
func TestVectorizerMatchesScikitLearn(t *testing.T) {
	b, err := os.ReadFile("testdata/sklearn_tfidf.json")
	if err != nil {
		t.Fatal(err)
	}
	var oracle struct {
		Corpus  []string               `json:"corpus"`
		Configs map[string]sklearnCase `json:"configs"`
	}
	if err := json.Unmarshal(b, &oracle); err != nil {
		t.Fatal(err)
	}
	configs := map[string]Config{
		"tfidf_1_1":          {},
		"tfidf_1_2":          {NGrams: [2]int{1, 2}},
		"tfidf_1_2_min_df_2": {NGrams: [2]int{1, 2}, MinDF: 2},
		"count_1_1":          {Weighting: Count},
		"binary_2_2":         {NGrams: [2]int{2, 2}, Weighting: Binary},
	}
	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			want, ok := oracle.Configs[name]
			if !ok {
				t.Fatalf("no oracle for %s", name)
			}
			l, err := NewLearner(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range oracle.Corpus {
				l.Observe(d)
			}
			v, err := l.Fit()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(v.Vocabulary, want.Vocabulary) {
				t.Fatalf("vocabulary\n got %q\nwant %q", v.Vocabulary, want.Vocabulary)
			}
			if !close(v.IDF, want.IDF, 1e-12) {
				t.Fatalf("idf\n got %v\nwant %v", v.IDF, want.IDF)
			}
			var buf Buffer
			for i, d := range oracle.Corpus {
				idx, val := v.Encode(d, &buf)
				w := want.Rows[i]
				if !slices.Equal(idx, w.Idx) || !close(val, w.Val, 1e-12) {
					t.Errorf("row %d %q\n got %v %v\nwant %v %v", i, d, idx, val, w.Idx, w.Val)
				}
			}
		})
	}
}

func close(a, b []float64, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > tol {
			return false
		}
	}
	return true
}

func fit(t *testing.T, cfg Config, docs ...string) *Vectorizer {
	t.Helper()
	l, err := NewLearner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		l.Observe(d)
	}
	v, err := l.Fit()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestHashing(t *testing.T) {
	docs := []string{"good good film", "bad film", "good"}
	v := fit(t, Config{Buckets: 1 << 10, Weighting: Count}, docs...)
	var buf Buffer
	idx, val := v.Encode("Good film, GOOD! unseen", &buf)
	want := map[int32]float64{
		int32(fnv1a([]byte("good")) % 1024):   2,
		int32(fnv1a([]byte("film")) % 1024):   1,
		int32(fnv1a([]byte("unseen")) % 1024): 1, // hashing knows every term
	}
	got := map[int32]float64{}
	for i := range idx {
		got[idx[i]] += val[i]
		if i > 0 && idx[i-1] >= idx[i] {
			t.Fatalf("indexes not increasing: %v", idx)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Fatalf("bucket %d = %v, want %v (all %v)", k, got[k], w, got)
		}
	}
	// TF-IDF per bucket: df of "good" is 2 of 3 documents.
	v = fit(t, Config{Buckets: 1 << 10}, docs...)
	j := fnv1a([]byte("good")) % 1024
	if want := math.Log(4.0/3.0) + 1; math.Abs(v.IDF[j]-want) > 1e-15 {
		t.Fatalf("idf(good) = %v, want %v", v.IDF[j], want)
	}
	idx, val = v.Encode("good good", &buf)
	if len(idx) != 1 || math.Abs(val[0]-1) > 1e-15 {
		t.Fatalf("one term row is not unit length: %v %v", idx, val)
	}
}

func TestMaxFeaturesTiesByTerm(t *testing.T) {
	// Counts: the 3, bb 2, aa 2, cc 2, zz 1.
	v := fit(t, Config{MaxFeatures: 3, Weighting: Count}, "the the the", "bb aa cc", "cc aa bb zz")
	if want := []string{"aa", "bb", "the"}; !slices.Equal(v.Vocabulary, want) {
		t.Fatalf("vocabulary %q, want %q", v.Vocabulary, want)
	}
}

func TestLearnerMemoryBound(t *testing.T) {
	l, err := NewLearner(Config{MaxCandidates: 100, Weighting: Count})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		// "common" in every document, one rare term each.
		l.Observe("common rare" + strings.Repeat("x", i%300) + string(rune('a'+i%26)))
		if len(l.terms) > 100 {
			t.Fatalf("after %d documents the table holds %d terms", i+1, len(l.terms))
		}
	}
	if l.Pruned() == 0 {
		t.Fatal("nothing pruned")
	}
	v, err := l.Fit()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(v.Vocabulary, "common") {
		t.Fatal("the frequent term was pruned")
	}
}

func TestRoundTripDeterministic(t *testing.T) {
	docs := []string{"bb cc dd", "aa bb", "ee ff gg hh", "cc aa bb"}
	for _, cfg := range []Config{{NGrams: [2]int{1, 3}}, {Buckets: 64}, {Weighting: Binary, MinDF: 2}} {
		v1, v2 := fit(t, cfg, docs...), fit(t, cfg, docs...)
		b1, err := json.Marshal(v1)
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := json.Marshal(v2)
		if string(b1) != string(b2) {
			t.Fatalf("two fits encode differently:\n%s\n%s", b1, b2)
		}
		var back Vectorizer
		if err := json.Unmarshal(b1, &back); err != nil {
			t.Fatal(err)
		}
		var x, y Buffer
		for _, d := range append(docs, "aa bb cc dd ee ff gg hh unseen") {
			i1, w1 := v1.Encode(d, &x)
			i2, w2 := back.Encode(d, &y)
			if !slices.Equal(i1, i2) || !slices.Equal(w1, w2) {
				t.Fatalf("decoded vectorizer encodes %q differently", d)
			}
		}
	}
}

func TestConfigAndDecodeErrors(t *testing.T) {
	bad := []Config{
		{NGrams: [2]int{2, 1}},
		{NGrams: [2]int{0, 2}},
		{NGrams: [2]int{1, 9}},
		{Buckets: -1},
		{Buckets: MaxBuckets + 1},
		{Buckets: 8, MinDF: 2},
		{MaxFeatures: -1},
		{Weighting: "bm25"},
	}
	for _, c := range bad {
		if _, err := NewLearner(c); err == nil {
			t.Errorf("NewLearner(%+v): no error", c)
		}
	}
	if _, err := fitErr(Config{MinDF: 5}, "a b", "cc dd"); !errors.Is(err, ErrEmptyVocabulary) {
		t.Errorf("min_df above every df: %v, want ErrEmptyVocabulary", err)
	}
	if _, err := fitErr(Config{}); !errors.Is(err, ErrEmptyVocabulary) {
		t.Errorf("no documents: %v", err)
	}
	for _, js := range []string{
		`{"ngrams":[1,1],"weighting":"count","vocabulary":["bb","aa"],"docs":2}`,
		`{"ngrams":[1,1],"weighting":"count","vocabulary":["aa","aa"],"docs":2}`,
		`{"ngrams":[1,1],"weighting":"tfidf","vocabulary":["aa"],"docs":2}`,
		`{"ngrams":[1,1],"weighting":"tfidf","vocabulary":["aa"],"idf":[0.5],"docs":2}`,
		`{"ngrams":[1,1],"weighting":"count","vocabulary":["aa bb"],"docs":2}`,
		`{"ngrams":[1,1],"weighting":"count","vocabulary":["aa"],"docs":2,"extra":1}`,
		`{"ngrams":[1,1],"weighting":"count","vocabulary":["aa"],"docs":0}`,
		`{"ngrams":[1,1],"weighting":"count","buckets":4,"vocabulary":["aa"],"docs":1}`,
	} {
		var v Vectorizer
		if err := json.Unmarshal([]byte(js), &v); err == nil {
			t.Errorf("decoded %s", js)
		}
	}
}

func fitErr(cfg Config, docs ...string) (*Vectorizer, error) {
	l, err := NewLearner(cfg)
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		l.Observe(d)
	}
	return l.Fit()
}

func TestRemap(t *testing.T) {
	old := fit(t, Config{Weighting: Count}, "aa bb cc")
	cur := fit(t, Config{Weighting: Count}, "bb cc dd")
	m, err := cur.Remap(old)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{1, 2, -1}; !slices.Equal(m, want) {
		t.Fatalf("remap %v, want %v", m, want)
	}
	if _, err := fit(t, Config{Buckets: 8}, "aa").Remap(fit(t, Config{Buckets: 16}, "aa")); err == nil {
		t.Fatal("remapped 8 buckets onto 16")
	}
}

func TestEncodeAllocs(t *testing.T) {
	doc := strings.Repeat("A fine, fine film; the cast shines and the plot moves. ", 10)
	for _, cfg := range []Config{{NGrams: [2]int{1, 2}}, {Buckets: 1 << 18, NGrams: [2]int{1, 2}}} {
		v := fit(t, cfg, doc, "another film entirely")
		var buf Buffer
		v.Encode(doc, &buf)
		if n := testing.AllocsPerRun(50, func() { v.Encode(doc, &buf) }); n != 0 {
			t.Errorf("%+v: %v allocations per document", cfg, n)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	doc := strings.Repeat("A fine, fine film; the cast shines and the plot moves. ", 4)
	l, _ := NewLearner(Config{NGrams: [2]int{1, 2}})
	l.Observe(doc)
	v, _ := l.Fit()
	var buf Buffer
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		v.Encode(doc, &buf)
	}
}

func TestLearnerNGramsBoundsNonZeros(t *testing.T) {
	docs := []string{"aa bb aa cc", "dd", "", "ee ff gg"}
	l, err := NewLearner(Config{NGrams: [2]int{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		l.Observe(d)
	}
	// unigrams 4+1+0+3, bigrams 3+0+0+2
	if l.NGrams() != 13 {
		t.Fatalf("NGrams %d, want 13", l.NGrams())
	}
	v, err := l.Fit()
	if err != nil {
		t.Fatal(err)
	}
	var buf Buffer
	nnz := 0
	for _, d := range docs {
		idx, _ := v.Encode(d, &buf)
		nnz += len(idx)
	}
	if nnz > l.NGrams() || nnz != 12 { // "aa" twice in one document
		t.Fatalf("%d non-zeros for %d n-grams", nnz, l.NGrams())
	}
}

func TestSortKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var scratch []int32
	for _, width := range []int{1, 7, 256, 257, 6000, 1 << 16, 1<<16 + 1, MaxBuckets} {
		for _, n := range []int{0, 1, 2, 31, 32, 33, 100, 1000} {
			k := make([]int32, n)
			for i := range k {
				k[i] = int32(r.IntN(width))
			}
			want := slices.Clone(k)
			slices.Sort(want)
			scratch = sortKeys(k, scratch, width)
			if !slices.Equal(k, want) {
				t.Fatalf("width %d, %d keys: %v, want %v", width, n, k, want)
			}
		}
	}
}

// Pruned is the number of candidate terms dropped to bound memory.
func (l *Learner) Pruned() int { return l.pruned }
