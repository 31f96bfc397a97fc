package model

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/linreg"
)

// FitFromStats fits spec from the train split of st as Fit does from the
// rows st summarises: the same transforms (the same vocabulary, ties
// broken by value; the mean and standard deviation of the present values,
// the mean imputed), the same objective and the same solve, reading no
// rows. Sums are formed in another order than Fit's, so coefficients agree
// to rounding (see stats_test.go), not bit for bit.
func FitFromStats(def *dataset.Definition, spec dataset.ModelSpec, st *Stats) (*Artifact, error) {
	a, err := fitFromStats(def, spec, st)
	if err != nil {
		return nil, fmt.Errorf("fit %s/%s from statistics: %w", def.Name, spec.Name, err)
	}
	return a, nil
}

func fitFromStats(def *dataset.Definition, spec dataset.ModelSpec, st *Stats) (*Artifact, error) {
	if _, err := newLearners(def, spec); err != nil {
		return nil, err
	}
	if st.Dataset != def.Name {
		return nil, fmt.Errorf("statistics of dataset %q", st.Dataset)
	}
	s := st.Train
	if s.N == 0 {
		return nil, ErrNoRows
	}
	ts := make([]Transform, len(spec.Features))
	for i, f := range spec.Features {
		t := Transform{Column: f.Column, Transform: f.Transform}
		switch f.Transform {
		case dataset.TransformNumeric:
			k := slices.Index(st.Num, f.Column)
			if k < 0 {
				return nil, fmt.Errorf("%w: no numeric statistics of column %q", ErrStatsLayout, f.Column)
			}
			t.Numeric = presentMoments(s, len(st.Num), k)
		case dataset.TransformOneHot:
			c := slices.Index(st.Cat, f.Column)
			if c < 0 || st.Mod[c] > 0 {
				return nil, fmt.Errorf("%w: no value counts of column %q", ErrStatsLayout, f.Column)
			}
			counts := make(map[string]int, len(s.Levels[c]))
			for _, l := range s.Levels[c] {
				counts[l.Value] = int(l.N)
			}
			t.OneHot = vocabulary(counts, maxCategories(f))
		case dataset.TransformHashed:
			t.Hashed = &Hashed{Buckets: f.Buckets}
		}
		ts[i] = t
	}
	a := newArtifact(def, spec, ts, int(s.N))
	m, err := specMoments(st, s, ts)
	if err != nil {
		return nil, err
	}
	var sol linreg.Solution
	if spec.L2.Auto {
		var lambda float64
		sol, lambda, err = m.SolveGCV(linreg.GCVGrid())
		a.L2 = &lambda
	} else {
		sol, err = m.Solve(spec.L2.Lambda)
	}
	if err != nil {
		return nil, err
	}
	a.Intercept, a.Coef = sol.Intercept, sol.Coef
	return a, nil
}

// presentMoments is what pass 1 of Fit learns of numeric column k: the mean
// and standard deviation of its present values, the mean imputed.
func presentMoments(s *Sums, nNum, k int) *Numeric {
	d := 2*nNum + 1
	miss := s.Missing[k]
	present := s.N - miss
	if present == 0 {
		return &Numeric{Missing: int(miss)}
	}
	n, np := float64(s.N), float64(present)
	// Missing rows hold 0: the present mean is N μ / n_p, and
	// Σ_present (x - μp)² = M - N μ² n_m / n_p.
	mu := s.Mean[k]
	mean := mu * n / np
	ss := s.M[k*d+k] - n*mu*mu*float64(miss)/np
	std := math.Sqrt(max(ss, 0) / np)
	return &Numeric{Mean: mean, Std: std, Impute: mean, Missing: int(miss)}
}

// member is one spec feature an indicator contributes to, with its weight
// (1, or the hash sign).
type member struct {
	feat int
	w    float64
}

// numFeat is a numeric spec feature as an affine map of the dense block:
// a·value + b·missing + c.
type numFeat struct {
	feat, k int
	a, b, c float64
}

// specMap is a spec's features as linear maps of the raw features.
type specMap struct {
	p    int
	nums []numFeat
	memb [][][]member // per Cat column, per level: the features it feeds
}

