// Package logreg fits L2-regularised logistic regression on sparse rows:
// a sigmoid for two classes, a multinomial softmax for more, minimised by
// L-BFGS (gonum's optimize) on a loss and gradient written here.
//
// The objective is scikit-learn's LogisticRegression(penalty="l2") with
// C = 1/L2:
//
//	loss(W, b) = Σ_i logloss(y_i, softmax(W·x_i + b)) + (L2/2)·‖W‖²
//
// summed, not averaged, over the rows; the intercepts b are not penalised.
//
// The fit holds the training rows as CSR (Data): L-BFGS evaluates the
// gradient tens of times and re-reading and re-tokenising the rows each
// time would cost more than the fit. CSR is O(non-zeros): 8 bytes per
// non-zero (an int32 index, a float32 value: the values are computed in
// float64, a float32 keeps seven digits of a TF-IDF weight or a scaled
// number and a third less memory to stream per pass) plus 12 per row,
// never rows × features. The parameters and the
// optimiser's history are O(features × classes).
package logreg

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/optimize"
)

// Defaults, as scikit-learn's.
const (
	DefaultMaxIter = 100
	DefaultTol     = 1e-4
	// DefaultFTol stops when an iteration improves the loss by less than
	// this fraction of it (scipy's L-BFGS-B default factr 1e7 × machine ε).
	DefaultFTol = 2.220446049250313e-09
	// MaxChunks bounds the row chunks of the gradient. The chunk count
	// depends on the data's shape only, never on the cores, and the
	// chunks' sums are added in order, so the result is the same
	// everywhere; the cores take chunks as they free up, so a core the
	// machine takes away delays one chunk, not the pass.
	MaxChunks = 32
	// minChunkRows: fewer rows per chunk are not worth a goroutine.
	minChunkRows = 2048
)

// ErrNoRows: nothing to fit.
var ErrNoRows = errors.New("logreg: no rows")

// Data is the training rows in compressed sparse row form.
type Data struct {
	features, classes int
	ptr               []int
	idx               []int32
	val               []float32
	y                 []int32
}

// NewData holds rows of features columns whose labels are 0..classes-1.
func NewData(features, classes int) (*Data, error) {
	if features < 0 || classes < 2 {
		return nil, fmt.Errorf("logreg: %d features and %d classes (want >= 0 and >= 2)", features, classes)
	}
	return &Data{features: features, classes: classes, ptr: []int{0}}, nil
}

// Add appends a row (copied, the values as float32): its non-zero
// features and its class.
func (d *Data) Add(idx []int32, val []float64, class int) error {
	if len(idx) != len(val) {
		return fmt.Errorf("logreg: %d indexes for %d values", len(idx), len(val))
	}
	if class < 0 || class >= d.classes {
		return fmt.Errorf("logreg: class %d of %d", class, d.classes)
	}
	for i, j := range idx {
		if j < 0 || int(j) >= d.features {
			return fmt.Errorf("logreg: feature %d of %d", j, d.features)
		}
		if !(math.Abs(val[i]) <= math.MaxFloat32) { // also NaN
			return fmt.Errorf("logreg: feature %d is %g (want finite, within float32 range: scale it)", j, val[i])
		}
	}
	d.idx = append(d.idx, idx...)
	for _, v := range val {
		d.val = append(d.val, float32(v))
	}
	d.ptr = append(d.ptr, len(d.idx))
	d.y = append(d.y, int32(class))
	return nil
}

// Grow makes room for rows more rows holding nnz more values, so Add does
// not copy the arrays as they grow (pass 1 knows both, or bounds them).
func (d *Data) Grow(rows, nnz int) {
	d.idx = slices.Grow(d.idx, nnz)
	d.val = slices.Grow(d.val, nnz)
	d.ptr = slices.Grow(d.ptr, rows)
	d.y = slices.Grow(d.y, rows)
}

// Rows is the number of rows added.
func (d *Data) Rows() int { return len(d.y) }

