package text_test

import (
	"bytes"
	"encoding/csv"
	"syscall"
	"testing"
	"time"

	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/internal/text"
)

// reviews is n generated reviews, the bench/text training file's text.
func reviews(b *testing.B, n int) []string {
	b.Helper()
	var buf bytes.Buffer
	if err := (synth.Reviews{Seed: 1, LabelNoise: 0.05}).Write(&buf, n); err != nil {
		b.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		b.Fatal(err)
	}
	docs := make([]string, 0, n)
	for _, r := range recs[1:] {
		docs = append(docs, r[0])
	}
	return docs
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkObserveReviews and BenchmarkEncodeReviews are pass 1 and pass 2
// of a unigram TF-IDF fit over 20,000 generated reviews (op = the 20,000);
// cpu-ms/op is steadier than wall time on a shared machine.
func BenchmarkObserveReviews(b *testing.B) {
	docs := reviews(b, 20000)
	c0 := cpuTime()
	for b.Loop() {
		l, err := text.NewLearner(text.Config{})
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range docs {
			l.Observe(d)
		}
	}
	b.ReportMetric(float64(cpuTime()-c0)/1e6/float64(b.N), "cpu-ms/op")
}

func BenchmarkEncodeReviews(b *testing.B) {
	docs := reviews(b, 20000)
	l, err := text.NewLearner(text.Config{})
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range docs {
		l.Observe(d)
	}
	v, err := l.Fit()
	if err != nil {
		b.Fatal(err)
	}
	var buf text.Buffer
	c0 := cpuTime()
	for b.Loop() {
		for _, d := range docs {
			v.Encode(d, &buf)
		}
	}
	b.ReportMetric(float64(cpuTime()-c0)/1e6/float64(b.N), "cpu-ms/op")
}
