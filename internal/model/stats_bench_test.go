package model

import (
	"bytes"
	"context"
	"runtime"
	"slices"
	"testing"
)

// Statistics of a 100k-row blob (both splits, every column the housing
// specs read).
func BenchmarkComputeStats100k(b *testing.B) {
	def := housingDef(b)
	rows := withSplit(def, housingRows(b, def, 100_000, 80))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ComputeStats(context.Background(), def, scanOf(rows)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(rows)), "ns/row")
}

// Both housing specs on n rows: today's FitEach (two passes over the rows)
// against FitFromStats on statistics already computed (what a version
// costs once its blobs' statistics exist).
func BenchmarkFitBothSpecs(b *testing.B) {
	def := housingDef(b)
	rows := housingRows(b, def, 100_000, 81)
	st := mustStats(b, def, rows)
	b.Run("rows-FitEach-100k", func(b *testing.B) {
		for b.Loop() {
			_, errs := FitEach(context.Background(), def, def.Models, scanOf(rows))
			for _, err := range errs {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("stats-FitFromStats-100k", func(b *testing.B) {
		for b.Loop() {
			for _, spec := range def.Models {
				if _, err := FitFromStats(def, spec, st); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// Merging a version's statistics (1M rows in 200 blobs of 5,000) with a
// new 5,000-row blob's: the incremental cost of a version.
func BenchmarkMergeStats(b *testing.B) {
	def := housingDef(b)
	base := mustStats(b, def, withSplit(def, housingRows(b, def, 200_000, 82)))
	blob := mustStats(b, def, withSplit(def, housingRows(b, def, 5000, 83)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Merge(base, blob); err != nil {
			b.Fatal(err)
		}
	}
}

// Bytes of statistics against bytes of the staged rows they summarise,
// and the heap the statistics hold.
func BenchmarkStatsSize(b *testing.B) {
	def := housingDef(b)
	for _, n := range []int{5000, 100_000} {
		rows := withSplit(def, housingRows(b, def, n, 84))
		var csv bytes.Buffer
		csv.Write(def.HeaderRecord())
		enc := def.NewStagedEncoder("bench")
		for _, r := range rows {
			_, _, rec := enc.Encode(r.Row)
			csv.Write(rec)
		}
		b.Run(map[int]string{5000: "5k", 100_000: "100k"}[n], func(b *testing.B) {
			var st *Stats
			var before, after runtime.MemStats
			for b.Loop() {
				runtime.GC()
				runtime.ReadMemStats(&before)
				st = mustStats(b, def, rows)
				runtime.GC()
				runtime.ReadMemStats(&after)
			}
			enc := st.Marshal()
			b.ReportMetric(float64(len(enc)), "stats-bytes")
			b.ReportMetric(float64(csv.Len()), "rows-bytes")
			b.ReportMetric(float64(after.HeapAlloc)-float64(before.HeapAlloc), "stats-heap-bytes")
			b.ReportMetric(float64(len(st.Train.Levels[slices.Index(st.Cat, "street")])), "street-levels")
			b.ReportMetric(float64(len(st.Train.Pairs)), "pairs")
			runtime.KeepAlive(st)
		})
	}
}

// The accumulation alone, on rows already in memory and in cache (the
// rows of a staging batch).
func BenchmarkStatsBuilderAdd(b *testing.B) {
	def := housingDef(b)
	rows := withSplit(def, housingRows(b, def, 1024, 80))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		sb, err := NewStatsBuilder(def)
		if err != nil {
			b.Fatal(err)
		}
		for range 100 {
			for _, r := range rows {
				if err := sb.Add(r); err != nil {
					b.Fatal(err)
				}
			}
		}
		sb.Stats()
		n += 100 * len(rows)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/row")
}