// newSpecMap binds transforms to the raw features of s.
func newSpecMap(st *Stats, s *Sums, ts []Transform) (*specMap, error) {
	var nums []numFeat
	memb := make([][][]member, len(st.Cat))
	p := 0
	for _, tr := range ts {
		switch {
		case tr.Numeric != nil:
			k := slices.Index(st.Num, tr.Column)
			if k < 0 {
				return nil, fmt.Errorf("%w: no numeric statistics of column %q", ErrStatsLayout, tr.Column)
			}
			sd := tr.Numeric.Std
			if sd <= 0 {
				sd = 1
			}
			nums = append(nums, numFeat{feat: p, k: k, a: 1 / sd, b: tr.Numeric.Impute / sd, c: -tr.Numeric.Mean / sd})
		default:
			c := slices.Index(st.Cat, tr.Column)
			if c < 0 {
				return nil, fmt.Errorf("%w: no value counts of column %q", ErrStatsLayout, tr.Column)
			}
			mod := st.Mod[c]
			if mod > 0 && (tr.Hashed == nil || mod%tr.Hashed.Buckets != 0) {
				return nil, fmt.Errorf("%w: column %q is hashed modulo %d, the spec needs %s", ErrStatsLayout, tr.Column, mod, tr.Transform)
			}
			if memb[c] == nil {
				memb[c] = make([][]member, len(s.Levels[c]))
			}
			var level map[string]int
			if tr.OneHot != nil {
				level = map[string]int{tr.OneHot.Reference: -1}
				for j, v := range tr.OneHot.Levels {
					level[v] = j
				}
			}
			for l, lev := range s.Levels[c] {
				switch {
				case mod > 0:
					// (h>>1) mod B = ((h>>1) mod Mod) mod B as B divides Mod.
					r, sign, err := parseResidue(lev.Value)
					if err != nil {
						return nil, err
					}
					memb[c][l] = append(memb[c][l], member{p + r%tr.Hashed.Buckets, sign})
				case tr.Hashed != nil:
					b, sign := hashBucket(fnv1a(lev.Value), tr.Hashed.Buckets)
					memb[c][l] = append(memb[c][l], member{p + b, sign})
				default:
					j, ok := level[lev.Value]
					if !ok {
						j = len(tr.OneHot.Levels)
					}
					if j >= 0 {
						memb[c][l] = append(memb[c][l], member{p + j, 1})
					}
				}
			}
		}
		p += tr.Width()
	}
	return &specMap{p: p, nums: nums, memb: memb}, nil
}

// specMoments maps the raw statistics s through the transforms: the
// moments of the spec's features and the target, exactly (to rounding)
// those of the design matrix Fit would build from the same rows.
func specMoments(st *Stats, s *Sums, ts []Transform) (linreg.Moments, error) {
	if s.N == 0 {
		return linreg.Moments{}, ErrNoRows
	}
	sm, err := newSpecMap(st, s, ts)
	if err != nil {
		return linreg.Moments{}, err
	}
	nNum := len(st.Num)
	d, y := st.dense(), 2*nNum
	p, nums, memb := sm.p, sm.nums, sm.memb
	n := float64(s.N)
	mean := make([]float64, p)
	cross := make([]float64, p*p) // Σ of centred products
	crossY := make([]float64, p)
	isInd := make([]bool, p)
	M := func(i, j int) float64 { return s.M[i*d+j] }
	for _, f := range nums {
		mean[f.feat] = f.a*s.Mean[f.k] + f.b*s.Mean[nNum+f.k] + f.c
		xi, mi := f.k, nNum+f.k
		for _, g := range nums {
			xj, mj := g.k, nNum+g.k
			cross[f.feat*p+g.feat] = f.a*g.a*M(xi, xj) + f.a*g.b*M(xi, mj) + f.b*g.a*M(mi, xj) + f.b*g.b*M(mi, mj)
		}
		crossY[f.feat] = f.a*M(xi, y) + f.b*M(mi, y)
	}
	// Indicator features: raw products first, centred below.
	for c := range memb {
		for l, ms := range memb[c] {
			lev := s.Levels[c][l]
			cnt := float64(lev.N)
			for _, f := range ms {
				isInd[f.feat] = true
				mean[f.feat] += f.w * cnt
				for _, g := range ms {
					cross[f.feat*p+g.feat] += f.w * g.w * cnt
				}
				for _, g := range nums {
					v := f.w * (g.a*lev.S[g.k] + g.b*lev.S[nNum+g.k])
					cross[f.feat*p+g.feat] += v
					cross[g.feat*p+f.feat] += v
				}
				crossY[f.feat] += f.w * lev.S[y]
			}
		}
	}
	for key, cnt := range s.Pairs {
		ca, la, cb, lb := splitPair(key)
		if memb[ca] == nil || memb[cb] == nil {
			continue
		}
		for _, f := range memb[ca][la] {
			for _, g := range memb[cb][lb] {
				v := f.w * g.w * float64(cnt)
				cross[f.feat*p+g.feat] += v
				cross[g.feat*p+f.feat] += v
			}
		}
	}
	for i := range p {
		if isInd[i] {
			mean[i] /= n
		}
	}
	for i := range p {
		for j := range p {
			if isInd[i] && isInd[j] {
				cross[i*p+j] -= n * mean[i] * mean[j]
			}
		}
	}
	m := linreg.Moments{N: int(s.N), MeanX: mean, MeanY: s.Mean[y], Cov: cross, CovY: crossY, VarY: M(y, y) / n}
	for i := range cross {
		cross[i] /= n
	}
	for i := range crossY {
		crossY[i] /= n
	}
	return m, nil
}