// NonZeros is the number of stored values.
func (d *Data) NonZeros() int { return len(d.idx) }

// Config tunes the fit.
type Config struct {
	// L2 is λ, the penalty's weight (scikit-learn's C = 1/λ). 0 is no
	// penalty, which has no finite optimum on separable data: the fit then
	// stops at MaxIter.
	L2 float64
	// MaxIter bounds the L-BFGS iterations (0: DefaultMaxIter).
	MaxIter int
	// Tol: converged when every partial derivative of the loss is at most
	// Tol in absolute value (scikit-learn's tol with lbfgs; 0: DefaultTol).
	Tol float64
	// FTol: converged when an iteration improves the loss by less than
	// FTol × |loss| (0: DefaultFTol; negative: never).
	FTol float64
	// Chunks splits the rows for the gradient (0: by the data's shape,
	// up to MaxChunks, while adding the chunks' gradients costs at most
	// an eighth of the pass).
	Chunks int
}

func (c Config) withDefaults() Config {
	if c.MaxIter == 0 {
		c.MaxIter = DefaultMaxIter
	}
	if c.Tol == 0 {
		c.Tol = DefaultTol
	}
	if c.FTol == 0 {
		c.FTol = DefaultFTol
	}
	return c
}

// Validate names the first bad setting.
func (c Config) Validate() error {
	switch {
	case c.L2 < 0 || math.IsNaN(c.L2) || math.IsInf(c.L2, 0):
		return fmt.Errorf("l2 %g: want finite and non-negative", c.L2)
	case c.MaxIter < 0:
		return fmt.Errorf("max_iter %d: want positive", c.MaxIter)
	case c.Tol < 0 || math.IsNaN(c.Tol):
		return fmt.Errorf("tol %g: want positive", c.Tol)
	case c.Chunks < 0:
		return fmt.Errorf("chunks %d: want positive", c.Chunks)
	}
	return nil
}

// Model is a fitted classifier, plain data for an artifact.
type Model struct {
	Classes  int `json:"classes"`
	Features int `json:"features"`
	// Coef is feature-major: feature j's weights are
	// Coef[j*Outputs() : (j+1)*Outputs()]. With two classes there is one
	// output, the log-odds of class 1 (scikit-learn's coef_[0]); with K > 2,
	// one per class.
	Coef      []float64 `json:"coef"`
	Intercept []float64 `json:"intercept"`
}

// Outputs is the number of scores per row: 1 for two classes, else Classes.
func (m *Model) Outputs() int { return outputs(m.Classes) }

func outputs(classes int) int {
	if classes == 2 {
		return 1
	}
	return classes
}

// Validate checks the shape and that every weight is finite.
func (m *Model) Validate() error {
	if m.Classes < 2 || m.Features < 0 {
		return fmt.Errorf("logreg model: %d classes, %d features", m.Classes, m.Features)
	}
	k := m.Outputs()
	if len(m.Coef) != m.Features*k || len(m.Intercept) != k {
		return fmt.Errorf("logreg model: %d coefficients and %d intercepts for %d features × %d outputs",
			len(m.Coef), len(m.Intercept), m.Features, k)
	}
	for _, w := range m.Coef {
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return errors.New("logreg model: non-finite coefficient")
		}
	}
	for _, w := range m.Intercept {
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return errors.New("logreg model: non-finite intercept")
		}
	}
	return nil
}

// Proba writes the class probabilities of a row (its non-zero features)
// into dst (len Classes, reusing its storage) and returns it. It does not
// allocate when dst is large enough. Indexes outside the model are an
// error of the caller and panic.
func (m *Model) Proba(idx []int32, val []float64, dst []float64) []float64 {
	if cap(dst) < m.Classes {
		dst = make([]float64, m.Classes)
	}
	dst = dst[:m.Classes]
	if m.Classes == 2 {
		z := m.Intercept[0]
		for i, j := range idx {
			z += m.Coef[j] * val[i]
		}
		p := sigmoid(z)
		dst[0], dst[1] = 1-p, p
		return dst
	}
	k := m.Classes
	copy(dst, m.Intercept)
	for i, j := range idx {
		w := m.Coef[int(j)*k : int(j)*k+k]
		for c := range dst {
			dst[c] += w[c] * val[i]
		}
	}
	softmax(dst)
	return dst
}

