package gateway

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers/serve"
)

// decodeTestDefinition has a column of each kind the decoder treats
// differently: optional and required numbers, an int, a bool, strings with
// rules, a dropped column, and a column the model does not read.
const decodeTestDefinition = `{
  "name": "tt", "task": "regression", "batch_size": 10, "test_fraction": 0.2,
  "target": {"name": "y", "type": "float"},
  "columns": [
    {"name": "when", "type": "string", "drop": true, "optional": true},
    {"name": "x", "type": "float", "min": -100, "max": 100},
    {"name": "n", "type": "int", "min": 0},
    {"name": "opt", "type": "float", "optional": true},
    {"name": "b", "type": "bool"},
    {"name": "s", "type": "string", "max_length": 8},
    {"name": "c", "type": "string", "choices": ["a", "b", "é"], "optional": true},
    {"name": "z", "type": "string", "pattern": "^[A-Z]{2}$"},
    {"name": "t", "type": "text", "max_length": 16, "optional": true}
  ],
  "models": [{"name": "mm", "kind": "linear", "features": [
    {"column": "x", "transform": "numeric"}, {"column": "n", "transform": "numeric"},
    {"column": "opt", "transform": "numeric"}, {"column": "b", "transform": "numeric"},
    {"column": "s", "transform": "hashed", "buckets": 4}, {"column": "c", "transform": "onehot"}]}]
}`

// decodeTestModelReads are the columns the served model reads: z is kept
// but not read, so it may be absent.
var decodeTestModelReads = []string{"x", "n", "opt", "b", "s", "c"}

const decodeTestMaxInstances = 4

func decodeTestSchema(t testing.TB) (*instanceSchema, []bool) {
	t.Helper()
	d, err := dataset.Parse([]byte(decodeTestDefinition))
	require.NoError(t, err)
	required := make([]bool, len(d.Kept()))
	for i, c := range d.Kept() {
		required[i] = !c.Optional && slices.Contains(decodeTestModelReads, c.Name)
	}
	return newInstanceSchema(d), required
}

// decoded is what a predict body turns into: a row and the values as text
// per instance, or the answer's error.
type decoded struct {
	rows   [][]dataset.Field
	values []map[string]string
	status int
	body   errorBody
}

// decodeNew runs the predict decoder.
func decodeNew(sch *instanceSchema, required []bool, body []byte) decoded {
	p := &predictDecoder{body: body}
	fail := func(err error) decoded {
		status, b := toStatus(err)
		return decoded{status: status, body: b}
	}
	if err := p.decode(sch, decodeTestMaxInstances); err != nil {
		return fail(err)
	}
	out := decoded{status: http.StatusOK}
	text := string(p.text)
	for i := range p.n {
		if err := p.row(i, text, required); err != nil {
			return fail(err)
		}
		out.rows = append(out.rows, slices.Clone(p.fields))
		values := map[string]string{}
		for _, f := range p.appendValues(nil, i) {
			values[sch.cols[f.col].Name] = text[f.start:f.end]
		}
		out.values = append(out.values, values)
	}
	return out
}

// decodeReference is the predict path before predictDecoder:
// encoding/json into []map[string]any through decodeJSON, then
// instanceValues per instance, validated like a CSV row.
func decodeReference(d *dataset.Definition, needed []string, body []byte) decoded {
	fail := func(err error) decoded {
		status, b := toStatus(err)
		return decoded{status: status, body: b}
	}
	var req struct {
		Instances []map[string]any `json:"instances"`
	}
	r := httptest.NewRequest(http.MethodPost, "/v1/models/tt:predict", bytes.NewReader(body))
	if err := decodeJSON(httptest.NewRecorder(), r, 1<<20, &req); err != nil {
		return fail(err)
	}
	if len(req.Instances) == 0 {
		return fail(badRequest("instances", "instances: want at least one instance"))
	}
	if len(req.Instances) > decodeTestMaxInstances {
		return fail(badRequest("instances", "instances: at most %d per request, got %d", decodeTestMaxInstances, len(req.Instances)))
	}
	var raw struct {
		Instances []map[string]json.RawMessage `json:"instances"`
	}
	_ = json.Unmarshal(body, &raw) // decoded above: only the strings' tokens are wanted
	out := decoded{status: http.StatusOK}
	for i, inst := range req.Instances {
		row := dataset.Row{Fields: make([]dataset.Field, len(d.Kept()))}
		var err error
		if i < len(raw.Instances) {
			err = referenceText(d, inst, raw.Instances[i])
		}
		if err == nil {
			err = referenceInstanceRow(d, inst, needed, &row)
		}
		if err != nil {
			status, b := toStatus(err)
			b.Error = "instance " + strconv.Itoa(i) + ": " + b.Error
			return decoded{status: status, body: b}
		}
		values, _ := instanceValues(inst)
		out.rows = append(out.rows, row.Fields)
		out.values = append(out.values, values)
	}
	return out
}

