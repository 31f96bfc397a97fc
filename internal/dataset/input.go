package dataset

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// InputOptions tunes NewInputReader.
type InputOptions struct {
	// MaxRecordBytes caps one record (default 64 KiB plus the text
	// columns' max_length, so an over-long text is rejected by name).
	// Longer records are skipped without being held in memory and rejected.
	MaxRecordBytes int
	// ReuseFields makes every row Next returns share one Fields slice,
	// valid until the next call, for a caller that copies the values
	// anyway (staging copies them into batches it recycles): no
	// allocation per row for the fields.
	ReuseFields bool
}

// Rejected is one row that was not accepted.
type Rejected struct {
	Line   int    // physical line of the record's first line (header is 1)
	Reason string // e.g. "price: missing value"
	Record string // raw text, clipped to 1 KiB
	// Lines is how many physical lines the record spans: more than one
	// when a quoted field holds line breaks, or an unbalanced quote
	// swallowed the lines after it.
	Lines int
}

// FileError means the whole file is unusable (quarantined whole). Retrying
// will not help.
type FileError struct {
	Reason string
}

func (e *FileError) Error() string { return "unusable input file: " + e.Reason }

const (
	defaultMaxRecordBytes = 64 << 10
	readBufferBytes       = 64 << 10
	sniffBytes            = 8 << 10
	maxRejectedRecord     = 1 << 10
	// Interning repeated short strings (city, zip, country) saves an
	// allocation per value; the caps bound its memory. A column whose values
	// rarely repeat (street) stops being interned once its table is full.
	internMaxEntries = 1024
	internMaxLen     = 64
	slabRows         = 64
)

// problemUnterminated: a quote opened and never closed, so the record ran
// to the end of the input.
const problemUnterminated = "unterminated quoted field"

// Roles of a header position other than a kept column's index.
const (
	roleIgnored = -1
	roleDropped = -2
	roleTarget  = -3
)

// absentField is an optional kept column missing from the header: every row
// gets its empty value.
type absentField struct {
	index int
	value Field
}

// Scanner states.
const (
	stFieldStart = iota
	stUnquoted
	stQuoted
	stQuoteInQuoted // saw '"' inside a quoted field: escaped quote or its end
)

// InputReader reads user-supplied CSV against a definition, one record at a
// time, with memory bounded by MaxRecordBytes.
//
// It does not use encoding/csv because that cannot cap a record: its Reader
// holds a whole record in memory before returning it, so one unbalanced
// quote makes it buffer the rest of the file, and it has no option to stop
// at a size. Here a record over the cap is skipped as it streams by and
// rejected with its line. BenchmarkInputReaderEncodingCSV keeps the cost of
// that choice measured against encoding/csv with ReuseRecord.
type InputReader struct {
	d       *Definition
	br      *bufio.Reader
	max     int
	roles   []int    // per header position: kept index, or a role
	cols    []Column // per header position, for validation
	ignored []string
	absent  []absentField // kept columns not in the header

	line    int  // physical lines consumed
	recLine int  // first line of the current record
	eof     bool // the underlying reader is exhausted
	err     error

	// Current record, reused across records.
	buf     []byte // field values, unescaped, each followed by one separator byte
	ends    []int  // end offset of each field in buf; the next starts at end+1
	raw     []byte // first KiB of the raw text
	size    int    // raw size so far
	tooLong bool
	quoted  bool   // some field was quoted (so the record is not blank)
	problem string // a quoting problem, reported once the record ends

	slab   []Field       // unused part of the current slab of row fields
	reuse  bool          // InputOptions.ReuseFields: slab is the one row's fields
	intern []internTable // per header position
}

// NewInputReader reads and checks the header. It returns a *FileError when
// the file is unusable as a whole, and other errors for I/O failures.
func (d *Definition) NewInputReader(r io.Reader, opts InputOptions) (*InputReader, error) {
	limit := opts.MaxRecordBytes
	if limit <= 0 {
		limit = defaultMaxRecordBytes
		for _, c := range d.kept {
			if c.Type == TypeText {
				limit += c.MaxLength
			}
		}
	}
	ir := &InputReader{
		d:     d,
		br:    bufio.NewReaderSize(r, readBufferBytes),
		max:   limit,
		reuse: opts.ReuseFields,
	}
	head, err := ir.br.Peek(sniffBytes)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read input header: %w", err)
	}
	if bytes.HasPrefix(head, []byte("\xef\xbb\xbf")) {
		_, _ = ir.br.Discard(3) // cannot fail: the bytes are buffered
		head = head[3:]
	}
	switch {
	case len(head) == 0:
		return nil, &FileError{"empty file"}
	case bytes.HasPrefix(head, []byte("\xff\xfe")) || bytes.HasPrefix(head, []byte("\xfe\xff")):
		return nil, &FileError{"UTF-16 text: save the file as UTF-8 CSV"}
	case bytes.IndexByte(head, 0) >= 0:
		return nil, &FileError{"binary file (NUL byte in the first 8 KiB)"}
	}
	if err := ir.readRecord(); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FileError{"empty file"}
		}
		return nil, fmt.Errorf("read input header: %w", err)
	}
	switch {
	case ir.tooLong:
		return nil, &FileError{fmt.Sprintf("header longer than %d bytes", limit)}
	case !ir.validUTF8():
		return nil, &FileError{"binary file (header is not valid UTF-8)"}
	case ir.problem != "":
		return nil, &FileError{"header: " + ir.problem}
	}
	if err := ir.setHeader(); err != nil {
		return nil, err
	}
	return ir, nil
}

