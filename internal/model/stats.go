package model

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/refit-ml/refit/internal/dataset"
)

// ErrStatsLayout: the statistics lack a column role a spec needs (the
// dataset gained a spec after they were computed); recompute them from
// the rows.
var ErrStatsLayout = errors.New("model: statistics do not cover the spec")

// Stats are the sufficient statistics of one rows blob, or of several
// merged, for the train and the test split separately. They live in a raw
// feature space that no spec's learned parameters enter:
//
//   - each column a spec of the dataset reads as a number: its value (0
//     when missing) and a missing indicator;
//   - each column a spec one-hot encodes: one indicator per value seen
//     (keyed by its canonical text), so a top-K vocabulary, its "other"
//     feature and any number of hash buckets are fixed sums of indicators,
//     exactly;
//   - each column the specs only hash: one indicator per (residue, sign) of
//     the value's hash modulo Mod, the least common multiple of the bucket
//     counts the specs use, so each spec's buckets are again exact sums of
//     indicators, but a near-unique column (a street address) costs 2·Mod
//     indicators, not one per row.
//
// Every spec's least-squares system is then a linear map of them, so a fit
// (FitFromStats) or a score (ScoreFromStats) reads no rows.
type Stats struct {
	Dataset string
	Num     []string // columns with a numeric role, in kept order
	Cat     []string // columns with an indicator role, in kept order
	Mod     []int    // per Cat column: 0 for one indicator per value, else the hash modulus
	Train   *Sums
	Test    *Sums
}

// Sums are the statistics of one split. The dense block is the numeric
// values (len(Num)), then the missing indicators (len(Num)), then the
// target: its means and centred co-moments are accumulated by Welford's
// update and merged by Chan's formula. Indicators keep exact counts and
// their sums of the dense block centred on Mean.
type Sums struct {
	N       int64
	Missing []int64   // per Num column: rows where it is missing
	Mean    []float64 // dense block means
	M       []float64 // dense block centred co-moments Σ (v-μ)(v-μ)ᵀ, d×d symmetric
	Levels  [][]Level // per Cat column, sorted by value
	// Pairs counts rows holding level la of Cat column ca and level lb of
	// column cb (ca < cb), keyed by pairKey.
	Pairs map[uint64]int64
	// Sample (test split only) holds the MaxSample rows of smallest row
	// hash, in hash order: a uniform sample that merges exactly (the
	// bottom-K of a union is the bottom-K of the parts' bottom-Ks), for
	// the one metric sums cannot give, MAE.
	Sample []SampleRow
}

// MaxSample bounds Sums.Sample: MAE is exact up to this many test rows
// and estimated from a uniform sample of this many beyond.
const MaxSample = 2048

// SampleRow is one sampled row in the raw feature space.
type SampleRow struct {
	Hash  dataset.RowHash
	Dense []float64 // the dense block, uncentred
	Cat   []string  // per Cat column, its level's Value
}

// Level is one value of an indicator column.
type Level struct {
	Value string
	N     int64
	S     []float64 // Σ over its rows of (v - Mean), the dense block
}

const (
	maxCatColumns = 1<<8 - 1
	maxLevels     = 1 << 24
)

func pairKey(ca, la, cb, lb int) uint64 {
	return uint64(ca)<<56 | uint64(la)<<32 | uint64(cb)<<24 | uint64(lb)
}

func splitPair(k uint64) (ca, la, cb, lb int) {
	return int(k >> 56), int(k >> 32 & (maxLevels - 1)), int(k >> 24 & 0xff), int(k & (maxLevels - 1))
}

// maxMod bounds the hash modulus of a hashed-only column; above it (bucket
// counts with a large common multiple) the column keeps one indicator per
// value instead.
const maxMod = 1 << 16

