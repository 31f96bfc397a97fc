package synth

import (
	"bytes"
	"encoding/csv"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func readReviews(t *testing.T, g Reviews, rows int) [][]string {
	t.Helper()
	var buf bytes.Buffer
	if err := g.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(recs[0], ReviewsHeader()) {
		t.Fatalf("header %q", recs[0])
	}
	if len(recs) != rows+1 {
		t.Fatalf("%d records, want %d", len(recs), rows+1)
	}
	return recs[1:]
}

func TestReviewsShape(t *testing.T) {
	recs := readReviews(t, Reviews{Seed: 3}, 4000)
	var short, long, multiline, quoted, comma, nonASCII, pos int
	for _, r := range recs {
		rev := r[0]
		if !utf8.ValidString(rev) || strings.TrimSpace(rev) != rev || rev == "" {
			t.Fatalf("bad review %q", rev)
		}
		switch r[1] {
		case Positive:
			pos++
		case Negative:
		default:
			t.Fatalf("label %q", r[1])
		}
		switch n := len(strings.Fields(rev)); {
		case n <= 21:
			short++
		case n >= 30:
			long++
		}
		if strings.Contains(rev, "\n") {
			multiline++
		}
		if strings.Contains(rev, `"`) {
			quoted++
		}
		if strings.Contains(rev, ",") {
			comma++
		}
		if strings.IndexFunc(rev, func(c rune) bool { return c >= utf8.RuneSelf }) >= 0 {
			nonASCII++
		}
	}
	n := len(recs)
	for name, c := range map[string]int{"short": short, "long": long, "multi-line": multiline, "quoted": quoted, "with commas": comma, "non-ASCII": nonASCII} {
		if c < n/100 {
			t.Errorf("only %d of %d reviews %s", c, n, name)
		}
	}
	if short < n/2 || long < n/10 {
		t.Errorf("%d short and %d long of %d", short, long, n)
	}
	if pos < n*45/100 || pos > n*55/100 {
		t.Errorf("%d positive of %d", pos, n)
	}
}

func TestReviewsDeterministic(t *testing.T) {
	var a, b, c bytes.Buffer
	if err := (Reviews{Seed: 5}).Write(&a, 500); err != nil {
		t.Fatal(err)
	}
	_ = (Reviews{Seed: 5}).Write(&b, 500)
	_ = (Reviews{Seed: 6}).Write(&c, 500)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same seed, different files")
	}
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Fatal("different seeds, same file")
	}
}

// The ground truth: its sign classifies noise-free reviews well but not
// perfectly (the classes overlap), and label noise flips the share asked,
// leaving the texts as they were.
func TestReviewsGroundTruth(t *testing.T) {
	const rows = 5000
	clean := readReviews(t, Reviews{Seed: 9}, rows)
	noisy := readReviews(t, Reviews{Seed: 9, LabelNoise: 0.2}, rows)
	m := newReviewModel()
	right, flipped := 0, 0
	for i, r := range clean {
		if noisy[i][0] != r[0] {
			t.Fatalf("row %d: the noise changed the text", i)
		}
		if noisy[i][1] != r[1] {
			flipped++
		}
		if (m.logOdds(r[0]) > 0) == (r[1] == Positive) {
			right++
		}
	}
	acc := float64(right) / rows
	if acc < 0.8 || acc > 0.97 {
		t.Errorf("Bayes accuracy on clean labels %.3f, want between 0.8 and 0.97", acc)
	}
	if f := float64(flipped) / rows; f < 0.18 || f > 0.22 {
		t.Errorf("%.3f of labels flipped, want 0.2", f)
	}
	if got := ReviewScorer()(clean[1][0]); got != m.logOdds(clean[1][0]) {
		t.Errorf("ReviewScorer %v, model %v", got, m.logOdds(clean[1][0]))
	}
	if got := ReviewLogOdds(clean[0][0]); got != m.logOdds(clean[0][0]) {
		t.Errorf("ReviewLogOdds %v, model %v", got, m.logOdds(clean[0][0]))
	}
	if ReviewLogOdds("Great, excellent, wonderful!") <= 0 || ReviewLogOdds("boring awful waste") >= 0 {
		t.Error("strong words score the wrong way")
	}
}

func TestReviewsErrors(t *testing.T) {
	for _, g := range []Reviews{{LabelNoise: -0.1}, {LabelNoise: 0.6}} {
		if err := g.Write(io.Discard, 1); err == nil {
			t.Errorf("%+v accepted", g)
		}
	}
	if err := (Reviews{}).Write(io.Discard, -1); err == nil {
		t.Error("negative rows accepted")
	}
}

func BenchmarkReviews(b *testing.B) {
	for b.Loop() {
		if err := (Reviews{Seed: 1}).Write(io.Discard, 10000); err != nil {
			b.Fatal(err)
		}
	}
}