func (ir *InputReader) setHeader() error {
	d := ir.d
	n := len(ir.ends)
	ir.roles = make([]int, n)
	ir.cols = make([]Column, n)
	ir.intern = make([]internTable, n)
	seen := make(map[string]bool, n)
	known := 0
	var dups []string
	start := 0
	for i, end := range ir.ends {
		name := strings.TrimSpace(string(ir.buf[start:end]))
		start = end + 1
		if seen[name] {
			dups = append(dups, fmt.Sprintf("%q", name))
		}
		seen[name] = true
		c, ok := d.Lookup(name)
		switch {
		case !ok:
			ir.roles[i] = roleIgnored
			ir.ignored = append(ir.ignored, name)
			continue
		case name == d.Target.Name:
			ir.roles[i] = roleTarget
		case c.Drop:
			ir.roles[i] = roleDropped
		default:
			ir.roles[i], _ = d.Index(name)
		}
		ir.cols[i] = c
		known++
	}
	target := fmt.Sprintf("missing target column %q", d.Target.Name)
	if known == 0 {
		// Most likely a data row in place of the header; say so.
		return &FileError{target + " (line 1 has none of the column names: is the header missing?)"}
	}
	if len(dups) > 0 {
		return &FileError{"duplicate columns in header: " + strings.Join(dups, ", ")}
	}
	var missing []string
	for _, c := range d.Columns {
		switch {
		case c.Drop || seen[c.Name]:
		case c.Optional:
			// Whatever ParseValue makes of an empty optional value (NaN for
			// numbers), so a missing column reads like an empty one.
			f, err := d.ParseValue(c, "")
			if err != nil {
				return fmt.Errorf("optional column %q: %w", c.Name, err)
			}
			i, _ := d.Index(c.Name)
			ir.absent = append(ir.absent, absentField{i, f})
		default:
			missing = append(missing, fmt.Sprintf("%q", c.Name))
		}
	}
	var reasons []string
	if !seen[d.Target.Name] {
		reasons = append(reasons, target)
	}
	if len(missing) > 0 {
		reasons = append(reasons, "missing columns "+strings.Join(missing, ", "))
	}
	if len(reasons) > 0 {
		return &FileError{strings.Join(reasons, "; ")}
	}
	return nil
}

// Ignored lists the header's columns that the definition does not know.
func (ir *InputReader) Ignored() []string { return slices.Clone(ir.ignored) }

// Line is the first physical line of the record last returned by Next.
func (ir *InputReader) Line() int { return ir.recLine }

// Next returns exactly one of: a valid row; a rejected record (record it and
// call Next again); io.EOF; or another error, which is permanent for this
// reader.
func (ir *InputReader) Next() (Row, *Rejected, error) {
	if ir.err != nil {
		return Row{}, nil, ir.err
	}
	if err := ir.readRecord(); err != nil {
		if !errors.Is(err, io.EOF) {
			err = fmt.Errorf("read input line %d: %w", ir.line+1, err)
		}
		ir.err = err
		return Row{}, nil, err
	}
	switch {
	case ir.problem == problemUnterminated:
		return Row{}, ir.reject(fmt.Sprintf("unterminated quoted field: the quote opened on line %d is never closed, so lines %d-%d were read as one record",
			ir.recLine, ir.recLine, ir.line)), nil
	case ir.tooLong:
		return Row{}, ir.reject(fmt.Sprintf("record longer than %d bytes", ir.max)), nil
	case ir.problem != "":
		return Row{}, ir.reject(ir.problem), nil
	case !ir.validUTF8():
		return Row{}, ir.reject("not valid UTF-8"), nil
	case bytes.IndexByte(ir.buf, 0) >= 0:
		return Row{}, ir.reject("binary data (NUL byte)"), nil
	case len(ir.ends) != len(ir.roles):
		return Row{}, ir.reject(fmt.Sprintf("expected %d fields, got %d", len(ir.roles), len(ir.ends))), nil
	}
	var target Field
	fields := ir.rowFields()
	start := 0
	for i, end := range ir.ends {
		role := ir.roles[i]
		raw := ir.buf[start:end]
		start = end + 1
		if role == roleIgnored || role == roleDropped {
			continue
		}
		f, ok := ir.known(i, raw)
		if !ok {
			var err error
			if f, err = ir.d.parseValue(&ir.cols[i], view(raw), true); err != nil {
				return Row{}, ir.reject(err.Error()), nil
			}
			if f.Str != "" {
				f.Str = ir.own(i, f.Str)
			}
		}
		if role == roleTarget {
			target = f
		} else {
			fields[role] = f
		}
	}
	for _, a := range ir.absent {
		fields[a.index] = a.value
	}
	if !ir.reuse {
		ir.slab = ir.slab[len(fields):] // taken; a rejected row leaves its slot for the next
	}
	return Row{Fields: fields, Target: target}, nil, nil
}