// statsLayout lists the roles the specs of def give the kept columns.
func statsLayout(def *dataset.Definition) (num, cat []string, mod []int, err error) {
	isNum, isCat, onehot := map[string]bool{}, map[string]bool{}, map[string]bool{}
	lcm := map[string]int{}
	for _, spec := range def.Models {
		for _, f := range spec.Features {
			switch f.Transform {
			case dataset.TransformNumeric:
				isNum[f.Column] = true
			case dataset.TransformOneHot:
				isCat[f.Column], onehot[f.Column] = true, true
			case dataset.TransformHashed:
				isCat[f.Column] = true
				l := max(lcm[f.Column], 1)
				if f.Buckets > 0 && l <= maxMod {
					l = l / gcd(l, f.Buckets) * f.Buckets
				}
				lcm[f.Column] = l
			}
		}
	}
	for _, c := range def.Kept() {
		if isNum[c.Name] {
			if !dataset.IsNumeric(c) {
				return nil, nil, nil, fmt.Errorf("column %q: numeric role for a %s column", c.Name, c.Type)
			}
			num = append(num, c.Name)
		}
		if isCat[c.Name] {
			cat = append(cat, c.Name)
			m := lcm[c.Name]
			if onehot[c.Name] || m > maxMod {
				m = 0
			}
			mod = append(mod, m)
		}
	}
	if len(cat) > maxCatColumns {
		return nil, nil, nil, fmt.Errorf("%d indicator columns, at most %d", len(cat), maxCatColumns)
	}
	return num, cat, mod, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// residueSlot is the indicator of a hashed-only column for hash h: the
// bucket residue modulo mod and the sign, as 2·residue (+1 if negative).
func residueSlot(h uint64, mod int) int {
	r, sign := hashBucket(h, mod)
	if sign < 0 {
		return 2*r + 1
	}
	return 2 * r
}

// residueName names a slot's level, e.g. "7-".
func residueName(slot int) string {
	if slot%2 == 1 {
		return strconv.Itoa(slot/2) + "-"
	}
	return strconv.Itoa(slot/2) + "+"
}

// parseResidue reads residueLevel's name back.
func parseResidue(v string) (r int, sign float64, err error) {
	if len(v) < 2 || (v[len(v)-1] != '+' && v[len(v)-1] != '-') {
		return 0, 0, fmt.Errorf("hash level %q", v)
	}
	r, err = strconv.Atoi(v[:len(v)-1])
	if err != nil || r < 0 {
		return 0, 0, fmt.Errorf("hash level %q", v)
	}
	sign = 1
	if v[len(v)-1] == '-' {
		sign = -1
	}
	return r, sign, nil
}

func (st *Stats) dense() int { return 2*len(st.Num) + 1 }

func (st *Stats) newSums() *Sums {
	d := st.dense()
	return &Sums{
		Missing: make([]int64, len(st.Num)),
		Mean:    make([]float64, d),
		M:       make([]float64, d*d),
		Levels:  make([][]Level, len(st.Cat)),
		Pairs:   map[uint64]int64{},
	}
}

// ComputeStats reads the rows of one blob once (both splits; scan must
// yield them all) and returns their statistics for the columns the specs
// of def read.
func ComputeStats(ctx context.Context, def *dataset.Definition, scan dataset.Scan) (*Stats, error) {
	sb, err := NewStatsBuilder(def)
	if err != nil {
		return nil, err
	}
	err = scan(func(r dataset.StagedRow) error {
		if sb.n%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return sb.Add(r)
	})
	if err != nil {
		return nil, fmt.Errorf("stats %s: %w", def.Name, err)
	}
	return sb.Stats(), nil
}

// StatsBuilder accumulates the statistics of rows given one at a time, in
// the order of their blob: ComputeStats feeds it a scan, and staging the
// rows it has just validated, so that a staged chunk's statistics cost no
// second read. The same rows in the same order give the same bits either
// way.
type StatsBuilder struct {
	st                 *Stats
	numField, catField []int
	catCol             []dataset.Column
	catNum             []bool // per Cat column: it holds numbers
	train, test        *sumsBuilder
	width, n           int
}

// NewStatsBuilder starts the statistics of one blob of def's rows.
func NewStatsBuilder(def *dataset.Definition) (*StatsBuilder, error) {
	num, cat, mod, err := statsLayout(def)
	if err != nil {
		return nil, fmt.Errorf("stats %s: %w", def.Name, err)
	}
	st := &Stats{Dataset: def.Name, Num: num, Cat: cat, Mod: mod}
	sb := &StatsBuilder{st: st, width: len(def.Kept())}
	for _, c := range num {
		i, _ := def.Index(c)
		sb.numField = append(sb.numField, i)
	}
	for _, c := range cat {
		i, _ := def.Index(c)
		sb.catField = append(sb.catField, i)
		sb.catCol = append(sb.catCol, def.Kept()[i])
		sb.catNum = append(sb.catNum, dataset.IsNumeric(def.Kept()[i]))
	}
	sb.train, sb.test = newSumsBuilder(st), newSumsBuilder(st)
	sb.test.sample = true
	return sb, nil
}

// Add accumulates the next row. Its Fields may be reused once it returns.
func (sb *StatsBuilder) Add(r dataset.StagedRow) error {
	if err := checkFields(sb.n, sb.width, r); err != nil {
		return err
	}
	b := sb.train
	if r.Test {
		b = sb.test
	}
	if err := b.add(r, sb.st.Num, sb.numField, sb.catField, sb.catCol, sb.catNum); err != nil {
		return fmt.Errorf("row %d: %w", sb.n, err)
	}
	sb.n++
	return nil
}

// Stats ends the accumulation and returns the statistics of the rows
// added; the builder must not be used after.
func (sb *StatsBuilder) Stats() *Stats {
	sb.st.Train, sb.st.Test = sb.train.finish(), sb.test.finish()
	return sb.st
}

type sumsBuilder struct {
	s     *Sums
	k     int
	shift []float64 // the first row's dense block: level sums are of v - shift
	index []map[string]int
	mod   []int
	slot  [][]int // hashed-only columns: (residue, sign) slot -> level + 1
	v     []float64
	delta []float64   // v - μ before the row
	e     []float64   // v - μ after it
	w     []float64   // v - shift
	nz    []int       // positions where delta is not zero
	nzw   []int       // positions where w is not zero
	lv    []int       // the row's level per Cat column
	pairs []pairTable // per pair of Cat columns a < c, at pairIndex(a, c)
	// sample: keep the rows of smallest hash (the test split).
	sample bool
	full   bool            // the sample holds MaxSample rows below cut
	cut    dataset.RowHash // rows at or above it cannot enter the sample
}

func newSumsBuilder(st *Stats) *sumsBuilder {
	d := st.dense()
	b := &sumsBuilder{s: st.newSums(), k: len(st.Num), v: make([]float64, d), delta: make([]float64, d),
		e: make([]float64, d), w: make([]float64, d), nz: make([]int, 0, d), nzw: make([]int, 0, d),
		lv: make([]int, len(st.Cat)), pairs: make([]pairTable, pairIndex(0, len(st.Cat)))}
	b.mod = st.Mod
	for _, m := range st.Mod {
		b.index = append(b.index, map[string]int{})
		b.slot = append(b.slot, make([]int, 2*m))
	}
	return b
}

// add accumulates one row. It does the arithmetic of the plain per-row
// update (every dense position, every level sum) in the same order, but
// leaves out the terms that are exactly zero: a position whose value
// equals its running mean (a column never missing has a missing indicator
// equal to its mean, 0) adds 0 to its mean and delta·0 to the co-moments,
// and one equal to the shift adds 0 to a level sum. Those sums start at +0
// and so can never be -0, and adding ±0 to anything else is the identity,
// so the bits are those of the plain update (TestStatsBytesAreStable). A
// row whose deltas overflow (±Inf, where Inf·0 would be NaN) takes the
// plain update.
func (b *sumsBuilder) add(r dataset.StagedRow, numName []string, numField, catField []int, catCol []dataset.Column, catNum []bool) error {
	s, k, v := b.s, b.k, b.v
	for j, fi := range numField {
		x := r.Fields[fi].Num
		switch {
		case math.IsNaN(x):
			v[j], v[k+j] = 0, 1
			s.Missing[j]++
		case math.IsInf(x, 0):
			return fmt.Errorf("column %q: value is infinite", numName[j])
		default:
			v[j], v[k+j] = x, 0
		}
	}
	v[2*k] = r.Target.Num
	if b.shift == nil {
		b.shift = slices.Clone(v)
	}
	s.N++
	d, n := len(v), float64(s.N)
	// Welford: M += (v - μ_old)(v - μ_new)ᵀ, upper triangle.
	delta, e, nz := b.delta, b.e, b.nz[:0]
	finite := true
	for i := range v {
		di := v[i] - s.Mean[i]
		delta[i] = di
		if di != 0 {
			s.Mean[i] += di / n
			nz = append(nz, i)
			finite = finite && di-di == 0
		}
	}
	b.nz = nz
	if finite {
		for _, j := range nz {
			e[j] = v[j] - s.Mean[j]
		}
		for a, i := range nz {
			di := delta[i]
			row := s.M[i*d : i*d+d]
			for _, j := range nz[a:] {
				row[j] += di * e[j]
			}
		}
	} else {
		for i := range d {
			if delta[i] == 0 {
				continue
			}
			row := s.M[i*d : i*d+d]
			for j := i; j < d; j++ {
				row[j] += delta[i] * (v[j] - s.Mean[j])
			}
		}
	}
	w, nzw := b.w, b.nzw[:0]
	for i := range v {
		wi := v[i] - b.shift[i]
		w[i] = wi
		if wi != 0 {
			nzw = append(nzw, i)
		}
	}
	b.nzw = nzw
	for c, fi := range catField {
		var l int
		var ok bool
		var key string
		if m := b.mod[c]; m > 0 {
			slot := residueSlot(fieldHash(catNum[c], r.Fields[fi]), m)
			l, ok = b.slot[c][slot]-1, b.slot[c][slot] > 0
			if !ok {
				b.slot[c][slot] = len(s.Levels[c]) + 1
				key = residueName(slot)
			}
		} else {
			key = r.Fields[fi].Str // dataset.Format of a string
			if catNum[c] {
				key = dataset.Format(catCol[c], r.Fields[fi])
			}
			l, ok = b.index[c][key]
		}
		if !ok {
			l = len(s.Levels[c])
			if l >= maxLevels {
				return fmt.Errorf("column %q: more than %d values", catCol[c].Name, maxLevels)
			}
			b.index[c][key] = l
			s.Levels[c] = append(s.Levels[c], Level{Value: key, S: make([]float64, d)})
		}
		lev := &s.Levels[c][l]
		lev.N++
		ls := lev.S
		for _, i := range nzw {
			ls[i] += w[i]
		}
		b.lv[c] = l
		if c > 0 {
			pairs := b.pairs[pairIndex(0, c):pairIndex(0, c+1)]
			for a := range pairs {
				pairs[a].inc(s.Pairs, a, b.lv[a], c, l)
			}
		}
	}
	if b.sample && !(b.full && bytes.Compare(r.Hash[:], b.cut[:]) >= 0) {
		sr := SampleRow{Hash: r.Hash, Dense: slices.Clone(v), Cat: make([]string, len(b.lv))}
		for c, l := range b.lv {
			sr.Cat[c] = s.Levels[c][l].Value
		}
		s.Sample = append(s.Sample, sr)
		if len(s.Sample) >= 2*MaxSample {
			s.Sample = bottom(s.Sample)
			// A later row at or above the last kept hash would sort after it.
			b.full, b.cut = true, s.Sample[MaxSample-1].Hash
		}
	}
	return nil
}

// pairIndex numbers the pairs of Cat columns a < c: (0,1), (0,2), (1,2),
// (0,3)...; pairIndex(0, n) is the number of pairs of n columns.
func pairIndex(a, c int) int { return c*(c-1)/2 + a }

// maxPairCells bounds a pairTable: past it (two near-unique one-hot
// columns) the pair's counts go to the map.
const maxPairCells = 1 << 15

// pairTable counts one pair of Cat columns' level pairs in a dense table
// while their levels fit one; the counts end in Sums.Pairs either way
// (integers: the order they are added in does not matter).
type pairTable struct {
	rows, cols int
	n          []int64 // la·cols + lb
	spilled    bool    // counting in the map
}

func (t *pairTable) inc(pairs map[uint64]int64, ca, la, cb, lb int) {
	if la < t.rows && lb < t.cols {
		t.n[la*t.cols+lb]++
		return
	}
	if !t.spilled {
		rows, cols := t.rows, t.cols
		for la >= rows {
			rows = max(2*rows, 4)
		}
		for lb >= cols {
			cols = max(2*cols, 4)
		}
		if rows*cols <= maxPairCells {
			n := make([]int64, rows*cols)
			for i := range t.rows {
				copy(n[i*cols:i*cols+t.cols], t.n[i*t.cols:(i+1)*t.cols])
			}
			t.rows, t.cols, t.n = rows, cols, n
			t.n[la*t.cols+lb]++
			return
		}
		// Spill: the map gets what the table holds, and everything after.
		t.flush(pairs, ca, cb)
		t.rows, t.cols, t.n, t.spilled = 0, 0, nil, true
	}
	pairs[pairKey(ca, la, cb, lb)]++
}

// flush adds the table's counts to pairs.
func (t *pairTable) flush(pairs map[uint64]int64, ca, cb int) {
	for la := range t.rows {
		for lb, cnt := range t.n[la*t.cols : (la+1)*t.cols] {
			if cnt != 0 {
				pairs[pairKey(ca, la, cb, lb)] += cnt
			}
		}
	}
}

// bottom keeps the MaxSample rows of smallest hash, in hash order (ties in
// the order given).
func bottom(rows []SampleRow) []SampleRow {
	slices.SortStableFunc(rows, func(a, b SampleRow) int { return bytes.Compare(a.Hash[:], b.Hash[:]) })
	return slices.Clip(rows[:min(len(rows), MaxSample)])
}

// finish centres the level sums on the final means and puts the levels in
// value order.
func (b *sumsBuilder) finish() *Sums {
	s := b.s
	d := len(b.v)
	for c := 1; c < len(s.Levels); c++ {
		for a := range c {
			t := &b.pairs[pairIndex(a, c)]
			t.flush(s.Pairs, a, c)
			t.rows, t.cols, t.n = 0, 0, nil
		}
	}
	for i := range d {
		for j := range i {
			s.M[i*d+j] = s.M[j*d+i]
		}
	}
	for c := range s.Levels {
		for l := range s.Levels[c] {
			lev := &s.Levels[c][l]
			for i := range d {
				lev.S[i] -= float64(lev.N) * (s.Mean[i] - b.shift[i])
			}
		}
	}
	s.sortLevels()
	s.Sample = bottom(s.Sample)
	return s
}

// sortLevels orders each column's levels by value and renumbers Pairs.
func (s *Sums) sortLevels() {
	remap := make([][]int, len(s.Levels))
	for c, ls := range s.Levels {
		order := make([]int, len(ls))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return cmp.Compare(ls[a].Value, ls[b].Value) })
		remap[c] = make([]int, len(ls))
		sorted := make([]Level, len(ls))
		for to, from := range order {
			sorted[to] = ls[from]
			remap[c][from] = to
		}
		s.Levels[c] = sorted
	}
	pairs := make(map[uint64]int64, len(s.Pairs))
	for key, n := range s.Pairs {
		ca, la, cb, lb := splitPair(key)
		pairs[pairKey(ca, remap[ca][la], cb, remap[cb][lb])] = n
	}
	s.Pairs = pairs
}