// referenceText refuses a text column's string that encoding/json had to
// repair (U+FFFD it did not read in the document): the rule the decoder
// adds for text.
func referenceText(d *dataset.Definition, inst map[string]any, raw map[string]json.RawMessage) error {
	for name, v := range inst {
		c, ok := d.Lookup(name)
		s, isString := v.(string)
		tok := raw[name]
		if !ok || c.Type != dataset.TypeText || !isString || len(tok) < 2 {
			continue
		}
		if strings.Count(s, "\uFFFD") != replacementsWanted(string(tok[1:len(tok)-1])) {
			return badRequest(name, "field %q: not valid UTF-8", name)
		}
	}
	return nil
}

// referenceInstanceRow is the gateway's instanceRow before predictDecoder.
func referenceInstanceRow(d *dataset.Definition, inst map[string]any, needed []string, row *dataset.Row) error {
	if err := checkBooleans(d, inst); err != nil {
		return err
	}
	values, err := instanceValues(inst)
	if err != nil {
		return err
	}
	for name := range values {
		if _, ok := d.Lookup(name); !ok {
			return badRequest(name, "unknown field %q", name)
		}
	}
	clear(row.Fields)
	for i, c := range d.Kept() {
		raw, present := values[c.Name]
		if !present {
			if slices.Contains(needed, c.Name) && !c.Optional {
				return badRequest(c.Name, "missing field %q", c.Name)
			}
			continue
		}
		f, err := d.ParseValue(c, raw)
		if err != nil {
			return err
		}
		row.Fields[i] = f
	}
	return nil
}

// refusedOnPurpose reports the bodies the new decoder refuses although
// encoding/json took them: bytes after the document (json.Decoder.More
// stops at a ']' or '}'), and "instances" given twice (encoding/json merges
// the arrays index by index).
func refusedOnPurpose(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	var v any
	if err := dec.Decode(&v); err != nil {
		return false
	}
	if len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) > 0 {
		return true
	}
	dec = json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	seen := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if bytes.EqualFold([]byte(tok.(string)), []byte("instances")) {
			seen++
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	return seen > 1
}

func sameFields(a, b []dataset.Field) bool {
	return slices.EqualFunc(a, b, func(x, y dataset.Field) bool {
		return x.Str == y.Str && (x.Num == y.Num || math.IsNaN(x.Num) && math.IsNaN(y.Num))
	})
}

