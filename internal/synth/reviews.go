package synth

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/refit-ml/refit/internal/text"
)

// Reviews generates labelled movie reviews whose ground truth is known: a
// review's class (negative or positive, one half each) is drawn first, then
// its words, one by one, from that class's word distribution (a
// naive-Bayes model). The two distributions overlap: most words are
// neutral and equally likely under both, some lean one way a little, a few
// strongly, so no classifier is perfect. Label noise then flips a share of
// the written labels. ReviewLogOdds gives the Bayes-optimal score of a
// text; the best accuracy any model can reach is that of its sign, less
// the noise.
//
// Texts are short (4-20 words, most of them) or long (30-120 words, some
// over several lines), with commas, quoted phrases, capitals, an emoji
// now and then and some non-ASCII words (French, German, Russian,
// Japanese), so the CSV needs quoting and the tokeniser sees Unicode.
type Reviews struct {
	Seed int64
	// LabelNoise is the share of rows whose label is flipped (0..0.5).
	LabelNoise float64
}

// ReviewsHeader is the header of a generated file.
func ReviewsHeader() []string { return []string{"review", "sentiment"} }

// The two classes, in the order a definition's choices list them.
const (
	Negative = "negative"
	Positive = "positive"
)

// Independent streams, as Housing's: the noise does not move the texts.
const (
	streamReviews = 0x72657669657773 // "reviews"
	streamLabels  = 0x6c6162656c73   // "labels"
	// vocabSeed fixes the vocabulary for every Seed: the ground truth is
	// one model.
	vocabSeed = 0x766f636162 // "vocab"
)

// word is one vocabulary entry: its weight in each class.
type word struct {
	text string
	// lean is log p_pos(w) - log p_neg(w) before normalisation.
	lean float64
	freq float64 // Zipf base frequency
}

// reviewModel is the ground truth: the vocabulary and both classes' word
// distributions, as alias tables for sampling and log-probabilities for
// scoring.
type reviewModel struct {
	words  []word
	index  map[string]int
	logPos []float64
	logNeg []float64
	pos    alias
	neg    alias
}

// newReviewModel is deterministic: it depends on nothing but constants.
func newReviewModel() *reviewModel {
	r := rand.New(rand.NewPCG(vocabSeed, vocabSeed))
	var ws []word
	seen := map[string]bool{}
	add := func(t string, lean, freq float64) {
		if seen[t] {
			return
		}
		seen[t] = true
		ws = append(ws, word{t, lean, freq})
	}
	// Strong words, either way, a few of them non-ASCII.
	for i, t := range strings.Fields("great excellent wonderful superb loved brilliant masterpiece charming " +
		"beautiful moving delightful hilarious enjoyable favourite perfect gripping stunning " +
		"magnifique génial schön отлично 最高 touching") {
		add(t, 1.2+1.3*r.Float64(), 0.004/float64(1+i%7))
	}
	for i, t := range strings.Fields("terrible awful boring waste worst dull mess poorly bad stupid " +
		"horrible lame pointless predictable disappointing unwatchable tedious " +
		"nul ennuyeux schlecht ужасно 最悪 cringe") {
		add(t, -1.2-1.3*r.Float64(), 0.004/float64(1+i%7))
	}
	// Neutral function and film words: the bulk of every text.
	for i, t := range strings.Fields("the and of to it is in this that was movie film as with for but " +
		"its on be one all at by an who they from so like his her has have just about out " +
		"story plot actor actors scene scenes character characters director cast time " +
		"really even would there what when which their been much more very some only " +
		"ending script acting music camera screen minutes hour watch watched seen saw " +
		"café naïve déjà vu 映画 фильм kino") {
		add(t, 0.15*r.NormFloat64(), 0.03/math.Pow(float64(1+i), 0.6))
	}
	// A long tail of made-up words with small leans, most of them rare.
	syll := strings.Fields("ka lo mi ne ru sa ti vo be da fe gi ho ju ky la ma no pe qu re si to ul va we xi yo za")
	for i := 0; len(ws) < 6000; i++ {
		n := 2 + r.IntN(3)
		var b strings.Builder
		for range n {
			b.WriteString(syll[r.IntN(len(syll))])
		}
		add(b.String(), 0.35*r.NormFloat64(), 0.01/math.Pow(float64(2+i), 0.9))
	}
	m := &reviewModel{words: ws, index: make(map[string]int, len(ws))}
	pp, pn := make([]float64, len(ws)), make([]float64, len(ws))
	var sp, sn float64
	for i, w := range ws {
		m.index[w.text] = i
		pp[i] = w.freq * math.Exp(w.lean/2)
		pn[i] = w.freq * math.Exp(-w.lean/2)
		sp += pp[i]
		sn += pn[i]
	}
	m.logPos, m.logNeg = make([]float64, len(ws)), make([]float64, len(ws))
	for i := range ws {
		pp[i] /= sp
		pn[i] /= sn
		m.logPos[i], m.logNeg[i] = math.Log(pp[i]), math.Log(pn[i])
	}
	m.pos, m.neg = newAlias(pp), newAlias(pn)
	return m
}