// Merge combines statistics in the order given (by blob position, so the
// result is bit-identical however they were computed): the statistics of
// all their rows. The inputs are not modified.
func Merge(parts ...*Stats) (*Stats, error) {
	if len(parts) == 0 {
		return nil, errors.New("model: merge of no statistics")
	}
	first := parts[0]
	out := &Stats{Dataset: first.Dataset, Num: first.Num, Cat: first.Cat, Mod: first.Mod, Train: first.newSums(), Test: first.newSums()}
	for i, p := range parts {
		if p.Dataset != first.Dataset || !slices.Equal(p.Num, first.Num) || !slices.Equal(p.Cat, first.Cat) || !slices.Equal(p.Mod, first.Mod) {
			return nil, fmt.Errorf("model: merge: statistics %d have another layout (%s %v %v, want %s %v %v)", i, p.Dataset, p.Num, p.Cat, first.Dataset, first.Num, first.Cat)
		}
		var err error
		if out.Train, err = mergeSums(out.Train, p.Train); err != nil {
			return nil, fmt.Errorf("model: merge statistics %d: %w", i, err)
		}
		if out.Test, err = mergeSums(out.Test, p.Test); err != nil {
			return nil, fmt.Errorf("model: merge statistics %d: %w", i, err)
		}
	}
	return out, nil
}

