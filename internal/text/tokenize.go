// Package text turns free text into sparse feature rows: a Unicode-aware
// tokeniser, word n-grams, and a vectoriser whose feature space is either
// the hashing trick or a vocabulary learned in training, weighted by
// TF-IDF (as scikit-learn's TfidfVectorizer(sublinear_tf=True)), counts or
// presence. The rules are written out in schemas/README.md ("Text features"); a
// prediction depends on every one of them, so change them only with a new
// artifact format.
package text

import (
	"slices"
	"unicode"
	"unicode/utf8"
)

// Tokeniser rules (see schemas/README.md ("Text features")).
const (
	// MinTokenRunes: shorter tokens are dropped, as scikit-learn's default
	// token_pattern (?u)\b\w\w+\b drops one-character words ("a", "I").
	// Combining marks do not count towards the length.
	MinTokenRunes = 2
	// MaxTokenRunes: a longer run keeps its first MaxTokenRunes runes and
	// the rest of the run is skipped (a pasted URL or a row of letters
	// must not make a feature per length).
	MaxTokenRunes = 64
)

// isWord reports whether r belongs to a token: letters, combining marks,
// numbers (any Unicode number: digits, superscripts, Roman numerals) and
// the underscore, like Python's \w plus the marks.
func isWord(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_'
	}
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsNumber(r)
}

// lower is the simple Unicode lower-case mapping of one rune.
func lower(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}
	return unicode.ToLower(r)
}

// tokens is a document's tokens, lower-cased, written into one byte buffer
// separated by single spaces, so that the n-gram of tokens i..j is the
// contiguous slice buf[start[i]:end[j]] with the words already joined by
// one space, as scikit-learn joins them.
type tokens struct {
	buf        []byte
	start, end []int
}

func (t *tokens) reset() {
	t.buf, t.start, t.end = t.buf[:0], t.start[:0], t.end[:0]
}

func (t *tokens) len() int { return len(t.start) }

// gram is the n-gram of the n tokens from i.
func (t *tokens) gram(i, n int) []byte { return t.buf[t.start[i]:t.end[i+n-1]] }

// asciiWord maps an ASCII byte to itself lower-cased when it belongs to a
// token (isWord) and to 0 when it separates tokens: one load instead of
// isWord and lower for the bytes most text is made of. Bytes >= 0x80
// (UTF-8 sequences, the Unicode path) map to 0 as well; 256 entries so
// that a byte index needs no bounds check.
const asciiWord = "" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"0123456789\x00\x00\x00\x00\x00\x00" +
	"\x00abcdefghijklmno" +
	"pqrstuvwxyz\x00\x00\x00\x00_" +
	"\x00abcdefghijklmno" +
	"pqrstuvwxyz\x00\x00\x00\x00\x00" +
	nonASCII

// nonASCII is the 128 zeros of asciiWord's upper half.
const nonASCII = "" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

func (t *tokens) closeToken(begin, base int) {
	if base >= MinTokenRunes {
		t.start = append(t.start, begin)
		t.end = append(t.end, len(t.buf))
		t.buf = append(t.buf, ' ')
	} else {
		t.buf = t.buf[:begin]
	}
}

// split tokenises doc into t, reusing its storage. Invalid UTF-8 bytes
// separate tokens (the dataset layer rejects invalid text before it gets
// here). Runs of ASCII word bytes are copied and lower-cased as a block;
// other runes take the Unicode path; both follow the same rules.
func (t *tokens) split(doc string) {
	t.reset()
	in := false // inside a run
	runes, base := 0, 0
	begin := 0
	for i := 0; i < len(doc); {
		if c := doc[i]; c < utf8.RuneSelf {
			if asciiWord[c] == 0 {
				i++
				if in {
					t.closeToken(begin, base)
					in = false
				}
				continue
			}
			if !in {
				in, runes, base, begin = true, 0, 0, len(t.buf)
			}
			// Copy and lower-case the run in one scan, up to the cap.
			room := MaxTokenRunes - runes
			at := len(t.buf)
			t.buf = slices.Grow(t.buf, room)
			out := t.buf[at : at+room]
			n := 0
			for ; i < len(doc); i++ {
				l := asciiWord[doc[i]]
				if l == 0 {
					break
				}
				if n < len(out) {
					out[n] = l
					n++
				}
			}
			t.buf = t.buf[:at+n]
			runes, base = runes+n, base+n
			continue
		}
		r, size := utf8.DecodeRuneInString(doc[i:])
		i += size
		if r == utf8.RuneError && size == 1 || !isWord(r) {
			if in {
				t.closeToken(begin, base)
				in = false
			}
			continue
		}
		if !in {
			in, runes, base, begin = true, 0, 0, len(t.buf)
		}
		if runes == MaxTokenRunes {
			continue
		}
		runes++
		if unicode.IsMark(r) {
			t.buf = utf8.AppendRune(t.buf, r)
			continue
		}
		base++
		t.buf = utf8.AppendRune(t.buf, lower(r))
	}
	if in {
		t.closeToken(begin, base)
	}
	if n := len(t.buf); n > 0 {
		t.buf = t.buf[:n-1] // the last separator
	}
}

// Tokens returns doc's tokens under the rules above, for tests, the
// documentation and clients that want to show what the model reads.
func Tokens(doc string) []string {
	var t tokens
	t.split(doc)
	out := make([]string, t.len())
	for i := range out {
		out[i] = string(t.gram(i, 1))
	}
	return out
}
