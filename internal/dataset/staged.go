package dataset

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// Staged CSV is Refit's own row format, used for staged chunks and dataset
// versions: the kept columns in canonical form, the target, then
//
//	_row    the row's content hash (hex)
//	_test   1 when the row is in the test split
//	_source where the row came from (bucket/object#generation or correction/ID)
const (
	ColRow    = "_row"
	ColTest   = "_test"
	ColSource = "_source"
)

// StagedRow is a validated row with its identity.
type StagedRow struct {
	Row
	Hash   RowHash
	Test   bool
	Source string
}

// Scan visits rows one at a time; it may be called again to read them again.
// It stops at fn's first error and returns it. A row's Fields may be reused
// once fn returns (ScanBlobs does): copy them to keep them; strings may be
// kept.
type Scan func(fn func(StagedRow) error) error

// StagedHeader is the header line of a staged CSV.
func (d *Definition) StagedHeader() []string {
	h := make([]string, 0, len(d.kept)+4)
	for _, c := range d.kept {
		h = append(h, c.Name)
	}
	return append(h, d.Target.Name, ColRow, ColTest, ColSource)
}

// Split selects rows by their train/test split (the _test column).
type Split int

// The splits a reader can select.
const (
	AllRows Split = iota
	TrainSplit
	TestSplit
)

func (s Split) keeps(test bool) bool {
	switch s {
	case TrainSplit:
		return !test
	case TestSplit:
		return test
	}
	return true
}

// StagedReader reads staged CSV written by StagedEncoder for the same
// definition. It reads what encoding/csv reads, but splits a line without
// quotes (the common case: StagedEncoder quotes only values holding a comma,
// a quote or a line break) in place, parses numbers from the read buffer
// and shares repeated text values, so a row costs no allocation beyond its
// new text values.
type StagedReader struct {
	d      *Definition
	br     *bufio.Reader
	line   int      // physical lines read
	long   []byte   // a line too long for br's buffer
	buf    []byte   // the current record unquoted, when it had quotes
	fields [][]byte // the current record's fields; they view br, long or buf
	n      int
	split  Split
	intern []internTable // per staged column
}

// NewStagedReader checks the header against the definition.
func (d *Definition) NewStagedReader(r io.Reader) (*StagedReader, error) {
	want := d.StagedHeader()
	sr := &StagedReader{d: d, br: bufio.NewReaderSize(r, readBufferBytes), n: len(want), intern: make([]internTable, len(want))}
	if err := sr.readRecord(); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("staged csv header: %w", err)
	}
	if len(sr.fields) != len(want) {
		return nil, fmt.Errorf("staged csv: %d columns, want %d (definition changed?)", len(sr.fields), len(want))
	}
	for i := range want {
		if string(sr.fields[i]) != want[i] {
			return nil, fmt.Errorf("staged csv: column %d is %q, want %q", i, sr.fields[i], want[i])
		}
	}
	return sr, nil
}

// Select makes the reader return only the rows of split s (AllRows by
// default). The other rows are skipped before their values are parsed.
func (sr *StagedReader) Select(s Split) { sr.split = s }

// Next returns the next row, or io.EOF. The row is the caller's.
func (sr *StagedReader) Next() (StagedRow, error) {
	var row StagedRow
	if err := sr.Read(&row); err != nil {
		return StagedRow{}, err
	}
	return row, nil
}

// Read reads the next row into row, or returns io.EOF. It reuses
// row.Fields' storage (make it nil to get a fresh slice); the strings it
// stores are the caller's.
func (sr *StagedReader) Read(row *StagedRow) error {
	kept := sr.d.kept
	n := len(kept)
	for {
		if err := sr.readRecord(); err != nil {
			return err
		}
		if len(sr.fields) != sr.n {
			return fmt.Errorf("staged csv: line %d: %d fields, want %d", sr.line, len(sr.fields), sr.n)
		}
		if sr.split.keeps(string(sr.fields[n+2]) == "1") {
			break
		}
	}
	rec := sr.fields
	if cap(row.Fields) < n {
		row.Fields = make([]Field, n)
	}
	row.Fields = row.Fields[:n]
	var err error
	for i, c := range kept {
		if row.Fields[i], err = sr.parse(i, c, rec[i]); err != nil {
			return err
		}
	}
	if row.Target, err = sr.parse(n, sr.d.Target, rec[n]); err != nil {
		return err
	}
	// Decoded in place: hex.DecodeString would allocate for every row.
	if len(rec[n+1]) != 2*len(row.Hash) {
		return fmt.Errorf("staged csv: line %d: bad row hash %q", sr.line, rec[n+1])
	}
	if _, err := hex.Decode(row.Hash[:], rec[n+1]); err != nil {
		return fmt.Errorf("staged csv: line %d: bad row hash %q", sr.line, rec[n+1])
	}
	row.Test = string(rec[n+2]) == "1"
	row.Source = sr.own(n+3, rec[n+3])
	return nil
}