// mergeSums returns a's rows followed by b's (Chan et al.'s update).
func mergeSums(a, b *Sums) (*Sums, error) {
	d := len(a.Mean)
	na, nb := float64(a.N), float64(b.N)
	n := na + nb
	out := &Sums{N: a.N + b.N, Missing: make([]int64, len(a.Missing)), Mean: make([]float64, d), M: make([]float64, d*d),
		Levels: make([][]Level, len(a.Levels)), Pairs: make(map[uint64]int64, max(len(a.Pairs), len(b.Pairs)))}
	for i := range a.Missing {
		out.Missing[i] = a.Missing[i] + b.Missing[i]
	}
	delta := make([]float64, d)
	for i := range d {
		switch {
		case b.N == 0:
			out.Mean[i] = a.Mean[i]
		case a.N == 0:
			out.Mean[i] = b.Mean[i]
		default:
			delta[i] = b.Mean[i] - a.Mean[i]
			out.Mean[i] = a.Mean[i] + delta[i]*(nb/n)
		}
	}
	w := 0.0
	if a.N > 0 && b.N > 0 {
		w = na * nb / n
	}
	for i := range d * d {
		out.M[i] = a.M[i] + b.M[i] + delta[i/d]*delta[i%d]*w
	}
	// Shifts that re-centre each side's level sums on the merged means.
	da, db := make([]float64, d), make([]float64, d)
	for i := range d {
		da[i], db[i] = a.Mean[i]-out.Mean[i], b.Mean[i]-out.Mean[i]
	}
	ra, rb := make([][]int, len(a.Levels)), make([][]int, len(a.Levels))
	for c := range a.Levels {
		la, lb := a.Levels[c], b.Levels[c]
		ra[c], rb[c] = make([]int, len(la)), make([]int, len(lb))
		merged := make([]Level, 0, max(len(la), len(lb)))
		recentre := func(l Level, shift []float64) Level {
			s := make([]float64, d)
			for i := range d {
				s[i] = l.S[i] + float64(l.N)*shift[i]
			}
			return Level{Value: l.Value, N: l.N, S: s}
		}
		i, j := 0, 0
		for i < len(la) || j < len(lb) {
			switch {
			case j == len(lb) || (i < len(la) && la[i].Value < lb[j].Value):
				ra[c][i] = len(merged)
				merged = append(merged, recentre(la[i], da))
				i++
			case i == len(la) || lb[j].Value < la[i].Value:
				rb[c][j] = len(merged)
				merged = append(merged, recentre(lb[j], db))
				j++
			default:
				l := recentre(la[i], da)
				r := recentre(lb[j], db)
				l.N += r.N
				for k := range d {
					l.S[k] += r.S[k]
				}
				ra[c][i], rb[c][j] = len(merged), len(merged)
				merged = append(merged, l)
				i++
				j++
			}
		}
		if len(merged) > maxLevels {
			return nil, fmt.Errorf("indicator column %d: more than %d values", c, maxLevels)
		}
		out.Levels[c] = merged
	}
	if len(a.Sample)+len(b.Sample) > 0 {
		out.Sample = bottom(append(slices.Clone(a.Sample), b.Sample...))
	}
	for _, side := range []struct {
		s     *Sums
		remap [][]int
	}{{a, ra}, {b, rb}} {
		for key, cnt := range side.s.Pairs {
			ca, la, cb, lb := splitPair(key)
			out.Pairs[pairKey(ca, side.remap[ca][la], cb, side.remap[cb][lb])] += cnt
		}
	}
	return out, nil
}