// predictDecodeSeeds are valid and invalid bodies for the fuzzer and the
// table test's cross-check.
var predictDecodeSeeds = []string{
	`{"instances":[{"x":1.5,"n":3,"b":true,"s":"hi","z":"WA"}]}`,
	`{"instances":[{"x":"1.5","n":"3","b":"yes","s":"hi","opt":null,"c":"é"},{"x":-0,"n":0,"b":false,"s":"","when":"today","y":"junk"}]}`,
	` {"instances" : [ {"x":1e2,"n":2E+1,"b":1,"s":"a\u00e9\ud83d\ude00"} ] } `,
	`{"INSTANCES":[{"x":1,"n":1,"b":0,"s":"x"}]}`,
	`{"instanceſ":[{"x":1,"n":1,"b":0,"s":"x"}]}`,
	`{"instances":[null]}`,
	`{"instances":[{"x":1,"n":1,"b":0,"s":"x","x":"bad"}]}`,
	`{"instances":[{"x":{},"n":1,"b":0,"s":"x","x":2}]}`,
	`{"instances":[{"x":1,"n":1.5,"b":0,"s":"x"}]}`,
	`{"instances":[{"x":1,"n":1,"b":0,"s":"x","what":1}]}`,
	`{"instances":[{"x":1,"n":1,"b":0,"s":"x","what":[1,{"a":null}]}]}`,
	`{"instances":[{"x":1,"n":1,"b":0}]}`,
	`{"instances":[{"x":1e400,"n":1,"b":0,"s":"x"}]}`,
	`{"instances":[{"x":1,"n":1,"b":0,"s":"toolongvalue"}]}`,
	`{"instances":[{"x":1,"n":1,"b":0,"s":"\u0000"}]}`,
	"{\"instances\":[{\"x\":1,\"n\":1,\"b\":0,\"s\":\"\xff\"}]}",
	`{"instances":[{"x":1,"n":1,"b":0,"s":"x"}],"instances":[{"c":"a"}]}`,
	`{"instances":[{"x":1,"n":1,"b":0,"s":"x"}]}}`,
	`{"instances":[{"x":1,"n":1,"b":0,"s":"x"}]} x`,
	"{\"instances\":[{\"x\":1,\"n\":1,\"b\":0,\"s\":\"x\"}]}\x00",
	"\x00",
	`{"instances":[{}]}`,
	`{"instances":[]}`,
	`{"instances":null}`,
	`{}`,
	`null`,
	`[{"x":1}]`,
	`{"instances":5}`,
	`{"instances":[5]}`,
	`{"instances":[{"x":1}],"extra":true}`,
	`{"instances":[{},{},{},{},{}]}`,
	`{"instances":[{"x":01}]}`,
	`{"instances":[{"x":1.}]}`,
	`{"instances":[{"x":-}]}`,
	`{"instances":[{"x":tru}]}`,
	`{"instances":[{"x":"\x"}]}`,
	`{"instances":[{"x":"\u12G4"}]}`,
	`{"instances":[{"x" 1}]}`,
	`{"instances":[{"x":1,}]}`,
	`{"instances":[{"x":1}`,
	``,
	`{"instances":[{"x":1,"n":1,"b":0,"s":"x","z":"wa"}]}`,
	`{"instances":[{"x":1,"n":1,"b":0,"s":"x","c":"d"}]}`,
	`{"instances":[{"x":" 7 ","n":"1e1","b":"TRUE","s":" sp "}]}`,
	`{"instances":[{"x":true,"n":1,"b":0,"s":"x"}]}`,
	`{"instances":[{"x":1,"n":1,"b":0,"s":false,"pool":true}]}`,
	`{"instances":[{"x":1,"n":1,"b":0,"s":"x","pool":true}]}`,
	`{"instances":[{"x":1,"n":1,"b":0,"s":"x","t":"<script>\"q\"\n</script>"}]}`,
	`{"instances":[{"x":1,"n":1,"b":0,"s":"x","t":"\ud83d\ude00 ok"}]}`,
	`{"instances":[{"x":1,"n":1,"b":0,"s":"x","t":"\ud83d alone"}]}`,
	"{\"instances\":[{\"x\":1,\"n\":1,\"b\":0,\"s\":\"x\",\"t\":\"bad \xff\"}]}",
	`{"instances":[{"x":1,"n":1,"b":0,"s":"x","t":"seventeen bytes.."}]}`,
	`{"instances":[{"x":1,"n":1,"b":0,"s":"x","t":"\ufffd kept"}]}`,
	`{"instances":[{"x":1,"n":1,"b":0,"s":"x","t":12}]}`,
}

