package gateway

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/workers/serve"
)

// instanceSchema is what decoding an instance needs from a definition,
// resolved once per dataset rather than per request.
type instanceSchema struct {
	def *dataset.Definition
	// cols are the names an instance may carry: the target, then every
	// column, dropped ones included (Definition.Lookup's set).
	cols  []dataset.Column
	index map[string]int // name -> position in cols
	kept  []int          // position in cols of each kept column, in Kept order
	// classes of a classification dataset, each as a JSON string, and
	// their indices in the order encoding/json writes a map's keys.
	classes    []string
	classJSON  [][]byte
	classOrder []int
}

func newInstanceSchema(d *dataset.Definition) *instanceSchema {
	s := &instanceSchema{def: d, index: map[string]int{}}
	for _, c := range append([]dataset.Column{d.Target}, d.Columns...) {
		s.index[c.Name] = len(s.cols)
		s.cols = append(s.cols, c)
	}
	for _, c := range d.Kept() {
		s.kept = append(s.kept, s.index[c.Name])
	}
	s.classes = d.Classes()
	for _, c := range s.classes {
		s.classJSON = append(s.classJSON, appendJSONString(nil, c))
	}
	for i := range s.classes {
		s.classOrder = append(s.classOrder, i)
	}
	slices.SortFunc(s.classOrder, func(a, b int) int { return strings.Compare(s.classes[a], s.classes[b]) })
	return s
}

// Slot states: what an instance said for a column.
const (
	slotAbsent = iota
	slotValue  // text[start:end] holds the value as a CSV would
	slotBadType
	slotBadBool // true or false for a column that is not a bool
	slotBadText // a text column's string that is not Unicode
)

type slot struct {
	start, end int
	state      uint8
}

// predictDecoder decodes a predict body, {"instances": [{column: value}]},
// straight into value texts per instance and column, then into rows. It
// accepts exactly what encoding/json into []map[string]any followed by
// instanceValues accepted (predict_decode_test.go checks it against that
// path), except that any second "instances" key and any byte after the
// document are refused. One is pooled per Server; its buffers are reused.
type predictDecoder struct {
	sc    jsonScanner
	body  []byte
	sch   *instanceSchema
	max   int    // instances kept; beyond it only counted
	slots []slot // per instance, len(sch.cols) slots
	text  []byte // every value's text, back to back
	n     int    // instances seen
	// order is the column of each key of the last instance (-1: unknown):
	// clients send their keys in the same order every time, so a string
	// comparison usually spares a map lookup.
	order []int
	// Errors in document order, as encoding/json reports the first type
	// error or unknown field once the whole document parsed.
	docErr  error
	instErr error // the first instance whose keys are wrong
	instAt  int

	fields []dataset.Field // one row's fields, reused per instance
	preds  []float64       // per instance: the value, or the class index
	probs  []float64       // per instance and class, for a classifier
	ends   []int
	ids    []predictionID
	out    []byte // the response
}

// readBody reads a bounded body into the decoder's buffer.
func (p *predictDecoder) readBody(w http.ResponseWriter, r *http.Request, limit int64) error {
	// Any Content-Type is read as JSON: `curl -d` sends form encoding.
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "multipart/") {
		return errorf(http.StatusUnsupportedMediaType, "Content-Type %q: send the JSON document as the body", ct)
	}
	if r.ContentLength > limit {
		return &http.MaxBytesError{Limit: limit}
	}
	body := p.body[:0]
	if n := r.ContentLength; n > 0 && int64(cap(body)) <= n {
		body = make([]byte, 0, n+1) // +1: room to read the EOF without growing
	}
	rd := http.MaxBytesReader(w, r.Body, limit)
	for {
		if len(body) == cap(body) {
			body = append(body, 0)[:len(body)]
		}
		n, err := rd.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			p.body = body
			var mbe *http.MaxBytesError
			var bte *errBodyTimeout
			var cge *errClientGone
			if errors.As(err, &mbe) || errors.As(err, &bte) || errors.As(err, &cge) {
				return err
			}
			return badRequest("", "reading the body: %v", err)
		}
	}
	p.body = body
	return checkBodyStart(body)
}

// decode parses p.body for sch. It returns the error a client gets; the
// instances are then p.n rows to build with row.
func (p *predictDecoder) decode(sch *instanceSchema, maxInstances int) error {
	if p.sch != sch {
		p.order = p.order[:0]
	}
	p.sch, p.max = sch, maxInstances
	p.slots, p.text, p.n = p.slots[:0], p.text[:0], 0
	p.docErr, p.instErr, p.instAt = nil, nil, 0
	p.sc.reset(p.body)
	if err := p.document(); err != nil {
		var se *jsonSyntaxError
		if errors.As(err, &se) {
			return badRequest("", "malformed JSON %v", se)
		}
		return err
	}
	if p.docErr != nil {
		return p.docErr
	}
	if !p.sc.atEnd() {
		return badRequest("", "malformed JSON: more than one value in the body (at byte %d)", p.sc.i)
	}
	switch {
	case p.n == 0:
		return badRequest("instances", "instances: want at least one instance")
	case p.n > maxInstances:
		return badRequest("instances", "instances: at most %d per request, got %d", maxInstances, p.n)
	}
	return nil
}

