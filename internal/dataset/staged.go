package dataset

import (
	"encoding/csv"
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
// It stops at fn's first error and returns it.
type Scan func(fn func(StagedRow) error) error

// StagedHeader is the header line of a staged CSV.
func (d *Definition) StagedHeader() []string {
	h := make([]string, 0, len(d.kept)+4)
	for _, c := range d.kept {
		h = append(h, c.Name)
	}
	return append(h, d.Target.Name, ColRow, ColTest, ColSource)
}

// StagedWriter writes staged CSV.
type StagedWriter struct {
	d      *Definition
	w      *csv.Writer
	rec    []string
	header bool
}

// NewStagedWriter writes the header on the first row (or on Flush).
func (d *Definition) NewStagedWriter(w io.Writer) *StagedWriter {
	return &StagedWriter{d: d, w: csv.NewWriter(w), rec: make([]string, len(d.kept)+4)}
}

func (sw *StagedWriter) writeHeader() error {
	if sw.header {
		return nil
	}
	sw.header = true
	return sw.w.Write(sw.d.StagedHeader())
}

// Write appends one row.
func (sw *StagedWriter) Write(r StagedRow) error {
	if err := sw.writeHeader(); err != nil {
		return err
	}
	for i, c := range sw.d.kept {
		sw.rec[i] = Format(c, r.Fields[i])
	}
	n := len(sw.d.kept)
	sw.rec[n] = Format(sw.d.Target, r.Target)
	sw.rec[n+1] = r.Hash.String()
	sw.rec[n+2] = "0"
	if r.Test {
		sw.rec[n+2] = "1"
	}
	sw.rec[n+3] = r.Source
	return sw.w.Write(sw.rec)
}

// Flush writes buffered rows (and the header if no row was written).
func (sw *StagedWriter) Flush() error {
	if err := sw.writeHeader(); err != nil {
		return err
	}
	sw.w.Flush()
	return sw.w.Error()
}

// StagedReader reads staged CSV written by StagedWriter for the same
// definition.
type StagedReader struct {
	d   *Definition
	r   *csv.Reader
	pos []int // staged column index -> kept index, -1 for missing
	n   int
}

// NewStagedReader checks the header against the definition.
func (d *Definition) NewStagedReader(r io.Reader) (*StagedReader, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("staged csv header: %w", err)
	}
	want := d.StagedHeader()
	if len(header) != len(want) {
		return nil, fmt.Errorf("staged csv: %d columns, want %d (definition changed?)", len(header), len(want))
	}
	for i := range want {
		if header[i] != want[i] {
			return nil, fmt.Errorf("staged csv: column %d is %q, want %q", i, header[i], want[i])
		}
	}
	return &StagedReader{d: d, r: cr, n: len(want)}, nil
}

// Next returns the next row, or io.EOF.
func (sr *StagedReader) Next() (StagedRow, error) {
	rec, err := sr.r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return StagedRow{}, io.EOF
		}
		return StagedRow{}, fmt.Errorf("staged csv: %w", err)
	}
	kept := sr.d.kept
	row := StagedRow{Row: Row{Fields: make([]Field, len(kept))}}
	for i, c := range kept {
		if row.Fields[i], err = parseCanonical(c, rec[i]); err != nil {
			return StagedRow{}, err
		}
	}
	n := len(kept)
	if row.Target, err = parseCanonical(sr.d.Target, rec[n]); err != nil {
		return StagedRow{}, err
	}
	if row.Hash, err = ParseRowHash(rec[n+1]); err != nil {
		return StagedRow{}, err
	}
	row.Test = rec[n+2] == "1"
	row.Source = rec[n+3]
	return row, nil
}

func parseCanonical(c Column, s string) (Field, error) {
	if !IsNumeric(c) {
		return Field{Str: s}, nil
	}
	if s == "" {
		return Field{Num: math.NaN()}, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return Field{}, fmt.Errorf("staged csv: column %s: %w", c.Name, err)
	}
	return Field{Num: v}, nil
}