// rowFields returns the next slot of a slab shared by a few rows: one
// allocation per slab instead of per row.
func (ir *InputReader) rowFields() []Field {
	n := len(ir.d.kept)
	if len(ir.slab) < n {
		ir.slab = make([]Field, n*slabRows)
	}
	return ir.slab[:n:n] // capped: appending to a row's fields cannot reach the next row
}

func (ir *InputReader) reject(reason string) *Rejected {
	rec := bytes.TrimRight(ir.raw, "\r\n")
	if len(rec) == maxRejectedRecord {
		for len(rec) > maxRejectedRecord-utf8.UTFMax && !utf8.Valid(rec) {
			rec = rec[:len(rec)-1] // do not cut a character in two
		}
	}
	lines := ir.line - ir.recLine + 1
	if lines > 1 && ir.problem != problemUnterminated {
		reason += fmt.Sprintf(" (record on lines %d-%d)", ir.recLine, ir.line)
	}
	return &Rejected{Line: ir.recLine, Reason: reason, Record: string(rec), Lines: lines}
}

// internTable holds one column's repeated values.
type internTable struct {
	values     map[string]string
	hits, miss int
	off        bool
}

// known answers for a string value column i accepted before, without
// validating it again: ParseValue depends on nothing but the column and the
// value, and the intern table holds only values it accepted as they were
// (trimmed), so a repeated category skips its pattern and length checks.
func (ir *InputReader) known(i int, raw []byte) (Field, bool) {
	t := &ir.intern[i]
	if t.values == nil || IsNumeric(ir.cols[i]) {
		return Field{}, false
	}
	v, ok := t.values[view(raw)]
	if !ok {
		return Field{}, false
	}
	t.hits++
	return Field{Str: v}, true
}

// own copies a string that views the read buffer (column i's value).
func (ir *InputReader) own(i int, s string) string {
	t := &ir.intern[i]
	if t.off || len(s) > internMaxLen {
		return strings.Clone(s)
	}
	if v, ok := t.values[s]; ok {
		t.hits++
		return v
	}
	t.miss++
	v := strings.Clone(s)
	if len(t.values) < internMaxEntries {
		if t.values == nil {
			t.values = map[string]string{}
		}
		t.values[v] = v
	} else if t.hits < t.miss {
		t.off, t.values = true, nil
	}
	return v
}

// view lets ParseValue read a field without a copy per field. ParseValue
// keeps raw only in Field.Str, which Next copies (own) before the buffer is
// reused.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// validUTF8 checks every field at once: the ASCII separators between them
// keep a split character invalid.
func (ir *InputReader) validUTF8() bool { return utf8.Valid(ir.buf) }

// readRecord reads the next non-blank record, or returns io.EOF.
func (ir *InputReader) readRecord() error {
	for {
		if err := ir.scanRecord(); err != nil {
			return err
		}
		if !ir.blank() {
			return nil
		}
	}
}

// blank: an empty or all-whitespace line. With a one-column header an empty
// line is a (missing) value, not a blank.
func (ir *InputReader) blank() bool {
	return len(ir.ends) == 1 && len(ir.roles) != 1 && !ir.quoted && !ir.tooLong &&
		ir.problem == "" && len(bytes.TrimSpace(ir.buf[:ir.ends[0]])) == 0
}