func (p *predictDecoder) document() error {
	s := &p.sc
	if s.atEnd() {
		return s.errorf("")
	}
	switch c := s.peek(); c {
	case 'n': // null decodes to no instances, as encoding/json leaves the request empty
		return s.literal("null")
	case '{':
		s.i++
	default:
		if err := s.skip(1); err != nil {
			return err
		}
		p.docErr = badRequest("", `request: want an object {"instances": [...]}, got %s`, jsonKind(c))
		return nil
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	seen := false
	for {
		key, err := s.objectKey()
		if err != nil {
			return err
		}
		// encoding/json matches struct fields case-insensitively.
		switch {
		case !bytes.EqualFold(key, []byte("instances")):
			if err := s.skip(2); err != nil {
				return err
			}
			p.keepDocErr(badRequest(string(key), "unknown field %q", key))
		case seen:
			// encoding/json would merge the two arrays' instances
			// index by index; no client means that.
			if err := s.skip(2); err != nil {
				return err
			}
			p.keepDocErr(badRequest("instances", "instances: given twice"))
		default:
			seen = true
			if err := p.instances(); err != nil {
				return err
			}
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.errorf("invalid character %q after object key:value pair", s.at())
		}
	}
}

func (p *predictDecoder) keepDocErr(err error) {
	if p.docErr == nil {
		p.docErr = err
	}
}

func (p *predictDecoder) instances() error {
	s := &p.sc
	switch c := s.peek(); c {
	case 'n':
		return s.literal("null")
	case '[':
		s.i++
	default:
		if err := s.skip(2); err != nil {
			return err
		}
		p.keepDocErr(badRequest("instances", `field "instances": want an array of objects, got %s`, jsonKind(c)))
		return nil
	}
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		switch c := s.peek(); c {
		case '{', 'n':
			if err := p.instance(); err != nil {
				return err
			}
		default:
			if err := s.skip(3); err != nil {
				return err
			}
			p.keepDocErr(badRequest("instances", `field "instances": want an object per instance, got %s`, jsonKind(c)))
		}
		p.n++
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.errorf("invalid character %q after array element", s.at())
		}
	}
}

// instance decodes one instance (an object, or null for an empty one)
// into its slots. As with a map, a repeated key's last value counts.
func (p *predictDecoder) instance() error {
	s := &p.sc
	keep := p.n < p.max
	var slots []slot
	if keep {
		start := len(p.slots)
		p.slots = append(p.slots, make([]slot, len(p.sch.cols))...)
		slots = p.slots[start:]
	}
	if s.at() == 'n' {
		return s.literal("null")
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return nil
	}
	var unknown, badUnknown []byte // the first unknown key, and one with an object or array value
	for k := 0; ; k++ {
		key, err := s.objectKey()
		if err != nil {
			return err
		}
		col, known := p.column(k, key)
		start := len(p.text)
		state := uint8(slotValue)
		switch c := s.peek(); {
		case c == '"':
			raw, plain, err := s.str()
			if err != nil {
				return err
			}
			if plain {
				p.text = append(p.text, raw...)
			} else {
				var valid bool
				p.text, valid = appendUnquoted(p.text, raw)
				// Other strings keep encoding/json's U+FFFD: a category
				// or an ID is checked by its own rules.
				if !valid && known && p.sch.cols[col].Type == dataset.TypeText {
					state = slotBadText
				}
			}
		case c == 't':
			if err := s.literal("true"); err != nil {
				return err
			}
			p.text = append(p.text, '1')
			if known && p.sch.cols[col].Type != dataset.TypeBool {
				state = slotBadBool
			}
		case c == 'f':
			if err := s.literal("false"); err != nil {
				return err
			}
			p.text = append(p.text, '0')
			if known && p.sch.cols[col].Type != dataset.TypeBool {
				state = slotBadBool
			}
		case c == 'n': // no value, as an empty CSV cell
			if err := s.literal("null"); err != nil {
				return err
			}
		case c == '-' || isDigit(c):
			num, err := s.num()
			if err != nil {
				return err
			}
			p.text = append(p.text, num...)
		case c == '{' || c == '[':
			if err := s.skip(4); err != nil {
				return err
			}
			state = slotBadType
		default:
			return s.errorf("invalid character %q looking for beginning of value", c)
		}
		switch {
		case keep && known:
			slots[col] = slot{start: start, end: len(p.text), state: state}
		case !known && unknown == nil:
			unknown = key
		}
		if !known && state == slotBadType && badUnknown == nil {
			badUnknown = key
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			if keep && p.instErr == nil {
				p.checkKeys(slots, unknown, badUnknown)
			}
			return nil
		default:
			return s.errorf("invalid character %q after object key:value pair", s.at())
		}
	}
}

