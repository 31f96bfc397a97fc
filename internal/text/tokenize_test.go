package text

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestTokens(t *testing.T) {
	long := strings.Repeat("ab", 50) // 100 runes
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"empty", "", []string{}},
		{"only separators", " \t\n,.;!?…—", []string{}},
		{"lower-cases ASCII", "A GREAT Movie", []string{"great", "movie"}},
		{"drops one-character words", "I saw a film", []string{"saw", "film"}},
		{"punctuation splits", "don't,stop;believing!(ok)", []string{"don", "stop", "believing", "ok"}},
		{"quotes and newlines", "\"Loved it\"\r\nwould\twatch again", []string{"loved", "it", "would", "watch", "again"}},
		{"html is punctuation", "<script>alert(1)</script>", []string{"script", "alert", "script"}},
		{"numbers are tokens", "10/10, 3.5 stars in 2015", []string{"10", "10", "stars", "in", "2015"}},
		{"underscore joins", "snake_case __init__", []string{"snake_case", "__init__"}},
		{"accents (precomposed)", "Café NAÏVE déjà-vu", []string{"café", "naïve", "déjà", "vu"}},
		{"accents (combining marks stay in the token)", "Cafe\u0301 e\u0301", []string{"cafe\u0301"}},
		{"german sharp s is kept, not folded", "Straße GROSS", []string{"straße", "gross"}},
		{"greek, no final-sigma rule", "ΟΔΥΣΣΕΥΣ Καλή ταινία", []string{"οδυσσευσ", "καλή", "ταινία"}},
		{"cyrillic", "Очень ХОРОШО", []string{"очень", "хорошо"}},
		{"turkish dotted capital I", "İSTANBUL", []string{"istanbul"}},
		{"turkish dotless i is its own letter", "ılık IŞIK", []string{"ılık", "işik"}},
		{"cjk runs are one token", "我喜欢这部电影。很好", []string{"我喜欢这部电影", "很好"}},
		{"japanese mixed scripts", "映画はすごい！", []string{"映画はすごい"}},
		{"emoji separate", "great👍movie 😀😀 👍🏽ok", []string{"great", "movie", "ok"}},
		{"superscripts and other numbers", "x² Ⅻ", []string{"x²"}},
		{"arabic digits", "٣٤٥ ok", []string{"٣٤٥", "ok"}},
		{"invalid utf-8 separates", "bad\xffbyte", []string{"bad", "byte"}},
		{"very long token is capped", long + " end", []string{long[:MaxTokenRunes], "end"}},
		{"long multibyte token capped in runes", strings.Repeat("é", 70), []string{strings.Repeat("é", MaxTokenRunes)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Tokens(tt.doc)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Tokens(%q) = %q, want %q", tt.doc, got, tt.want)
			}
		})
	}
}

func TestTokensReuseBuffer(t *testing.T) {
	var tk tokens
	tk.split("first document here")
	tk.split("x yz")
	if tk.len() != 1 || string(tk.gram(0, 1)) != "yz" || string(tk.buf) != "yz" {
		t.Fatalf("after reuse: %d tokens, buf %q", tk.len(), tk.buf)
	}
	tk.split("one two three")
	if got := string(tk.gram(0, 3)); got != "one two three" {
		t.Fatalf("trigram %q", got)
	}
	if got := string(tk.gram(1, 2)); got != "two three" {
		t.Fatalf("bigram %q", got)
	}
}

func TestTokenizeAllocs(t *testing.T) {
	var tk tokens
	doc := strings.Repeat("A long review, with Ünïcödé and 10 words! ", 20)
	tk.split(doc)
	if n := testing.AllocsPerRun(100, func() { tk.split(doc) }); n != 0 {
		t.Fatalf("%v allocations per document once the buffer has grown", n)
	}
}

func TestASCIITableMatchesRules(t *testing.T) {
	for c := rune(0); c < 256; c++ {
		want := byte(0)
		if c < utf8.RuneSelf && isWord(c) {
			want = byte(lower(c))
		}
		if got := asciiWord[c]; got != want {
			t.Errorf("asciiWord[%q] = %q, want %q", c, got, want)
		}
	}
}

// runeTokens is the tokeniser rune by rune, the rules as written: the
// oracle for split's ASCII fast path.
func runeTokens(doc string) []string {
	var out []string
	var cur []byte
	in, runes, base := false, 0, 0
	flush := func() {
		if in && base >= MinTokenRunes {
			out = append(out, string(cur))
		}
		in, cur = false, cur[:0]
	}
	for i := 0; i < len(doc); {
		r, size := utf8.DecodeRuneInString(doc[i:])
		i += size
		if r == utf8.RuneError && size == 1 || !isWord(r) {
			flush()
			continue
		}
		if !in {
			in, runes, base = true, 0, 0
		}
		if runes == MaxTokenRunes {
			continue
		}
		runes++
		if r >= utf8.RuneSelf && unicode.IsMark(r) {
			cur = utf8.AppendRune(cur, r)
			continue
		}
		base++
		cur = utf8.AppendRune(cur, lower(r))
	}
	flush()
	return out
}

func TestSplitMatchesRuneByRune(t *testing.T) {
	// Pieces that meet at every kind of boundary: ASCII runs, capitals,
	// marks, non-ASCII letters, separators, invalid bytes, long runs.
	pieces := []string{"a", "B", "zz", "Q9", "_", " ", ",", "'", "\n", "é", "É", "e\u0301", "\u0301", "ß", "İ",
		"Ω", "最悪", "👍", "٣", "²", "\xff", "\xe2\x82", strings.Repeat("x", 63), strings.Repeat("Y", 65), strings.Repeat("é", 40)}
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	var tk tokens
	for range 20000 {
		b.Reset()
		for range r.IntN(12) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		doc := b.String()
		tk.split(doc)
		got := make([]string, tk.len())
		for i := range got {
			got[i] = string(tk.gram(i, 1))
		}
		if want := runeTokens(doc); !slices.Equal(got, want) {
			t.Fatalf("split(%q) = %q, rune by rune %q", doc, got, want)
		}
	}
}