// Predict is the most probable class (the lowest on a tie, as numpy's
// argmax).
func Predict(proba []float64) int {
	best := 0
	for c, p := range proba {
		if p > proba[best] {
			best = c
		}
	}
	return best
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// softmax turns scores into probabilities in place and returns the log of
// the normaliser (log-sum-exp).
func softmax(z []float64) float64 {
	m := z[0]
	for _, v := range z[1:] {
		m = max(m, v)
	}
	s := 0.0
	for c, v := range z {
		z[c] = math.Exp(v - m)
		s += z[c]
	}
	for c := range z {
		z[c] /= s
	}
	return m + math.Log(s)
}

// Result is a fit's outcome.
type Result struct {
	Model      *Model
	Iterations int
	// Evaluations of the loss and gradient (one pass over the rows each).
	Evaluations int
	// Loss is the objective at Model; GradNorm its gradient's largest
	// absolute component.
	Loss, GradNorm float64
	// Converged: the gradient or loss criterion was met (not MaxIter).
	Converged bool
	// Status is the optimiser's reason to stop, e.g. "GradientThreshold".
	Status string
}

// Fit minimises the objective on d from warm (nil: from zero, as
// scikit-learn; else the same shape, e.g. the previous version's model
// remapped onto the current features). It stops at convergence or MaxIter;
// not converging is reported in Result, not as an error.
func Fit(ctx context.Context, d *Data, cfg Config, warm *Model) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("logreg: %w", err)
	}
	cfg = cfg.withDefaults()
	if d.Rows() == 0 {
		return nil, ErrNoRows
	}
	k := outputs(d.classes)
	p := d.features*k + k
	x0 := make([]float64, p)
	if warm != nil {
		if err := warm.Validate(); err != nil {
			return nil, fmt.Errorf("logreg: warm start: %w", err)
		}
		if warm.Classes != d.classes || warm.Features != d.features {
			return nil, fmt.Errorf("logreg: warm start has %d classes × %d features, the data %d × %d",
				warm.Classes, warm.Features, d.classes, d.features)
		}
		copy(x0, warm.Coef)
		copy(x0[d.features*k:], warm.Intercept)
	}
	o := newObjective(d, cfg)
	var ctxErr error
	prob := optimize.Problem{
		Func: o.loss,
		Grad: o.grad,
		Status: func() (optimize.Status, error) {
			if err := ctx.Err(); err != nil {
				ctxErr = err
				return optimize.Failure, err
			}
			return optimize.NotTerminated, nil
		},
	}
	var conv optimize.Converger = optimize.NeverTerminate{}
	if cfg.FTol > 0 {
		conv = &optimize.FunctionConverge{Relative: cfg.FTol, Iterations: 1}
	}
	settings := &optimize.Settings{
		GradientThreshold: cfg.Tol,
		MajorIterations:   cfg.MaxIter,
		Converger:         conv,
	}
	res, err := optimize.Minimize(prob, x0, settings, &optimize.LBFGS{Linesearcher: &optimize.MoreThuente{}, Store: 10, GradStopThreshold: cfg.Tol})
	if ctxErr != nil {
		return nil, fmt.Errorf("logreg: %w", ctxErr)
	}
	if res == nil || res.X == nil {
		return nil, fmt.Errorf("logreg: minimise: %w", err)
	}
	status := res.Status.String()
	if err != nil {
		// A line search that cannot improve any more (the loss's float64
		// precision, when Tol asks for more) leaves the best point found:
		// report it, not converged, as scikit-learn warns and keeps it.
		status = fmt.Sprintf("%s: %v", status, err)
	}
	m := &Model{Classes: d.classes, Features: d.features, Coef: res.X[: d.features*k : d.features*k], Intercept: res.X[d.features*k:]}
	if k > 1 {
		centre(m)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("logreg: %w", err)
	}
	g := o.lastG
	loss := o.lastF
	if !o.have || !equal(res.X, o.lastX) {
		g = make([]float64, p)
		loss = o.eval(res.X, g)
	}
	gn := 0.0
	for _, v := range g {
		gn = max(gn, math.Abs(v))
	}
	return &Result{
		Model:       m,
		Iterations:  res.MajorIterations,
		Evaluations: o.evals,
		Loss:        loss,
		GradNorm:    gn,
		Converged:   err == nil && (res.Status == optimize.GradientThreshold || res.Status == optimize.FunctionConvergence),
		Status:      status,
	}, nil
}