// column resolves the k-th key of an instance to its position in
// p.sch.cols.
func (p *predictDecoder) column(k int, key []byte) (int, bool) {
	if k < len(p.order) {
		if col := p.order[k]; col >= 0 && p.sch.cols[col].Name == string(key) {
			return col, true
		}
	}
	col, known := p.sch.index[string(key)]
	if !known {
		col = -1
	}
	if k < len(p.order) {
		p.order[k] = col
	} else {
		p.order = append(p.order, col)
	}
	return col, known
}

// checkKeys records the instance's first error that does not depend on
// the column's rules: a value of the wrong JSON kind, then an unknown key
// (instanceValues' order).
func (p *predictDecoder) checkKeys(slots []slot, unknown, badUnknown []byte) {
	var err error
	for i, sl := range slots {
		if sl.state == slotBadType {
			name := p.sch.cols[i].Name
			err = badRequest(name, "field %q: want a number, string or boolean", name)
			break
		}
		if sl.state == slotBadBool {
			_, err = dataset.JSONBool(p.sch.cols[i], p.text[sl.start] == '1')
			break
		}
		if sl.state == slotBadText {
			name := p.sch.cols[i].Name
			err = badRequest(name, "field %q: not valid UTF-8 (an invalid byte, or an unpaired \\uD800-\\uDFFF escape)", name)
			break
		}
	}
	switch {
	case err != nil:
	case badUnknown != nil:
		err = badRequest(string(badUnknown), "field %q: want a number, string or boolean", badUnknown)
	case unknown != nil:
		err = badRequest(string(unknown), "unknown field %q", unknown)
	default:
		return
	}
	p.instErr, p.instAt = err, p.n
}

// rows validates each decoded instance against the dataset's columns, in
// order, and predicts it into p.preds. required[k] says whether kept column
// k must be present (the model reads it and it is not optional). It returns
// every instance's values for the prediction store, as offsets into text,
// instance i's ending at p.ends[i]: one string and one slice per request,
// shared by all instances, as the store keeps them.
//
// A classifier (m.Classifier set) predicts the class index into p.preds and
// each class's probability into p.probs, len(classes) per instance.
func (p *predictDecoder) rows(required []bool, m *serve.Serving) (text string, stored []storedField, err error) {
	if len(p.text) > math.MaxInt32 {
		return "", nil, errorf(http.StatusRequestEntityTooLarge, "instances: more than %d bytes of values", math.MaxInt32)
	}
	text = string(p.text)
	p.preds, p.probs, p.ends = p.preds[:0], p.probs[:0], p.ends[:0]
	present := 0
	for _, sl := range p.slots {
		if sl.state != slotAbsent {
			present++
		}
	}
	stored = make([]storedField, 0, present)
	for i := range p.n {
		if err := p.row(i, text, required); err != nil {
			return "", nil, err
		}
		row := dataset.Row{Fields: p.fields}
		if c := m.Classifier; c != nil {
			at := len(p.probs)
			p.probs = append(p.probs, make([]float64, len(p.sch.classes))...)
			p.preds = append(p.preds, float64(c.PredictClass(row, p.probs[at:])))
		} else {
			p.preds = append(p.preds, m.Predictor.Predict(row))
		}
		stored = p.appendValues(stored, i)
		p.ends = append(p.ends, len(stored))
	}
	return text, stored, nil
}

// row validates instance i into p.fields; text is p.text as a string.
func (p *predictDecoder) row(i int, text string, required []bool) error {
	if p.instErr != nil && i == p.instAt {
		return instanceError(i, p.instErr)
	}
	cols, d := p.sch.cols, p.sch.def
	p.fields = append(p.fields[:0], make([]dataset.Field, len(p.sch.kept))...)
	slots := p.slots[i*len(cols) : (i+1)*len(cols)]
	for k, ci := range p.sch.kept {
		sl, c := slots[ci], cols[ci]
		if sl.state == slotAbsent {
			if required[k] {
				return instanceError(i, badRequest(c.Name, "missing field %q", c.Name))
			}
			continue
		}
		f, err := d.ParseValue(c, text[sl.start:sl.end])
		if err != nil {
			return instanceError(i, err)
		}
		p.fields[k] = f
	}
	return nil
}

// appendValues appends where instance i's values are in the text
// (instanceValues' map, as a slice).
func (p *predictDecoder) appendValues(dst []storedField, i int) []storedField {
	cols := p.sch.cols
	for ci, sl := range p.slots[i*len(cols) : (i+1)*len(cols)] {
		if sl.state == slotValue {
			dst = append(dst, storedField{col: int32(ci), start: int32(sl.start), end: int32(sl.end)})
		}
	}
	return dst
}

// instanceError prefixes an instance's error with its position.
func instanceError(i int, err error) error {
	status, body := toStatus(err)
	return &apiError{status: status, msg: "instance " + strconv.Itoa(i) + ": " + body.Error, field: body.Field}
}