// scanRecord reads one RFC 4180 record into buf/ends, chunk by chunk, so an
// over-long record is skipped without being buffered.
func (ir *InputReader) scanRecord() error {
	ir.buf, ir.ends, ir.raw = ir.buf[:0], ir.ends[:0], ir.raw[:0]
	ir.size, ir.tooLong, ir.quoted, ir.problem = 0, false, false, ""
	ir.recLine = ir.line + 1
	st := stFieldStart
	started := false
	for {
		if ir.eof {
			if !started {
				return io.EOF
			}
			return ir.endRecord(st, false) // the last line had its newline, counted already
		}
		chunk, err := ir.br.ReadSlice('\n')
		eol := false
		switch {
		case err == nil:
			eol = true
			chunk = chunk[:len(chunk)-1]
			if n := len(chunk); n > 0 && chunk[n-1] == '\r' {
				chunk = chunk[:n-1]
			}
		case errors.Is(err, bufio.ErrBufferFull):
			// Keep a trailing \r for the next chunk, where it may turn out
			// to end the line.
			if chunk[len(chunk)-1] == '\r' {
				_ = ir.br.UnreadByte() // cannot fail right after ReadSlice
				chunk = chunk[:len(chunk)-1]
			}
		case errors.Is(err, io.EOF):
			ir.eof = true
			if len(chunk) == 0 {
				continue
			}
			if n := len(chunk); chunk[n-1] == '\r' {
				chunk = chunk[:n-1]
			}
		default:
			return err
		}
		started = true
		ir.add(chunk)
		st = ir.parse(chunk, st)
		if ir.eof {
			return ir.endRecord(st, true)
		}
		if !eol {
			continue
		}
		ir.line++
		if st == stQuoted {
			ir.add([]byte{'\n'})
			if !ir.tooLong {
				ir.buf = append(ir.buf, '\n')
			}
			continue
		}
		return ir.endRecord(st, false)
	}
}

// add accounts for raw bytes of the current record.
func (ir *InputReader) add(p []byte) {
	ir.size += len(p)
	if ir.size > ir.max {
		ir.tooLong = true
	}
	if room := maxRejectedRecord - len(ir.raw); room > 0 {
		ir.raw = append(ir.raw, p[:min(room, len(p))]...)
	}
}

func (ir *InputReader) endRecord(st int, atEOF bool) error {
	if atEOF {
		ir.line++ // a last line without a newline
	}
	if st == stQuoted && ir.problem == "" {
		ir.problem = problemUnterminated
	}
	if !ir.tooLong {
		ir.endField()
	}
	return nil
}

func (ir *InputReader) endField() {
	ir.ends = append(ir.ends, len(ir.buf))
	ir.buf = append(ir.buf, ',')
}

// parse runs the field state machine over p. Once the record is too long it
// only tracks quotes, to find the record's end.
func (ir *InputReader) parse(p []byte, st int) int {
	keep := !ir.tooLong
	if (st == stFieldStart || st == stUnquoted) && bytes.IndexByte(p, '"') < 0 {
		return ir.parsePlain(p, st, keep)
	}
	for i := 0; i < len(p); {
		switch st {
		case stFieldStart:
			if p[i] == '"' {
				st = stQuoted
				ir.quoted = true
				i++
			} else {
				st = stUnquoted
			}
		case stUnquoted:
			// A bare quote inside an unquoted field is kept as text (12" pipe).
			j := bytes.IndexByte(p[i:], ',')
			if j < 0 {
				if keep {
					ir.buf = append(ir.buf, p[i:]...)
				}
				return stUnquoted
			}
			if keep {
				ir.buf = append(ir.buf, p[i:i+j]...)
				ir.endField()
			}
			i += j + 1
			st = stFieldStart
		case stQuoted:
			j := bytes.IndexByte(p[i:], '"')
			if j < 0 {
				if keep {
					ir.buf = append(ir.buf, p[i:]...)
				}
				return stQuoted
			}
			if keep {
				ir.buf = append(ir.buf, p[i:i+j]...)
			}
			i += j + 1
			st = stQuoteInQuoted
		case stQuoteInQuoted:
			switch p[i] {
			case '"':
				if keep {
					ir.buf = append(ir.buf, '"')
				}
				i++
				st = stQuoted
			case ',':
				if keep {
					ir.endField()
				}
				i++
				st = stFieldStart
			default:
				// Text after a closing quote means the quoting is broken and
				// fields may be misaligned: reject, and read on as text.
				if ir.problem == "" {
					ir.problem = fmt.Sprintf("text after the closing quote of field %d", len(ir.ends)+1)
				}
				st = stUnquoted
			}
		}
	}
	return st
}

// parsePlain is parse for the common chunk without quotes: one copy, the
// commas kept as separators.
func (ir *InputReader) parsePlain(p []byte, st int, keep bool) int {
	if len(p) == 0 {
		return st
	}
	if keep {
		base := len(ir.buf)
		ir.buf = append(ir.buf, p...)
		for i := 0; ; {
			j := bytes.IndexByte(p[i:], ',')
			if j < 0 {
				break
			}
			ir.ends = append(ir.ends, base+i+j)
			i += j + 1
		}
	}
	if p[len(p)-1] == ',' {
		return stFieldStart
	}
	return stUnquoted
}
