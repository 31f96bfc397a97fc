package model

import (
	"context"
	"testing"
)

func BenchmarkFit100k(b *testing.B) {
	def := housingDef(b)
	rows := housingRows(b, def, 100_000, 30)
	for _, name := range []string{"linear-onehot", "linear-hashed"} {
		b.Run(name, func(b *testing.B) {
			spec := mustSpec(b, def, name)
			for b.Loop() {
				if _, err := Fit(context.Background(), def, spec, scanOf(rows)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(rows)), "ns/row")
		})
	}
}

func BenchmarkPredict(b *testing.B) {
	def := housingDef(b)
	rows := housingRows(b, def, 4096, 31)
	for _, name := range []string{"linear-onehot", "linear-hashed"} {
		b.Run(name, func(b *testing.B) {
			a := mustFit(b, def, mustSpec(b, def, name), rows)
			p, err := a.Predictor(def)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p.Predict(rows[i&4095].Row)
				i++
			}
		})
	}
}

// Load: decode, validate and compile an artifact.
func BenchmarkLoad(b *testing.B) {
	def := housingDef(b)
	a := mustFit(b, def, mustSpec(b, def, "linear-onehot"), housingRows(b, def, 5000, 32))
	data, err := a.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		back, err := Unmarshal(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := back.Predictor(def); err != nil {
			b.Fatal(err)
		}
	}
}
