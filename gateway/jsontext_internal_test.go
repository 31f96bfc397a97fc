package gateway

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers/serve"
)

// hostileTexts are string contents (as they appear between quotes in a
// JSON document) that a review may carry.
var hostileTexts = []string{
	``, `plain`, `<script>alert(\"x\")</script>`, `a \"quoted\" word`, `line one\nline two\r\n\ttab`,
	`\u003cb\u003ebold\u003c/b\u003e &amp; \u0026`, `caf\u00e9 na\u00EFve`, `\ud83d\ude00 grin`, "raw é and 😀",
	`\ud83d alone`, `\ude00 low alone`, `\ud83d\u0041`, `\ud83d\ud83d\ude00`, "bad \xff byte", "\xc3", "\xed\xa0\x80",
	`\\ud83d not an escape`, `\\\ud83d\ude00`, `\/slash \b\f`, "\u2028\u2029 separators", `\ufffd kept`, "\xef\xbf\xbd kept",
	"\x7f del", `\u0000 nul`, strings.Repeat(`ab\"`, 200),
}

// replacementsWanted counts the U+FFFD a string content holds on
// purpose: encoded as UTF-8 or as the escape \ufffd.
func replacementsWanted(raw string) int {
	n := 0
	for _, tok := range regexp.MustCompile(`\\u[0-9a-fA-F]{4}|\\.|[^\\]+`).FindAllString(raw, -1) {
		switch {
		case strings.EqualFold(tok, `\ufffd`):
			n++
		case !strings.HasPrefix(tok, `\`):
			n += strings.Count(tok, "\uFFFD")
		}
	}
	return n
}

// TestUnquoteIsEncodingJSONs checks the decoder's strings against
// encoding/json byte for byte, and its verdict on validity against the
// replacements encoding/json made.
func TestUnquoteIsEncodingJSONs(t *testing.T) {
	for _, raw := range hostileTexts {
		var want string
		require.NoError(t, json.Unmarshal([]byte(`"`+raw+`"`), &want), "%q", raw)
		s := jsonScanner{}
		s.reset([]byte(`"` + raw + `"`))
		tok, plain, err := s.str()
		require.NoError(t, err)
		got, valid := appendUnquoted([]byte("prefix"), tok)
		require.Equal(t, "prefix"+want, string(got), "%q", raw)
		wantValid := strings.Count(want, "\uFFFD") == replacementsWanted(raw)
		require.Equal(t, wantValid, valid, "%q", raw)
		if plain {
			require.Equal(t, want, string(tok), "%q: plain", raw)
		}
	}
}

func FuzzUnquote(f *testing.F) {
	for _, s := range hostileTexts {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var want string
		if json.Unmarshal([]byte(`"`+raw+`"`), &want) != nil {
			return
		}
		s := jsonScanner{}
		s.reset([]byte(`"` + raw + `"`))
		tok, _, err := s.str()
		if err != nil || s.i != len(raw)+2 {
			return // a quote inside: not one string
		}
		got, valid := appendUnquoted(nil, tok)
		if string(got) != want {
			t.Fatalf("%q: %q, encoding/json %q", raw, got, want)
		}
		if wantValid := strings.Count(want, "\uFFFD") == replacementsWanted(raw); valid != wantValid {
			t.Fatalf("%q: valid %t, want %t", raw, valid, wantValid)
		}
	})
}

func TestAppendJSONStringIsEncodingJSONs(t *testing.T) {
	for _, raw := range hostileTexts {
		var s string
		require.NoError(t, json.Unmarshal([]byte(`"`+raw+`"`), &s))
		for _, v := range []string{s, raw} { // decoded, and the raw bytes as a string
			want, err := json.Marshal(v)
			require.NoError(t, err)
			require.Equal(t, string(want), string(appendJSONString(nil, v)), "%q", v)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range hostileTexts {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: %s, encoding/json %s", s, got, want)
		}
	})
}

func TestClassifyResponseIsEncodingJSONs(t *testing.T) {
	s := &serve.Serving{Promotion: registry.Promotion{Dataset: "d", Sequence: 2, RunID: "r", Spec: "logistic",
		Version: 1, Checksum: "sha256:00", PromotedAt: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}}
	ids := []predictionID{{1, 2, 3, 4, 5, 6, 0x47, 8, 0x89, 10, 11, 12, 13, 14, 15, 16}, {9}}
	for _, classes := range [][]string{
		{"negative", "positive"},
		{"zebra", "Apple", "<b>&\"q\"</b>", "é", "line\nbreak"}, // not in sorted order, and hostile
	} {
		d, err := dataset.Parse([]byte(`{"name": "dd", "task": "classification", "batch_size": 10, "test_fraction": 0.2,
			"target": {"name": "y", "type": "string", "choices": ` + mustJSON(t, classes) + `},
			"columns": [{"name": "t", "type": "text"}],
			"models": [{"name": "logistic", "kind": "logistic", "features": [{"column": "t", "transform": "text"}]}]}`))
		require.NoError(t, err)
		sch := newInstanceSchema(d)
		k := len(classes)
		preds := []float64{float64(k - 1), 0}
		probs := make([]float64, 2*k)
		for i := range probs {
			probs[i] = []float64{0.08, 0.92, 1e-9, 1, 0, 0.3333333333333333}[i%6]
		}
		var want bytes.Buffer
		out := classifyResponse{Model: s.Info()}
		for i := range preds {
			out.Predictions = append(out.Predictions, classes[int(preds[i])])
			m := map[string]float64{}
			for j, c := range classes {
				m[c] = probs[i*k+j]
			}
			out.Probabilities = append(out.Probabilities, m)
			out.PredictionIDs = append(out.PredictionIDs, ids[i].String())
		}
		require.NoError(t, json.NewEncoder(&want).Encode(out))
		got := appendClassifyResponse(nil, sch, preds, probs, ids, s.InfoJSON())
		require.Equal(t, want.String(), string(got))
	}
}

func TestCheckClasses(t *testing.T) {
	require.NoError(t, checkClasses([]float64{0, 1}, []float64{0.5, 0.5, 0.1, 0.9}, 2))
	for _, bad := range []struct{ preds, probs []float64 }{
		{[]float64{2}, []float64{0.5, 0.5}},
		{[]float64{-1}, []float64{0.5, 0.5}},
		{[]float64{0}, []float64{math.NaN(), 0.5}},
	} {
		err := checkClasses(bad.preds, bad.probs, 2)
		require.Error(t, err)
		status, _ := toStatus(err)
		require.Equal(t, 500, status)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