func FuzzPredictDecode(f *testing.F) {
	for _, s := range predictDecodeSeeds {
		f.Add([]byte(s))
	}
	sch, required := decodeTestSchema(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		want := decodeReference(sch.def, decodeTestModelReads, body)
		got := decodeNew(sch, required, body)
		if refusedOnPurpose(body) {
			if got.status != http.StatusBadRequest {
				t.Fatalf("%q: status %d, want 400 (refused on purpose)", body, got.status)
			}
			return
		}
		if got.status != want.status {
			t.Fatalf("%q: status %d (%+v), encoding/json's path %d (%+v)", body, got.status, got.body, want.status, want.body)
		}
		if want.status != http.StatusOK {
			wantAt, _, _ := strings.Cut(want.body.Error, ":")
			gotAt, _, _ := strings.Cut(got.body.Error, ":")
			if strings.HasPrefix(want.body.Error, "instance ") && gotAt != wantAt {
				t.Fatalf("%q: error %q, encoding/json's path %q", body, got.body.Error, want.body.Error)
			}
			return
		}
		if len(got.rows) != len(want.rows) {
			t.Fatalf("%q: %d rows, want %d", body, len(got.rows), len(want.rows))
		}
		for i := range want.rows {
			if !sameFields(got.rows[i], want.rows[i]) {
				t.Fatalf("%q: instance %d: row %v, want %v", body, i, got.rows[i], want.rows[i])
			}
			if !maps.Equal(got.values[i], want.values[i]) {
				t.Fatalf("%q: instance %d: values %q, want %q", body, i, got.values[i], want.values[i])
			}
		}
	})
}