// centre shifts the multinomial intercepts to sum to zero: softmax is
// unchanged by a common shift and the intercepts are not penalised, so
// this picks one of equal solutions (the coefficients already sum to zero
// at the optimum, by the penalty).
func centre(m *Model) {
	mean := 0.0
	for _, b := range m.Intercept {
		mean += b
	}
	mean /= float64(len(m.Intercept))
	for c := range m.Intercept {
		m.Intercept[c] -= mean
	}
}

// objective evaluates the loss and its gradient together and keeps the
// gradient for the Grad call that follows at the same point.
type objective struct {
	d      *Data
	l2     float64
	k      int
	chunks [][2]int    // row ranges
	grads  [][]float64 // per chunk
	losses []float64   // per chunk
	probs  [][]float64 // per chunk scratch, k wide
	lastX  []float64   // point of lastG
	lastG  []float64
	lastF  float64
	have   bool
	evals  int
}

func newObjective(d *Data, cfg Config) *objective {
	k := outputs(d.classes)
	p := d.features*k + k
	n := d.Rows()
	c := cfg.Chunks
	if c == 0 {
		c = min(MaxChunks, max(1, d.NonZeros()*k/(8*p)))
	}
	c = min(c, max(1, n/minChunkRows))
	o := &objective{d: d, l2: cfg.L2, k: k, lastX: make([]float64, p), lastG: make([]float64, p)}
	for i := range c {
		o.chunks = append(o.chunks, [2]int{i * n / c, (i + 1) * n / c})
		o.grads = append(o.grads, make([]float64, p))
		o.probs = append(o.probs, make([]float64, d.classes))
	}
	o.losses = make([]float64, c)
	return o
}

func (o *objective) loss(x []float64) float64 {
	o.lastF = o.eval(x, o.lastG)
	copy(o.lastX, x)
	o.have = true
	return o.lastF
}

func (o *objective) grad(g, x []float64) {
	if !o.have || !equal(x, o.lastX) {
		o.loss(x)
	}
	copy(g, o.lastG)
}

