package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// ErrCorruptStats marks statistics bytes that fail their checksum or do
// not decode: recompute them from the rows blob.
var ErrCorruptStats = errors.New("model: corrupt statistics")

// The statistics file: statsMagic, a little-endian uint32 version, the
// body, then the SHA-256 of everything before it.
const (
	statsMagic   = "RFTSTATS"
	statsVersion = 1
	// Bounds a decoder trusts before allocating (the dense block is
	// (2·1024+1)² floats at most).
	maxStatsColumns = 1 << 10
)

// Marshal encodes the statistics. The same statistics give the same bytes.
func (st *Stats) Marshal() []byte {
	var w statsWriter
	w.buf.WriteString(statsMagic)
	w.u32(statsVersion)
	w.str(st.Dataset)
	w.strs(st.Num)
	w.strs(st.Cat)
	for _, m := range st.Mod {
		w.uvar(uint64(m))
	}
	w.sums(st.Train)
	w.sums(st.Test)
	sum := sha256.Sum256(w.buf.Bytes())
	w.buf.Write(sum[:])
	return w.buf.Bytes()
}

type statsWriter struct{ buf bytes.Buffer }

func (w *statsWriter) u32(v uint32) { w.buf.Write(binary.LittleEndian.AppendUint32(nil, v)) }
func (w *statsWriter) u64(v uint64) { w.buf.Write(binary.LittleEndian.AppendUint64(nil, v)) }
func (w *statsWriter) f64(v float64) {
	w.u64(math.Float64bits(v))
}
func (w *statsWriter) uvar(v uint64) { w.buf.Write(binary.AppendUvarint(nil, v)) }
func (w *statsWriter) str(s string) {
	w.uvar(uint64(len(s)))
	w.buf.WriteString(s)
}
func (w *statsWriter) strs(ss []string) {
	w.uvar(uint64(len(ss)))
	for _, s := range ss {
		w.str(s)
	}
}

func (w *statsWriter) sums(s *Sums) {
	d := len(s.Mean)
	w.u64(uint64(s.N))
	for _, m := range s.Missing {
		w.u64(uint64(m))
	}
	for _, v := range s.Mean {
		w.f64(v)
	}
	for i := range d {
		for j := i; j < d; j++ {
			w.f64(s.M[i*d+j])
		}
	}
	for _, ls := range s.Levels {
		w.uvar(uint64(len(ls)))
		for _, l := range ls {
			w.str(l.Value)
			w.u64(uint64(l.N))
			for _, v := range l.S {
				w.f64(v)
			}
		}
	}
	keys := make([]uint64, 0, len(s.Pairs))
	for k := range s.Pairs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.uvar(uint64(len(keys)))
	for _, k := range keys {
		w.u64(k)
		w.u64(uint64(s.Pairs[k]))
	}
	w.uvar(uint64(len(s.Sample)))
	for _, r := range s.Sample {
		w.buf.Write(r.Hash[:])
		for _, v := range r.Dense {
			w.f64(v)
		}
		for _, v := range r.Cat {
			w.str(v)
		}
	}
}

// UnmarshalStats decodes and checks statistics bytes. Errors wrap
// ErrCorruptStats.
func UnmarshalStats(b []byte) (*Stats, error) {
	st, err := unmarshalStats(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptStats, err)
	}
	return st, nil
}

func unmarshalStats(b []byte) (*Stats, error) {
	if len(b) < len(statsMagic)+4+sha256.Size {
		return nil, fmt.Errorf("%d bytes: too short", len(b))
	}
	if string(b[:len(statsMagic)]) != statsMagic {
		return nil, errors.New("not a statistics file (bad magic)")
	}
	body, trailer := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], trailer) {
		return nil, errors.New("checksum mismatch")
	}
	r := statsReader{b: body[len(statsMagic):]}
	if v := r.u32(); v != statsVersion {
		return nil, fmt.Errorf("version %d, want %d", v, statsVersion)
	}
	st := &Stats{Dataset: r.str(), Num: r.strs(), Cat: r.strs()}
	if r.err == nil && len(st.Cat) > maxCatColumns {
		r.err = fmt.Errorf("%d indicator columns", len(st.Cat))
	}
	for range st.Cat {
		st.Mod = append(st.Mod, r.count(maxMod))
	}
	st.Train = r.sums(st)
	st.Test = r.sums(st)
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes after the statistics", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	return st, nil
}