// ReviewLogOdds is the ground truth's log P(positive | text) / P(negative
// | text) for a review (noise-free label, prior one half): the sum over its
// tokens (text.Tokens) of the words' log-likelihood ratios. Tokens outside
// the vocabulary (emoji are not tokens) add nothing.
func ReviewLogOdds(review string) float64 {
	return newReviewModel().logOdds(review)
}

// ReviewScorer is ReviewLogOdds with the model built once, for scoring
// many reviews.
func ReviewScorer() func(review string) float64 {
	return newReviewModel().logOdds
}

func (m *reviewModel) logOdds(review string) float64 {
	s := 0.0
	for _, t := range text.Tokens(review) {
		if i, ok := m.index[t]; ok {
			s += m.logPos[i] - m.logNeg[i]
		}
	}
	return s
}

// Write writes the header and rows generated reviews as CSV.
func (g Reviews) Write(w io.Writer, rows int) error {
	if rows < 0 {
		return fmt.Errorf("synth: rows must not be negative, got %d", rows)
	}
	if g.LabelNoise < 0 || g.LabelNoise > 0.5 || math.IsNaN(g.LabelNoise) {
		return fmt.Errorf("synth: label noise must be in [0, 0.5], got %g", g.LabelNoise)
	}
	m := newReviewModel()
	r := rand.New(rand.NewPCG(uint64(g.Seed), streamReviews))
	labels := rand.New(rand.NewPCG(uint64(g.Seed), streamLabels))
	bw := bufio.NewWriterSize(w, 64<<10)
	line := appendRecord(make([]byte, 0, 1024), ReviewsHeader())
	rec := make([]string, 2)
	var buf []byte
	for i := 0; ; i++ {
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("synth: write: %w", err)
		}
		if i == rows {
			break
		}
		positive := r.IntN(2) == 1
		buf = m.review(r, positive, buf[:0])
		if labels.Float64() < g.LabelNoise {
			positive = !positive
		}
		rec[0], rec[1] = string(buf), Negative
		if positive {
			rec[1] = Positive
		}
		line = appendRecord(line[:0], rec)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("synth: write: %w", err)
	}
	return nil
}

// review appends one review of the class to b.
func (m *reviewModel) review(r *rand.Rand, positive bool, b []byte) []byte {
	a := &m.neg
	if positive {
		a = &m.pos
	}
	n := 4 + r.IntN(17)
	long := r.Float64() < 0.2
	if long {
		n = 30 + r.IntN(91)
	}
	sentence := 0 // words in the current sentence
	quote := false
	for k := range n {
		w := m.words[a.draw(r)].text
		if sentence == 0 && k > 0 {
			if long && r.Float64() < 0.15 {
				b = append(b, '\n')
			} else {
				b = append(b, ' ')
			}
		} else if k > 0 {
			if r.Float64() < 0.06 {
				b = append(b, ',')
			}
			b = append(b, ' ')
		}
		if !quote && r.Float64() < 0.02 {
			b, quote = append(b, '"'), true
		}
		switch {
		case sentence == 0:
			b = appendTitle(b, w)
		case r.Float64() < 0.01:
			b = append(b, strings.ToUpper(w)...)
		default:
			b = append(b, w...)
		}
		sentence++
		if quote && r.Float64() < 0.3 {
			b, quote = append(b, '"'), false
		}
		if sentence > 3 && r.Float64() < 0.12 || k == n-1 {
			if quote {
				b, quote = append(b, '"'), false
			}
			b = append(b, ".!?"[r.IntN(3)])
			sentence = 0
		}
	}
	if r.Float64() < 0.03 {
		b = append(b, []string{" 😀", " 👍", " 🎬"}[r.IntN(3)]...)
	}
	return b
}

func appendTitle(b []byte, w string) []byte {
	c, size := utf8.DecodeRuneInString(w)
	b = utf8.AppendRune(b, unicode.ToUpper(c))
	return append(b, w[size:]...)
}

// alias is Walker's alias table: O(1) draws from a discrete distribution.
type alias struct {
	prob  []float64
	alias []int
}

func newAlias(p []float64) alias {
	n := len(p)
	a := alias{prob: make([]float64, n), alias: make([]int, n)}
	scaled := make([]float64, n)
	var small, large []int
	for i, v := range p {
		scaled[i] = v * float64(n)
		if scaled[i] < 1 {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		a.prob[s], a.alias[s] = scaled[s], l
		scaled[l] += scaled[s] - 1
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, i := range append(small, large...) {
		a.prob[i], a.alias[i] = 1, i
	}
	return a
}

func (a *alias) draw(r *rand.Rand) int {
	i := r.IntN(len(a.prob))
	if r.Float64() < a.prob[i] {
		return i
	}
	return a.alias[i]
}
