package dataset

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"unicode"
	"unicode/utf8"
)

// StagedEncoder turns validated rows into staged CSV records. It formats
// each value once for both the row's content hash and its record, where
// Hash plus a csv.Writer would format every value twice; the output is
// byte for byte what encoding/csv writes (stagedwriter_test.go checks).
type StagedEncoder struct {
	d       *Definition
	numeric []bool // per kept column, then the target
	source  []byte // the _source field, CSV-encoded
	val     []byte // the hash input
	rec     []byte // the record being built
}

// NewStagedEncoder encodes rows from one source.
func (d *Definition) NewStagedEncoder(source string) *StagedEncoder {
	numeric := make([]bool, 0, len(d.kept)+1)
	for _, c := range d.kept {
		numeric = append(numeric, IsNumeric(c))
	}
	numeric = append(numeric, IsNumeric(d.Target))
	return &StagedEncoder{d: d, numeric: numeric, source: appendCSVField(nil, source),
		val: make([]byte, 0, 256), rec: make([]byte, 0, 256)}
}

// Encode returns the row's content hash (equal to Definition.Hash), its
// split, and its staged CSV record with the final newline. The record is
// valid until the next call.
func (e *StagedEncoder) Encode(r Row) (RowHash, bool, []byte) {
	// The hash input is every value followed by 0x1f, then the target.
	e.val = e.val[:0]
	e.rec = e.rec[:0]
	last := len(e.numeric) - 1
	for i, numeric := range e.numeric {
		f := &r.Target
		if i < last {
			f = &r.Fields[i]
		}
		start := len(e.val)
		if numeric {
			// A formatted number never needs CSV quotes.
			if !math.IsNaN(f.Num) {
				e.val = appendFloat(e.val, f.Num)
			}
			e.rec = append(e.rec, e.val[start:]...)
		} else {
			e.val = append(e.val, f.Str...)
			e.rec = appendCSVField(e.rec, e.val[start:])
		}
		if i < last {
			e.rec = append(e.rec, ',')
			e.val = append(e.val, 0x1f)
		}
	}
	var rh RowHash
	sum := sha256.Sum256(e.val)
	copy(rh[:], sum[:])
	test := e.d.IsTest(rh)
	e.rec = append(e.rec, ',')
	e.rec = hex.AppendEncode(e.rec, rh[:])
	if test {
		e.rec = append(e.rec, ",1,"...)
	} else {
		e.rec = append(e.rec, ",0,"...)
	}
	e.rec = append(e.rec, e.source...)
	e.rec = append(e.rec, '\n')
	return rh, test, e.rec
}

// HeaderRecord is the staged CSV header line.
func (d *Definition) HeaderRecord() []byte {
	var b []byte
	for i, name := range d.StagedHeader() {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCSVField(b, name)
	}
	return append(b, '\n')
}

// appendCSVField quotes a field exactly when encoding/csv's Writer would
// (comma, quote, CR or LF inside, a leading space, or `\.`), so records
// written here and by encoding/csv are the same bytes.
func appendCSVField[S string | []byte](b []byte, field S) []byte {
	if !csvNeedsQuotes(field) {
		return append(b, field...)
	}
	b = append(b, '"')
	for i := 0; i < len(field); i++ {
		if field[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, field[i])
	}
	return append(b, '"')
}

func csvNeedsQuotes[S string | []byte](field S) bool {
	if len(field) == 0 {
		return false
	}
	if string(field) == `\.` {
		return true
	}
	for i := 0; i < len(field); i++ {
		switch field[i] {
		case '\n', '\r', '"', ',':
			return true
		}
	}
	if field[0] < utf8.RuneSelf {
		return unicode.IsSpace(rune(field[0]))
	}
	r, _ := utf8.DecodeRuneInString(string(field[:min(len(field), utf8.UTFMax)]))
	return unicode.IsSpace(r)
}

// StagedRecordReader splits staged CSV into raw records without decoding
// their values: enough to deduplicate and copy rows by identity.
type StagedRecordReader struct {
	br     *bufio.Reader
	rec    []byte
	hashAt int // field index of _row; _test follows it
}

// NewStagedRecordReader reads and checks the header line.
func (d *Definition) NewStagedRecordReader(r io.Reader) (*StagedRecordReader, error) {
	rr := &StagedRecordReader{br: bufio.NewReaderSize(r, 256<<10), hashAt: len(d.kept) + 1}
	header, err := rr.next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("staged csv header: %w", err)
	}
	if want := d.HeaderRecord(); !bytes.Equal(header, want) {
		return nil, fmt.Errorf("staged csv: header %q, want %q (definition changed?)", bytes.TrimSpace(header), bytes.TrimSpace(want))
	}
	return rr, nil
}

// Next returns the next record (with its newline; valid until the next
// call), the row's hash and split, or io.EOF.
func (rr *StagedRecordReader) Next() (rec []byte, h RowHash, test bool, err error) {
	if rec, err = rr.next(); err != nil {
		return nil, h, false, err
	}
	field, start := 0, 0
	quoted := false
	for i, c := range rec {
		switch {
		case c == '"':
			quoted = !quoted // "" inside a quoted field toggles twice
		case (c == ',' || c == '\n') && !quoted:
			switch field {
			case rr.hashAt:
				if i-start != 2*len(h) {
					return nil, h, false, fmt.Errorf("staged csv: bad row hash %q", rec[start:i])
				}
				if _, err := hex.Decode(h[:], rec[start:i]); err != nil {
					return nil, h, false, fmt.Errorf("staged csv: bad row hash %q", rec[start:i])
				}
			case rr.hashAt + 1:
				switch string(rec[start:i]) {
				case "0":
				case "1":
					test = true
				default:
					return nil, h, false, fmt.Errorf("staged csv: bad _test %q", rec[start:i])
				}
				return rec, h, test, nil
			}
			field++
			start = i + 1
		}
	}
	return nil, h, false, fmt.Errorf("staged csv: record with %d fields, want %d", field, rr.hashAt+3)
}

// next reads one record: lines are joined while a quote is open.
func (rr *StagedRecordReader) next() ([]byte, error) {
	rr.rec = rr.rec[:0]
	quotes := 0
	for {
		line, err := rr.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			rr.rec = append(rr.rec, line...)
			quotes += bytes.Count(line, []byte{'"'})
			continue
		}
		if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
			if errors.Is(err, io.EOF) && len(rr.rec) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		rr.rec = append(rr.rec, line...)
		quotes += bytes.Count(line, []byte{'"'})
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF // the writer ends every record with a newline
		}
		if quotes%2 == 0 {
			return rr.rec, nil
		}
	}
}