func (sr *StagedReader) parse(i int, c Column, b []byte) (Field, error) {
	if !IsNumeric(c) {
		return Field{Str: sr.own(i, b)}, nil
	}
	if len(b) == 0 {
		return Field{Num: math.NaN()}, nil
	}
	if v, ok := parseSimpleFloat(view(b)); ok {
		return Field{Num: v}, nil
	}
	v, err := strconv.ParseFloat(view(b), 64)
	if err != nil {
		return Field{}, fmt.Errorf("staged csv: column %s: %w", c.Name, err)
	}
	return Field{Num: v}, nil
}

// own gives a string the caller may keep: a shared copy of a value column i
// has held before, or a new one.
func (sr *StagedReader) own(i int, b []byte) string {
	t := &sr.intern[i]
	if t.off || len(b) > internMaxLen {
		return string(b)
	}
	if v, ok := t.values[view(b)]; ok {
		t.hits++
		return v
	}
	t.miss++
	v := string(b)
	if len(t.values) < internMaxEntries {
		if t.values == nil {
			t.values = map[string]string{}
		}
		t.values[v] = v
	} else if t.hits < t.miss {
		// Mostly distinct values (a street, a source per row): stop looking.
		t.off, t.values = true, nil
	}
	return v
}

// readRecord splits the next non-empty record into sr.fields, with
// encoding/csv's rules (Comma ',', no lazy quotes): \r\n ends a line as \n
// does, and a quoted field may hold commas, doubled quotes and line breaks.
func (sr *StagedReader) readRecord() error {
	var line []byte
	for len(line) == 0 {
		var err error
		if line, err = sr.readLine(); err != nil {
			return err
		}
		line = trimEOL(line)
	}
	sr.fields = sr.fields[:0]
	if bytes.IndexByte(line, '"') < 0 {
		for {
			i := bytes.IndexByte(line, ',')
			if i < 0 {
				sr.fields = append(sr.fields, line)
				return nil
			}
			sr.fields = append(sr.fields, line[:i])
			line = line[i+1:]
		}
	}
	return sr.readQuoted(line)
}

// readQuoted is readRecord's slow path: it unquotes into sr.buf, reading
// more lines while a quoted field is open.
func (sr *StagedReader) readQuoted(line []byte) error {
	start := sr.line
	buf := sr.buf[:0]
	var ends []int
	for {
		if len(line) == 0 || line[0] != '"' {
			i := bytes.IndexByte(line, ',')
			field := line
			if i >= 0 {
				field = line[:i]
			}
			if bytes.IndexByte(field, '"') >= 0 {
				return fmt.Errorf("staged csv: line %d: %w", sr.line, csv.ErrBareQuote)
			}
			buf = append(buf, field...)
			ends = append(ends, len(buf))
			if i < 0 {
				break
			}
			line = line[i+1:]
			continue
		}
		line = line[1:]
		for {
			i := bytes.IndexByte(line, '"')
			if i < 0 {
				// The field goes on on the next line.
				buf = append(buf, line...)
				buf = append(buf, '\n')
				next, err := sr.readLine()
				if err != nil {
					if errors.Is(err, io.EOF) {
						return fmt.Errorf("staged csv: line %d: %w", start, csv.ErrQuote)
					}
					return err
				}
				line = trimEOL(next)
				continue
			}
			buf = append(buf, line[:i]...)
			line = line[i+1:]
			if len(line) > 0 && line[0] == '"' {
				buf = append(buf, '"')
				line = line[1:]
				continue
			}
			break
		}
		ends = append(ends, len(buf))
		if len(line) == 0 {
			break
		}
		if line[0] != ',' {
			return fmt.Errorf("staged csv: line %d: %w", sr.line, csv.ErrQuote)
		}
		line = line[1:]
		if len(line) == 0 {
			ends = append(ends, len(buf)) // a trailing comma: an empty last field
			break
		}
	}
	sr.buf = buf
	prev := 0
	for _, e := range ends {
		sr.fields = append(sr.fields, buf[prev:e:e])
		prev = e
	}
	return nil
}

// readLine returns the next physical line with its end of line, viewing
// br's buffer when it fits.
func (sr *StagedReader) readLine() ([]byte, error) {
	line, err := sr.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		long := append(sr.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = sr.br.ReadSlice('\n')
			long = append(long, line...)
		}
		sr.long, line = long, long
	}
	if len(line) > 0 && errors.Is(err, io.EOF) {
		err = nil // a last line without a line break
	}
	if err != nil {
		if !errors.Is(err, io.EOF) {
			err = fmt.Errorf("staged csv: %w", err)
		}
		return nil, err
	}
	sr.line++
	return line, nil
}

func trimEOL(line []byte) []byte {
	n := len(line)
	if n > 0 && line[n-1] == '\n' {
		n--
	}
	if n > 0 && line[n-1] == '\r' {
		n--
	}
	return line[:n]
}