func equal(a, b []float64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// eval returns the loss at x and writes its gradient into g.
func (o *objective) eval(x, g []float64) float64 {
	o.evals++
	workers := min(len(o.chunks), runtime.GOMAXPROCS(0))
	if workers == 1 {
		for c := range o.chunks {
			o.losses[c] = o.chunk(x, o.grads[c], o.probs[c], o.chunks[c])
		}
	} else {
		// The caller works too: on a loaded machine a helper the scheduler
		// does not run yet leaves its chunks to the others instead of
		// stalling the pass, and the caller is not put to sleep and woken.
		var next atomic.Int32
		work := func() {
			for c := int(next.Add(1) - 1); c < len(o.chunks); c = int(next.Add(1) - 1) {
				o.losses[c] = o.chunk(x, o.grads[c], o.probs[c], o.chunks[c])
			}
		}
		var wg sync.WaitGroup
		for range workers - 1 {
			wg.Go(work)
		}
		work()
		wg.Wait()
	}
	// Chunks in order: the same sums whatever the scheduling.
	f := 0.0
	copy(g, o.grads[0])
	f = o.losses[0]
	for c := 1; c < len(o.chunks); c++ {
		f += o.losses[c]
		for i, v := range o.grads[c] {
			g[i] += v
		}
	}
	nw := o.d.features * o.k
	pen := 0.0
	for i, w := range x[:nw] {
		pen += w * w
		g[i] += o.l2 * w
	}
	return f + o.l2/2*pen
}

// chunk sums the log-loss and its gradient over rows r[0]..r[1].
func (o *objective) chunk(x, g, prob []float64, r [2]int) float64 {
	clear(g)
	d, k := o.d, o.k
	nw := d.features * k
	w, b := x[:nw], x[nw:]
	gw, gb := g[:nw], g[nw:]
	if k == 1 {
		return o.binaryChunk(w, b[0], gw, gb, r)
	}
	f := 0.0
	for i := r[0]; i < r[1]; i++ {
		idx, val := d.idx[d.ptr[i]:d.ptr[i+1]], d.val[d.ptr[i]:d.ptr[i+1]]
		y := int(d.y[i])
		copy(prob, b)
		for t, j := range idx {
			wj := w[int(j)*k : int(j)*k+k]
			for c := range prob {
				prob[c] += wj[c] * float64(val[t])
			}
		}
		zy := prob[y]
		f += softmax(prob) - zy
		prob[y]--
		for c, dz := range prob {
			gb[c] += dz
		}
		for t, j := range idx {
			gj := gw[int(j)*k : int(j)*k+k]
			v := float64(val[t])
			for c, dz := range prob {
				gj[c] += dz * v
			}
		}
	}
	return f
}

// logBlock is how many factors 1+e (each in (1, 2]) binaryChunk multiplies
// before one logarithm: at most 2^64, far from overflow.
const logBlock = 64

// binaryChunk is chunk for two classes. Per row, ln(1+e^z) - y·z and
// σ(z) - y come from one exponential e = exp(-|z|), stably; the ln(1+e)
// terms are summed as the log of their product, one logarithm per
// logBlock rows instead of one per row (the logarithm was a third of the
// pass). Rounding 1+e costs at most one ulp of 1 per row, below the
// loss's own summation error.
func (o *objective) binaryChunk(w []float64, b0 float64, gw, gb []float64, r [2]int) float64 {
	d := o.d
	f, prod, inBlock := 0.0, 1.0, 0
	gb0 := 0.0
	for i := r[0]; i < r[1]; i++ {
		lo, hi := d.ptr[i], d.ptr[i+1]
		idx, val := d.idx[lo:hi], d.val[lo:hi:hi]
		val = val[:len(idx)]
		z := b0
		for t, j := range idx {
			z += w[j] * float64(val[t])
		}
		yf := float64(d.y[i])
		e := expNeg(-math.Abs(z))
		sig := 1 / (1 + e)
		if z < 0 {
			sig = e * sig
		}
		f += max(z, 0) - yf*z
		prod *= 1 + e
		if inBlock++; inBlock == logBlock {
			f += math.Log(prod)
			prod, inBlock = 1, 0
		}
		dz := sig - yf
		gb0 += dz
		for t, j := range idx {
			gw[j] += dz * float64(val[t])
		}
	}
	gb[0] = gb0
	return f + math.Log(prod)
}

// Warm maps old onto a new feature space: feature j of the new space takes
// old's weights for feature from[j] (-1: zero). Intercepts carry over.
func Warm(old *Model, from []int32) (*Model, error) {
	if err := old.Validate(); err != nil {
		return nil, err
	}
	k := old.Outputs()
	m := &Model{Classes: old.Classes, Features: len(from), Coef: make([]float64, len(from)*k), Intercept: append([]float64(nil), old.Intercept...)}
	for j, o := range from {
		if o < 0 {
			continue
		}
		if int(o) >= old.Features {
			return nil, fmt.Errorf("logreg: warm map sends feature %d to %d of %d", j, o, old.Features)
		}
		copy(m.Coef[j*k:(j+1)*k], old.Coef[int(o)*k:int(o+1)*k])
	}
	return m, nil
}
