package dataset

import (
	"encoding/csv"
	"io"
)

// StagedWriter writes staged CSV through encoding/csv: the reference that
// StagedEncoder's output is checked against, byte for byte.
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
