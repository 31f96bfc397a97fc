// Command text benchmarks Refit's text classifier (internal/text +
// internal/logreg) against scikit-learn and fastText on the same files and
// folds; run.sh drives it with baseline.py. Subcommands:
//
//	gen    --rows N --seed S --noise F --out F.csv   generated reviews (synth.Reviews)
//	folds  --in F.csv --k 10 --seed 1 --out F.folds  a fold number per data row
//	cv     --in F.csv --folds F.folds                k-fold accuracy, one JSON line
//	train  --train A.csv --test B.csv                fit time, accuracy, peak RSS, one JSON line
//	ft     --in F.csv [--folds F.folds --dir D]      fastText input files (__label__X text)
//
// Every model is unigram TF-IDF (sublinear tf, smooth idf, L2 rows) and L2
// logistic regression with λ = 1 (scikit-learn's C = 1), at scikit-learn's
// default max_iter 100 and tol 1e-4.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/refit-ml/refit/internal/classmetrics"
	"github.com/refit-ml/refit/internal/logreg"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/internal/text"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "textbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("want a subcommand: gen, folds, cv, train, ft")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	in := fs.String("in", "", "input CSV (review,sentiment)")
	out := fs.String("out", "", "output file")
	rows := fs.Int("rows", 100000, "rows to generate")
	seed := fs.Int64("seed", 1, "seed")
	noise := fs.Float64("noise", 0.05, "label noise")
	k := fs.Int("k", 10, "folds")
	folds := fs.String("folds", "", "fold file")
	trainF := fs.String("train", "", "train CSV")
	testF := fs.String("test", "", "test CSV")
	dir := fs.String("dir", "", "output folder")
	l2 := fs.Float64("l2", 1, "L2 penalty λ (C = 1/λ)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the fit here")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "gen":
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		if err := (synth.Reviews{Seed: *seed, LabelNoise: *noise}).Write(f, *rows); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case "folds":
		docs, _, err := readCSV(*in)
		if err != nil {
			return err
		}
		r := rand.New(rand.NewPCG(uint64(*seed), 0x666f6c6473))
		perm := r.Perm(len(docs))
		fold := make([]int, len(docs))
		for i, p := range perm {
			fold[p] = i % *k
		}
		var b strings.Builder
		for _, f := range fold {
			b.WriteString(strconv.Itoa(f))
			b.WriteByte('\n')
		}
		return os.WriteFile(*out, []byte(b.String()), 0o644)
	case "cv":
		docs, labels, err := readCSV(*in)
		if err != nil {
			return err
		}
		fold, nf, err := readFolds(*folds, len(docs))
		if err != nil {
			return err
		}
		start := time.Now()
		accs := make([]float64, nf)
		mean := 0.0
		for f := range nf {
			var trD, teD []string
			var trY, teY []int
			for i := range docs {
				if fold[i] == f {
					teD, teY = append(teD, docs[i]), append(teY, labels[i])
				} else {
					trD, trY = append(trD, docs[i]), append(trY, labels[i])
				}
			}
			m, err := fit(ctx, trD, trY, *l2)
			if err != nil {
				return err
			}
			met, err := m.score(teD, teY)
			if err != nil {
				return err
			}
			accs[f] = met.Accuracy
			mean += met.Accuracy / float64(nf)
		}
		return json.NewEncoder(stdout).Encode(map[string]any{
			"tool": "refit", "task": "cv", "folds": nf, "accuracy": mean, "fold_accuracy": accs,
			"seconds": time.Since(start).Seconds(),
		})
	case "train":
		t0 := time.Now()
		docs, labels, err := readCSV(*trainF)
		if err != nil {
			return err
		}
		read := time.Since(t0)
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
		}
		t1, c1 := time.Now(), cpuTime()
		m, err := fit(ctx, docs, labels, *l2)
		if err != nil {
			return err
		}
		fitTime, fitCPU := time.Since(t1), cpuTime()-c1
		pprof.StopCPUProfile()
		teD, teY, err := readCSV(*testF)
		if err != nil {
			return err
		}
		met, err := m.score(teD, teY)
		if err != nil {
			return err
		}
		// The ground truth's accuracy on the same labels (noise included):
		// the best any model can expect.
		truth, right := synth.ReviewScorer(), 0
		for i, d := range teD {
			if (truth(d) > 0) == (teY[i] == 1) {
				right++
			}
		}
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return json.NewEncoder(stdout).Encode(map[string]any{
			"tool": "refit", "task": "train", "rows": len(docs), "read_seconds": read.Seconds(),
			"fit_seconds": fitTime.Seconds(), "fit_cpu_seconds": fitCPU.Seconds(), "accuracy": met.Accuracy, "peak_rss_mb": float64(ru.Maxrss) / 1024,
			"bayes_accuracy": float64(right) / float64(len(teD)),
			"features":       m.vec.Width(), "iterations": m.res.Iterations, "converged": m.res.Converged,
			"learn_seconds": m.learn.Seconds(), "encode_seconds": m.encode.Seconds(), "optimise_seconds": m.optimise.Seconds(),
			"evaluations": m.res.Evaluations, "model_sha256": m.checksum(),
			"non_zeros": m.nonZeros, "ngrams": m.nGrams,
		})
	case "ft":
		docs, labels, err := readCSV(*in)
		if err != nil {
			return err
		}
		if *folds == "" {
			return writeFT(*out, docs, labels, func(int) bool { return true })
		}
		fold, nf, err := readFolds(*folds, len(docs))
		if err != nil {
			return err
		}
		for f := range nf {
			if err := writeFT(filepath.Join(*dir, fmt.Sprintf("train-%d.txt", f)), docs, labels, func(i int) bool { return fold[i] != f }); err != nil {
				return err
			}
			if err := writeFT(filepath.Join(*dir, fmt.Sprintf("test-%d.txt", f)), docs, labels, func(i int) bool { return fold[i] == f }); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown subcommand %q", args[0])
}