func TestPredictDecodeErrors(t *testing.T) {
	sch, required := decodeTestSchema(t)
	const ok = `"x":1,"n":1,"b":0,"s":"x"`
	tests := []struct {
		name, body string
		status     int
		field      string
		contains   string
	}{
		{"empty body", ``, 400, "", "malformed JSON at byte 0: unexpected end"},
		{"truncated", `{"instances":[{` + ok, 400, "", "unexpected end"},
		{"bad token", `{"instances":[{"x":tru}]}`, 400, "", `at byte 22: invalid character '}' in literal true`},
		{"leading zero", `{"instances":[{"x":01}]}`, 400, "", "malformed JSON at byte 20"},
		{"bare decimal point", `{"instances":[{"x":1.}]}`, 400, "", "after decimal point"},
		{"bad escape", `{"instances":[{"s":"\x"}]}`, 400, "", "string escape code"},
		{"bad unicode escape", `{"instances":[{"s":"\u12G4"}]}`, 400, "", "hexadecimal"},
		{"control character in a string", "{\"instances\":[{\"s\":\"a\nb\"}]}", 400, "", "in string literal"},
		{"trailing comma", `{"instances":[{"x":1,}]}`, 400, "", "beginning of object key"},
		{"trailing garbage", `{"instances":[{` + ok + `}]} x`, 400, "", "more than one value"},
		{"trailing brace", `{"instances":[{` + ok + `}]}}`, 400, "", "more than one value"},
		{"trailing NUL", `{"instances":[{` + ok + `}]}` + "\x00", 400, "", "more than one value"},
		{"NUL", "\x00", 400, "", "at byte 0: invalid character '\\x00' looking for beginning of value"},
		{"second document", `{"instances":[{` + ok + `}]}{}`, 400, "", "more than one value"},
		{"too deep", `{"instances":[{"x":` + strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth) + `}]}`, 400, "", "exceeded max depth"},
		{"not an object", `[{"x":1}]`, 400, "", "want an object"},
		{"unknown top-level key", `{"instance":[{` + ok + `}]}`, 400, "instance", `unknown field "instance"`},
		{"instances twice", `{"instances":[{` + ok + `}],"Instances":[{` + ok + `}]}`, 400, "instances", "given twice"},
		{"instances not an array", `{"instances":{}}`, 400, "instances", "want an array of objects, got object"},
		{"an instance not an object", `{"instances":[{` + ok + `},"x"]}`, 400, "instances", "want an object per instance, got string"},
		{"null body", `null`, 400, "instances", "at least one"},
		{"no instances", `{"instances":[]}`, 400, "instances", "at least one"},
		{"null instances", `{"instances":null}`, 400, "instances", "at least one"},
		{"too many instances", `{"instances":[{},{},{},{},{}]}`, 400, "instances", "at most 4 per request, got 5"},
		{"unknown field", `{"instances":[{` + ok + `},{` + ok + `,"pool":1}]}`, 400, "pool", `instance 1: unknown field "pool"`},
		{"nested value", `{"instances":[{` + ok + `,"s":{"a":1}}]}`, 400, "s", `instance 0: field "s": want a number, string or boolean`},
		{"nested value of an unknown field", `{"instances":[{` + ok + `,"pool":[]}]}`, 400, "pool", `want a number, string or boolean`},
		{"missing field", `{"instances":[{"x":1,"n":1,"b":0}]}`, 400, "s", `instance 0: missing field "s"`},
		{"null for a required field", `{"instances":[{` + ok + `,"x":null}]}`, 400, "x", "instance 0: x: missing value"},
		{"wrong type", `{"instances":[{` + ok + `,"x":"three"}]}`, 400, "x", `instance 0: x: "three" is not a number`},
		{"not a whole number", `{"instances":[{` + ok + `,"n":1.5}]}`, 400, "n", "not a whole number"},
		{"overflow", `{"instances":[{` + ok + `,"x":1e400}]}`, 400, "x", "instance 0: x: 1e400 overflows a 64-bit float"},
		{"a boolean for a number", `{"instances":[{` + ok + `,"x":true}]}`, 400, "x", "instance 0: x: true is a boolean; want a number"},
		{"a boolean for a whole number", `{"instances":[{` + ok + `,"n":false}]}`, 400, "n", "instance 0: n: false is a boolean; want a whole number"},
		{"a boolean for a string", `{"instances":[{` + ok + `,"s":true}]}`, 400, "s", "instance 0: s: true is a boolean; want a string"},
		{"a boolean for a dropped column", `{"instances":[{` + ok + `,"when":true}]}`, 400, "when", "boolean"},
		{"a boolean for the target", `{"instances":[{` + ok + `,"y":true}]}`, 400, "y", "boolean"},
		{"not a boolean", `{"instances":[{` + ok + `,"b":"maybe"}]}`, 400, "b", "not a boolean"},
		{"not a choice", `{"instances":[{` + ok + `,"c":"d"}]}`, 400, "c", "not one of the allowed values"},
		{"pattern", `{"instances":[{` + ok + `,"z":"wa"}]}`, 400, "z", "does not match"},
		{"text: invalid UTF-8", "{\"instances\":[{" + ok + ",\"t\":\"bad \xff\"}]}", 400, "t", `instance 0: field "t": not valid UTF-8`},
		{"text: an unpaired surrogate", `{"instances":[{` + ok + `,"t":"\ud83d alone"}]}`, 400, "t", `instance 0: field "t": not valid UTF-8`},
		{"text: a low surrogate first", `{"instances":[{` + ok + `},{` + ok + `,"t":"\ude00\ud83d"}]}`, 400, "t", `instance 1: field "t": not valid UTF-8`},
		{"text: over max_length", `{"instances":[{` + ok + `,"t":"seventeen bytes.."}]}`, 400, "t", "instance 0: t: text of 17 bytes is longer than max_length 16"},
		{"text: over max_length in bytes", `{"instances":[{` + ok + `,"t":"ééééééééé"}]}`, 400, "t", "text of 18 bytes"},
		{"first bad instance wins", `{"instances":[{` + ok + `},{"x":500},{"pool":1}]}`, 400, "x", "instance 1: x: 500 is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeNew(sch, required, []byte(tt.body))
			require.Equal(t, tt.status, got.status, got.body.Error)
			require.Contains(t, got.body.Error, tt.contains)
			require.Equal(t, tt.field, got.body.Field)
		})
	}
}

