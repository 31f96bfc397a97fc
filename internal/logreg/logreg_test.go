package logreg

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"
)

// randomData makes n rows of p features (about density of them non-zero)
// labelled by a random softmax model.
func randomData(t testing.TB, seed uint64, n, p, classes int, density float64) *Data {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 99))
	k := outputs(classes)
	w := make([]float64, p*classes)
	for i := range w {
		w[i] = 1.5 * r.NormFloat64()
	}
	_ = k
	d, err := NewData(p, classes)
	if err != nil {
		t.Fatal(err)
	}
	z := make([]float64, classes)
	for range n {
		var idx []int32
		var val []float64
		for j := range p {
			if r.Float64() < density {
				idx = append(idx, int32(j))
				val = append(val, r.NormFloat64())
			}
		}
		clear(z)
		for t, j := range idx {
			for c := range z {
				z[c] += w[int(j)*classes+c] * val[t]
			}
		}
		softmax(z)
		u, y := r.Float64(), 0
		for y < classes-1 && u > z[y] {
			u -= z[y]
			y++
		}
		if err := d.Add(idx, val, y); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func TestGradientMatchesFiniteDifferences(t *testing.T) {
	for _, classes := range []int{2, 3, 5} {
		d := randomData(t, uint64(classes), 5000, 7, classes, 0.5) // > minChunkRows: several chunks
		o := newObjective(d, Config{L2: 0.7, Chunks: 4})
		if len(o.chunks) < 2 {
			t.Fatalf("%d chunks, want several", len(o.chunks))
		}
		r := rand.New(rand.NewPCG(5, 6))
		x := make([]float64, d.features*outputs(classes)+outputs(classes))
		for i := range x {
			x[i] = 0.3 * r.NormFloat64()
		}
		g := make([]float64, len(x))
		o.eval(x, g)
		for i := range x {
			h := 1e-5
			xp, xm := slices.Clone(x), slices.Clone(x)
			xp[i] += h
			xm[i] -= h
			num := (o.eval(xp, make([]float64, len(x))) - o.eval(xm, make([]float64, len(x)))) / (2 * h)
			if math.Abs(num-g[i]) > 1e-5*max(1, math.Abs(num)) {
				t.Errorf("%d classes: ∂/∂x%d analytic %.9g, numeric %.9g", classes, i, g[i], num)
			}
		}
	}
}

// newton minimises the objective with a dense Newton method: the oracle
// for small problems. For K > 2 classes it adds (Σ_k b_k)²/2, which fixes
// the intercepts' free common shift (to sum zero) and leaves the minimiser
// otherwise unchanged.
func newton(t *testing.T, d *Data, l2 float64) *Model {
	t.Helper()
	k := outputs(d.classes)
	p := d.features*k + k
	x := make([]float64, p)
	prob := make([]float64, d.classes)
	for iter := 0; iter < 100; iter++ {
		g := mat.NewVecDense(p, nil)
		h := mat.NewSymDense(p, nil)
		// dense design row: features then a 1 for the intercept
		for i := 0; i < d.Rows(); i++ {
			xi := make([]float64, d.features+1)
			for t := d.ptr[i]; t < d.ptr[i+1]; t++ {
				xi[d.idx[t]] = float64(d.val[t])
			}
			xi[d.features] = 1
			pos := func(feat, c int) int {
				if feat == d.features {
					return d.features*k + c
				}
				return feat*k + c
			}
			y := int(d.y[i])
			var dz []float64
			var s [][]float64 // ∂²loss/∂z_a∂z_b
			if k == 1 {
				z := x[p-1]
				for f := 0; f < d.features; f++ {
					z += x[f] * xi[f]
				}
				pr := sigmoid(z)
				dz = []float64{pr - float64(y)}
				s = [][]float64{{pr * (1 - pr)}}
			} else {
				for c := range prob {
					prob[c] = x[d.features*k+c]
					for f := 0; f < d.features; f++ {
						prob[c] += x[f*k+c] * xi[f]
					}
				}
				softmax(prob)
				dz = slices.Clone(prob)
				dz[y]--
				s = make([][]float64, k)
				for a := range k {
					s[a] = make([]float64, k)
					for b := range k {
						s[a][b] = -prob[a] * prob[b]
						if a == b {
							s[a][b] += prob[a]
						}
					}
				}
			}
			for f := 0; f <= d.features; f++ {
				for a := range k {
					g.SetVec(pos(f, a), g.AtVec(pos(f, a))+dz[a]*xi[f])
					for f2 := 0; f2 <= d.features; f2++ {
						for b := range k {
							i1, i2 := pos(f, a), pos(f2, b)
							if i1 <= i2 {
								h.SetSym(i1, i2, h.At(i1, i2)+s[a][b]*xi[f]*xi[f2])
							}
						}
					}
				}
			}
		}
		for i := 0; i < d.features*k; i++ {
			g.SetVec(i, g.AtVec(i)+l2*x[i])
			h.SetSym(i, i, h.At(i, i)+l2)
		}
		if k > 1 {
			sb := 0.0
			for c := range k {
				sb += x[d.features*k+c]
			}
			for a := range k {
				g.SetVec(d.features*k+a, g.AtVec(d.features*k+a)+sb)
				for b := a; b < k; b++ {
					h.SetSym(d.features*k+a, d.features*k+b, h.At(d.features*k+a, d.features*k+b)+1)
				}
			}
		}
		var step mat.VecDense
		var chol mat.Cholesky
		if !chol.Factorize(h) {
			t.Fatal("newton: Hessian not positive definite")
		}
		if err := chol.SolveVecTo(&step, g); err != nil {
			t.Fatal(err)
		}
		for i := range x {
			x[i] -= step.AtVec(i)
		}
		if mat.Norm(&step, math.Inf(1)) < 1e-13 {
			break
		}
	}
	return &Model{Classes: d.classes, Features: d.features, Coef: x[:d.features*k], Intercept: x[d.features*k:]}
}

func maxDiff(a, b []float64) float64 {
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

func tight() Config { return Config{Tol: 1e-10, FTol: -1, MaxIter: 10000} }

func TestFitMatchesNewton(t *testing.T) {
	for _, tc := range []struct {
		name          string
		n, p, classes int
		l2            float64
	}{
		{"binary", 300, 6, 2, 1},
		{"binary weak penalty", 400, 4, 2, 0.01},
		{"three classes", 300, 5, 3, 0.5},
		{"five classes", 500, 4, 5, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := randomData(t, uint64(tc.n), tc.n, tc.p, tc.classes, 0.6)
			cfg := tight()
			cfg.L2 = tc.l2
			res, err := Fit(context.Background(), d, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := newton(t, d, tc.l2)
			if e := maxDiff(res.Model.Coef, want.Coef); e > 1e-6 {
				t.Errorf("coef differ by %g\n got %v\nwant %v", e, res.Model.Coef, want.Coef)
			}
			if e := maxDiff(res.Model.Intercept, want.Intercept); e > 1e-6 {
				t.Errorf("intercepts differ by %g: got %v, want %v", e, res.Model.Intercept, want.Intercept)
			}
			// Tol asks for more than a float64 sum of a few hundred log-losses
			// can show, so the fit ends on a line search failure: near enough.
			if res.Iterations == 0 || res.GradNorm > 1e-5 {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestFitMatchesScikitLearn(t *testing.T) {
	b, err := os.ReadFile("testdata/sklearn_logreg.json")
	if err != nil {
		t.Fatal(err)
	}
	var oracle struct {
		Problems []struct {
			Name     string  `json:"name"`
			Classes  int     `json:"classes"`
			Features int     `json:"features"`
			C        float64 `json:"C"`
			Rows     []struct {
				Idx []int32   `json:"idx"`
				Val []float64 `json:"val"`
			} `json:"rows"`
			Y         []int       `json:"y"`
			Coef      [][]float64 `json:"coef"`
			Intercept []float64   `json:"intercept"`
			Proba     [][]float64 `json:"proba"`
		} `json:"problems"`
	}
	if err := json.Unmarshal(b, &oracle); err != nil {
		t.Fatal(err)
	}
	if len(oracle.Problems) == 0 {
		t.Fatal("no problems in the oracle")
	}
	for _, pr := range oracle.Problems {
		t.Run(pr.Name, func(t *testing.T) {
			d, err := NewData(pr.Features, pr.Classes)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range pr.Rows {
				if err := d.Add(r.Idx, r.Val, pr.Y[i]); err != nil {
					t.Fatal(err)
				}
			}
			cfg := tight()
			cfg.L2 = 1 / pr.C
			res, err := Fit(context.Background(), d, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			m, k := res.Model, res.Model.Outputs()
			for c, row := range pr.Coef {
				for j, w := range row {
					if got := m.Coef[j*k+c]; math.Abs(got-w) > 1e-6 {
						t.Errorf("coef[%d][%d] = %.9g, sklearn %.9g", c, j, got, w)
					}
				}
			}
			// sklearn does not centre multinomial intercepts; compare centred.
			want := slices.Clone(pr.Intercept)
			if k > 1 {
				centre(&Model{Intercept: want})
			}
			if e := maxDiff(m.Intercept, want); e > 1e-6 {
				t.Errorf("intercepts %v, sklearn %v", m.Intercept, want)
			}
			var proba []float64
			for i, r := range pr.Rows {
				proba = m.Proba(r.Idx, r.Val, proba)
				if e := maxDiff(proba, pr.Proba[i]); e > 1e-6 {
					t.Fatalf("row %d: proba %v, sklearn %v", i, proba, pr.Proba[i])
				}
			}
		})
	}
}

func TestDeterministicAndWarmStart(t *testing.T) {
	d := randomData(t, 7, 20000, 50, 3, 0.1)
	cfg := Config{L2: 1}
	a, err := Fit(context.Background(), d, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Fit(context.Background(), d, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a.Model)
	jb, _ := json.Marshal(b.Model)
	if string(ja) != string(jb) {
		t.Fatal("two fits of the same data differ")
	}
	w, err := Fit(context.Background(), d, cfg, a.Model)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Converged || !w.Converged {
		t.Fatalf("default tolerances did not converge: %+v / %+v", a, w)
	}
	if w.Iterations >= a.Iterations || w.Loss > a.Loss+1e-9*math.Abs(a.Loss) {
		t.Fatalf("warm start: %d iterations (cold %d), loss %g (cold %g)", w.Iterations, a.Iterations, w.Loss, a.Loss)
	}
	if _, err := Fit(context.Background(), d, cfg, &Model{Classes: 3, Features: 49, Coef: make([]float64, 49*3), Intercept: make([]float64, 3)}); err == nil {
		t.Fatal("warm start of the wrong shape accepted")
	}
}

func TestWarm(t *testing.T) {
	old := &Model{Classes: 3, Features: 2, Coef: []float64{1, 2, 3, 4, 5, 6}, Intercept: []float64{0.1, 0.2, -0.3}}
	m, err := Warm(old, []int32{1, -1, 0})
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{4, 5, 6, 0, 0, 0, 1, 2, 3}; !slices.Equal(m.Coef, want) {
		t.Fatalf("coef %v, want %v", m.Coef, want)
	}
	if _, err := Warm(old, []int32{2}); err == nil {
		t.Fatal("mapped onto a feature old does not have")
	}
}

func TestErrors(t *testing.T) {
	if _, err := NewData(3, 1); err == nil {
		t.Error("one class accepted")
	}
	d, _ := NewData(3, 2)
	for _, bad := range []struct {
		idx   []int32
		val   []float64
		class int
	}{
		{[]int32{3}, []float64{1}, 0},
		{[]int32{-1}, []float64{1}, 0},
		{[]int32{0}, []float64{math.NaN()}, 0},
		{[]int32{0}, []float64{1e39}, 0},
		{[]int32{0}, []float64{math.Inf(-1)}, 0},
		{[]int32{0}, []float64{1, 2}, 0},
		{[]int32{0}, []float64{1}, 2},
	} {
		if err := d.Add(bad.idx, bad.val, bad.class); err == nil {
			t.Errorf("Add(%v, %v, %d) accepted", bad.idx, bad.val, bad.class)
		}
	}
	if _, err := Fit(context.Background(), d, Config{}, nil); err != ErrNoRows {
		t.Errorf("no rows: %v", err)
	}
	_ = d.Add([]int32{0}, []float64{1}, 1)
	if _, err := Fit(context.Background(), d, Config{L2: -1}, nil); err == nil {
		t.Error("negative l2 accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Fit(ctx, d, Config{}, nil); err == nil {
		t.Error("cancelled context: no error")
	}
}

func TestProbaAllocs(t *testing.T) {
	for _, classes := range []int{2, 4} {
		d := randomData(t, 3, 500, 20, classes, 0.3)
		res, err := Fit(context.Background(), d, Config{L2: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		idx, val := []int32{1, 5, 7}, []float64{0.5, -1, 2}
		dst := make([]float64, classes)
		if n := testing.AllocsPerRun(100, func() { res.Model.Proba(idx, val, dst) }); n != 0 {
			t.Errorf("%d classes: %v allocations", classes, n)
		}
		s := 0.0
		for _, p := range res.Model.Proba(idx, val, dst) {
			s += p
		}
		if math.Abs(s-1) > 1e-12 {
			t.Errorf("probabilities sum to %v", s)
		}
	}
}

func BenchmarkFitBinary(b *testing.B) {
	d := randomData(b, 1, 50000, 2000, 2, 0.01)
	for b.Loop() {
		if _, err := Fit(context.Background(), d, Config{L2: 1}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func TestGrowKeepsRows(t *testing.T) {
	d, _ := NewData(4, 2)
	_ = d.Add([]int32{0, 3}, []float64{1, 2}, 1)
	d.Grow(10, 100)
	if cap(d.idx) < 102 || cap(d.y) < 11 {
		t.Fatalf("caps %d %d", cap(d.idx), cap(d.y))
	}
	_ = d.Add([]int32{1}, []float64{5}, 0)
	if d.Rows() != 2 || d.NonZeros() != 3 || !slices.Equal(d.ptr, []int{0, 2, 3}) || !slices.Equal(d.val, []float32{1, 2, 5}) {
		t.Fatalf("data after Grow: %+v", d)
	}
}

// The chunks depend on the rows only and are summed in order: the same
// bytes whatever the cores.
func TestSameModelWhateverTheCores(t *testing.T) {
	d := randomData(t, 8, 12000, 30, 2, 0.2)
	fitWith := func(procs int) string {
		old := runtime.GOMAXPROCS(procs)
		defer runtime.GOMAXPROCS(old)
		res, err := Fit(context.Background(), d, Config{L2: 0.5}, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(res.Model)
		return string(b)
	}
	if a, b := fitWith(1), fitWith(4); a != b {
		t.Fatal("GOMAXPROCS 1 and 4 give different models")
	}
}

// reviewLike is n rows shaped as unigram TF-IDF rows of short reviews:
// about 20 distinct terms a row out of 6,000, Zipf-distributed, L2
// normalised.
func reviewLike(b testing.TB, n int) *Data {
	b.Helper()
	const p = 6000
	r := rand.New(rand.NewPCG(3, 4))
	z := rand.NewZipf(r, 1.1, 2, p-1)
	d, err := NewData(p, 2)
	if err != nil {
		b.Fatal(err)
	}
	var idx []int32
	var val []float64
	for range n {
		idx, val = idx[:0], val[:0]
		for range 5 + r.IntN(30) {
			idx = append(idx, int32(z.Uint64()))
		}
		slices.Sort(idx)
		idx = slices.Compact(idx)
		ss := 0.0
		for range idx {
			v := 1 + r.Float64()
			val = append(val, v)
			ss += v * v
		}
		for i := range val {
			val[i] /= math.Sqrt(ss)
		}
		if err := d.Add(idx, val, int(idx[0]%2)); err != nil {
			b.Fatal(err)
		}
	}
	return d
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkObjective is one loss and gradient pass over 200,000 rows, the
// unit L-BFGS repeats ~116 times at 1M rows; cpu-ms/op is the CPU time,
// steadier than wall time on a shared machine.
func BenchmarkObjective(b *testing.B) {
	d := reviewLike(b, 200000)
	o := newObjective(d, Config{L2: 1}.withDefaults())
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float64, d.features+1)
	for i := range x {
		x[i] = r.NormFloat64()
	}
	g := make([]float64, len(x))
	c0 := cpuTime()
	for b.Loop() {
		o.eval(x, g)
	}
	b.ReportMetric(float64(cpuTime()-c0)/1e6/float64(b.N), "cpu-ms/op")
}