// cpuTime is the process's user and system CPU time, all threads: the
// work done, which a loaded machine stretches less than the wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var classNames = []string{synth.Negative, synth.Positive}

func readCSV(path string) ([]string, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.ReuseRecord = true
	head, err := r.Read()
	if err != nil {
		return nil, nil, err
	}
	if len(head) != 2 || head[0] != "review" || head[1] != "sentiment" {
		return nil, nil, fmt.Errorf("%s: header %q, want review,sentiment", path, head)
	}
	var docs []string
	var labels []int
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, labels, nil
		}
		if err != nil {
			return nil, nil, err
		}
		switch rec[1] {
		case synth.Negative:
			labels = append(labels, 0)
		case synth.Positive:
			labels = append(labels, 1)
		default:
			return nil, nil, fmt.Errorf("%s: label %q", path, rec[1])
		}
		docs = append(docs, strings.Clone(rec[0]))
	}
}

func readFolds(path string, n int) ([]int, int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	lines := strings.Fields(string(b))
	if len(lines) != n {
		return nil, 0, fmt.Errorf("%s: %d folds for %d rows", path, len(lines), n)
	}
	fold := make([]int, n)
	k := 0
	for i, l := range lines {
		if fold[i], err = strconv.Atoi(l); err != nil {
			return nil, 0, err
		}
		k = max(k, fold[i]+1)
	}
	return fold, k, nil
}

func writeFT(path string, docs []string, labels []int, keep func(int) bool) error {
	var b strings.Builder
	for i, d := range docs {
		if !keep(i) {
			continue
		}
		b.WriteString("__label__")
		b.WriteString(classNames[labels[i]])
		b.WriteByte(' ')
		b.WriteString(strings.Join(strings.Fields(strings.ToLower(d)), " "))
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

type model struct {
	vec *text.Vectorizer
	res *logreg.Result
	// The fit's phases: pass 1 (tokenise, count), pass 2 (tokenise,
	// encode into CSR), the L-BFGS optimisation.
	learn, encode, optimise time.Duration
	// nonZeros of the CSR, and the n-grams that bounded it for Grow.
	nonZeros, nGrams int
}

// fit is the two passes internal/model will make: learn the vectoriser,
// then encode into CSR, then fit.
func fit(ctx context.Context, docs []string, labels []int, l2 float64) (*model, error) {
	t0 := time.Now()
	l, err := text.NewLearner(text.Config{})
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		l.Observe(d)
	}
	v, err := l.Fit()
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	data, err := logreg.NewData(v.Width(), 2)
	if err != nil {
		return nil, err
	}
	data.Grow(len(docs), l.NGrams())
	var buf text.Buffer
	for i, d := range docs {
		idx, val := v.Encode(d, &buf)
		if err := data.Add(idx, val, labels[i]); err != nil {
			return nil, err
		}
	}
	t2 := time.Now()
	res, err := logreg.Fit(ctx, data, logreg.Config{L2: l2}, nil)
	if err != nil {
		return nil, err
	}
	return &model{vec: v, res: res, learn: t1.Sub(t0), encode: t2.Sub(t1), optimise: time.Since(t2),
		nonZeros: data.NonZeros(), nGrams: l.NGrams()}, nil
}

// checksum identifies the fitted vectoriser and coefficients, to show the
// fit is deterministic (the same whatever GOMAXPROCS).
func (m *model) checksum() string {
	h := sha256.New()
	_ = json.NewEncoder(h).Encode(m.vec)
	_ = json.NewEncoder(h).Encode(m.res.Model)
	return hex.EncodeToString(h.Sum(nil))
}

func (m *model) score(docs []string, labels []int) (classmetrics.Metrics, error) {
	acc, err := classmetrics.New(2)
	if err != nil {
		return classmetrics.Metrics{}, err
	}
	var buf text.Buffer
	var p []float64
	for i, d := range docs {
		idx, val := m.vec.Encode(d, &buf)
		p = m.res.Model.Proba(idx, val, p)
		if err := acc.Add(labels[i], p); err != nil {
			return classmetrics.Metrics{}, err
		}
	}
	return acc.Metrics()
}