func TestPredictDecodeValues(t *testing.T) {
	sch, required := decodeTestSchema(t)
	nan := math.NaN()
	tests := []struct {
		name   string
		body   string
		rows   [][]dataset.Field // x, n, opt, b, s, c, z, t
		values []map[string]string
	}{
		{"every kind",
			`{"instances":[{"x":-1.5e1,"n":"3","opt":null,"b":true,"s":" hi ","c":"é","z":"WA","when":"today","y":"anything"}]}`,
			[][]dataset.Field{{{Num: -15}, {Num: 3}, {Num: nan}, {Num: 1}, {Str: "hi"}, {Str: "é"}, {Str: "WA"}, {}}},
			[]map[string]string{{"x": "-1.5e1", "n": "3", "opt": "", "b": "1", "s": " hi ", "c": "é", "z": "WA", "when": "today", "y": "anything"}}},
		{"absent optional and unread columns stay zero",
			`{"instances":[{"x":0,"n":0,"b":"no","s":"a"}]}`,
			[][]dataset.Field{{{}, {}, {}, {}, {Str: "a"}, {}, {}, {}}},
			[]map[string]string{{"x": "0", "n": "0", "b": "no", "s": "a"}}},
		{"escapes, a later key wins, case-folded top-level key",
			`{"Instances":[{"x":{"no":1},"x":"\u0032","n":1,"b":false,"s":"\ud83d\ude00\n"}]}`,
			[][]dataset.Field{{{Num: 2}, {Num: 1}, {}, {}, {Str: "😀"}, {}, {}, {}}},
			[]map[string]string{{"x": "2", "n": "1", "b": "0", "s": "😀\n"}}},
		{"hostile text arrives whole",
			`{"instances":[{"x":1,"n":1,"b":0,"s":"x","t":"<b>\"q\",\n\ud83d\ude00"}]}`,
			[][]dataset.Field{{{Num: 1}, {Num: 1}, {}, {}, {Str: "x"}, {}, {}, {Str: "<b>\"q\",\n😀"}}},
			[]map[string]string{{"x": "1", "n": "1", "b": "0", "s": "x", "t": "<b>\"q\",\n😀"}}},
		{"invalid UTF-8 becomes U+FFFD",
			"{\"instances\":[{\"x\":1,\"n\":1,\"b\":0,\"s\":\"a\xffb\"}]}",
			[][]dataset.Field{{{Num: 1}, {Num: 1}, {}, {}, {Str: "a\uFFFDb"}, {}, {}, {}}},
			[]map[string]string{{"x": "1", "n": "1", "b": "0", "s": "a\uFFFDb"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeNew(sch, required, []byte(tt.body))
			require.Equal(t, http.StatusOK, got.status, got.body.Error)
			require.Len(t, got.rows, len(tt.rows))
			for i := range tt.rows {
				require.True(t, sameFields(tt.rows[i], got.rows[i]), "row %v, want %v", got.rows[i], tt.rows[i])
			}
			require.Equal(t, tt.values, got.values)
			want := decodeReference(sch.def, decodeTestModelReads, []byte(tt.body))
			require.Equal(t, want.values, got.values, "as encoding/json's path")
		})
	}
}

func TestPredictResponseIsEncodingJSONs(t *testing.T) {
	s := &serve.Serving{Promotion: registry.Promotion{Dataset: "housing", Sequence: 7, RunID: "run<&>", Spec: "linear-onehot",
		Version: 3, VersionHash: "abc", Checksum: "sha256:00", PromotedAt: time.Date(2026, 11, 23, 11, 0, 0, 123, time.UTC)}}
	ids := []predictionID{{1, 2, 3, 4, 5, 6, 0x47, 8, 0x89, 10, 11, 12, 13, 14, 15, 16}, {}}
	for _, preds := range [][]float64{
		{480000, 1234567.5, math.Copysign(0, -1), 0, 1e-7, 1e21, 123456789012345678, 5e-324, math.MaxFloat64, 0.1, -2.5e-9},
		{1},
	} {
		ids := ids[:min(len(ids), len(preds))]
		var want bytes.Buffer
		strIDs := make([]string, len(ids))
		for i, id := range ids {
			strIDs[i] = id.String()
		}
		require.NoError(t, json.NewEncoder(&want).Encode(predictResponse{Predictions: preds, PredictionIDs: strIDs, Model: s.Info()}))
		got := appendPredictResponse(nil, preds, ids, s.InfoJSON())
		require.Equal(t, want.String(), string(got))
	}
}

func TestCheckFinite(t *testing.T) {
	tests := []struct {
		preds []float64
		ok    bool
	}{
		{[]float64{1, -1e308, 0}, true},
		{[]float64{1, math.NaN()}, false},
		{[]float64{math.Inf(1)}, false},
		{[]float64{math.Inf(-1)}, false},
	}
	for _, tt := range tests {
		err := checkFinite(tt.preds)
		require.Equal(t, tt.ok, err == nil, "%v: %v", tt.preds, err)
		if err != nil {
			status, _ := toStatus(err)
			require.Equal(t, http.StatusInternalServerError, status)
		}
	}
}