type statsReader struct {
	b   []byte
	err error
}

func (r *statsReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errors.New("truncated")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *statsReader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *statsReader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *statsReader) f64() float64 {
	v := math.Float64frombits(r.u64())
	if r.err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
		r.err = errors.New("non-finite value")
	}
	return v
}

func (r *statsReader) count(limit int) int {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > uint64(limit) || v > uint64(len(r.b)) {
		r.err = fmt.Errorf("bad count (limit %d)", limit)
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *statsReader) str() string { return string(r.take(r.count(len(r.b)))) }

func (r *statsReader) strs() []string {
	n := r.count(maxStatsColumns)
	var ss []string
	for range n {
		ss = append(ss, r.str())
	}
	return ss
}

func (r *statsReader) sums(st *Stats) *Sums {
	if r.err != nil {
		return nil
	}
	s := st.newSums()
	d := len(s.Mean)
	s.N = int64(r.u64())
	if s.N < 0 {
		r.err = errors.New("negative row count")
	}
	for i := range s.Missing {
		s.Missing[i] = int64(r.u64())
		if s.Missing[i] < 0 || s.Missing[i] > s.N {
			r.err = errors.New("bad missing count")
		}
	}
	for i := range s.Mean {
		s.Mean[i] = r.f64()
	}
	for i := range d {
		for j := i; j < d; j++ {
			s.M[i*d+j] = r.f64()
			s.M[j*d+i] = s.M[i*d+j]
		}
	}
	for c := range s.Levels {
		n := r.count(maxLevels)
		total := int64(0)
		for l := range n {
			lev := Level{Value: r.str(), N: int64(r.u64()), S: make([]float64, d)}
			for i := range lev.S {
				lev.S[i] = r.f64()
			}
			if r.err == nil && (lev.N <= 0 || (l > 0 && s.Levels[c][l-1].Value >= lev.Value)) {
				r.err = errors.New("levels out of order or empty")
			}
			if m := st.Mod[c]; r.err == nil && m > 0 {
				if res, _, err := parseResidue(lev.Value); err != nil || res >= m {
					r.err = fmt.Errorf("column %q: level %q modulo %d", st.Cat[c], lev.Value, m)
				}
			}
			total += lev.N
			s.Levels[c] = append(s.Levels[c], lev)
		}
		if r.err == nil && total != s.N {
			r.err = fmt.Errorf("column %q: level counts sum to %d of %d rows", st.Cat[c], total, s.N)
		}
	}
	np := r.count(len(r.b) / 16)
	for range np {
		k, cnt := r.u64(), int64(r.u64())
		ca, la, cb, lb := splitPair(k)
		if r.err == nil && (ca >= cb || cb >= len(s.Levels) || la >= len(s.Levels[ca]) || lb >= len(s.Levels[cb]) || cnt <= 0) {
			r.err = errors.New("bad level pair")
		}
		s.Pairs[k] = cnt
	}
	ns := r.count(MaxSample)
	if r.err == nil && int64(ns) > s.N {
		r.err = fmt.Errorf("%d sampled rows of %d", ns, s.N)
	}
	for i := range ns {
		var sr SampleRow
		copy(sr.Hash[:], r.take(len(sr.Hash)))
		sr.Dense = make([]float64, d)
		for j := range sr.Dense {
			sr.Dense[j] = r.f64()
		}
		for c := range s.Levels {
			v := r.str()
			if _, ok := slices.BinarySearchFunc(s.Levels[c], v, func(l Level, v string) int { return strings.Compare(l.Value, v) }); r.err == nil && !ok {
				r.err = fmt.Errorf("sampled value %q of column %q has no level", v, st.Cat[c])
			}
			sr.Cat = append(sr.Cat, v)
		}
		if r.err == nil && i > 0 && bytes.Compare(s.Sample[i-1].Hash[:], sr.Hash[:]) > 0 {
			r.err = errors.New("sample out of hash order")
		}
		s.Sample = append(s.Sample, sr)
	}
	if r.err != nil {
		return nil
	}
	return s
}