// ScoreFromStats scores art on the test split of st, reading no rows:
// SSE = Σ (e - ē)² + N ē² with Σ (e - ē)² = Syy - 2wᵀSxy + wᵀSxxw from the
// centred moments, and so RMSE and R² as Evaluate gives them (to rounding).
// MAE is not a function of sums: it is the mean absolute error on the
// test split's bottom-K hash sample (Sums.Sample), exact while the split
// has at most MaxSample rows, a uniform-sample estimate beyond (relative
// standard error about 1/√MaxSample ≈ 2% times the spread of |error| over
// its mean). A decision that must be exact on mae (NeedsRows) reads the
// test rows with EvaluateEach instead.
func ScoreFromStats(def *dataset.Definition, art *Artifact, st *Stats) (Metrics, error) {
	if err := art.check(); err != nil {
		return Metrics{}, err
	}
	if def.Name != art.Dataset || st.Dataset != def.Name {
		return Metrics{}, fmt.Errorf("model: score: artifact of %q, statistics of %q, dataset %q", art.Dataset, st.Dataset, def.Name)
	}
	s := st.Test
	if s.N == 0 {
		return Metrics{}, fmt.Errorf("score from statistics: %w", ErrNoRows)
	}
	m, err := specMoments(st, s, art.Transforms)
	if err != nil {
		return Metrics{}, fmt.Errorf("score from statistics: %w", err)
	}
	mae, err := sampleMAE(st, s, art)
	if err != nil {
		return Metrics{}, fmt.Errorf("score from statistics: %w", err)
	}
	p := len(art.Coef)
	w := art.Coef
	ebar := m.MeanY - art.Intercept
	resid := m.VarY
	for i := range p {
		ebar -= w[i] * m.MeanX[i]
		resid -= 2 * w[i] * m.CovY[i]
		q := 0.0
		for j := range p {
			q += m.Cov[i*p+j] * w[j]
		}
		resid += w[i] * q
	}
	n := float64(s.N)
	sse := n * (max(resid, 0) + ebar*ebar)
	ms := Metrics{Rows: int(s.N), RMSE: math.Sqrt(sse / n), MAE: mae}
	if m.VarY > 0 {
		ms.R2 = 1 - sse/(n*m.VarY)
	}
	return ms, nil
}

// NeedsRows reports whether def's promotion rule names mae, which only a
// pass over the test rows scores (ScoreFromStats cannot).
func NeedsRows(def *dataset.Definition) bool {
	p := def.Promotion
	_, lo := p.Min["mae"]
	_, hi := p.Max["mae"]
	return p.PrimaryMetric == "mae" || lo || hi
}

// sampleMAE is the mean absolute error of art on s's sample.
func sampleMAE(st *Stats, s *Sums, art *Artifact) (float64, error) {
	if len(s.Sample) == 0 {
		return 0, ErrNoRows
	}
	sm, err := newSpecMap(st, s, art.Transforms)
	if err != nil {
		return 0, err
	}
	nNum := len(st.Num)
	sae := 0.0
	for _, r := range s.Sample {
		pred := art.Intercept
		for _, f := range sm.nums {
			pred += art.Coef[f.feat] * (f.a*r.Dense[f.k] + f.b*r.Dense[nNum+f.k] + f.c)
		}
		for c, ms := range sm.memb {
			if ms == nil {
				continue
			}
			l, ok := slices.BinarySearchFunc(s.Levels[c], r.Cat[c], func(l Level, v string) int { return strings.Compare(l.Value, v) })
			if !ok {
				return 0, fmt.Errorf("sampled value %q of column %q has no level", r.Cat[c], st.Cat[c])
			}
			for _, m := range ms[l] {
				pred += art.Coef[m.feat] * m.w
			}
		}
		sae += math.Abs(r.Dense[2*nNum] - pred)
	}
	return sae / float64(len(s.Sample)), nil
}
