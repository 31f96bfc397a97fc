package dataset

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// hostileFloats are values near the edges of the fast paths.
var hostileFloats = []float64{
	0, math.Copysign(0, -1), 1, -1, 0.1, 0.2, 0.1 + 0.2, 1.0 / 3, 2.0 / 3, 0.5, 2.25, -2.25, 1.5,
	99999, 100000, 999999, 999999.5, 1e6, 1e6 + 1, 1234567, 450000, 1.5e6, 1e7, 1e8, 100000000,
	0.001, 0.0001, 0.00012, 0.00001, 1e-5, 1.5e-5, 1e-8, 1e-9, 1.5e-8, 123456.78, 12345.678,
	1e14, 1e14 + 0.5, 999999999999999, 1e15, 1e15 + 1, 1e16, 1 << 53, 1<<53 + 1, 1e21, 1e22, 1e300,
	math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1), math.NaN(),
	math.Nextafter(1, 2), math.Nextafter(0.1, 1), math.Nextafter(100, 0), 5e-324, 2.5e-5,
	0.30000000000000004, 123.456, -0.75, 4.35, 1.005, 2.675, 1e-4 * 3, 9.999999999999999,
}

func TestAppendFloatMatchesStrconv(t *testing.T) {
	check := func(v float64) {
		t.Helper()
		want := strconv.FormatFloat(v, 'g', -1, 64)
		if got := string(appendFloat(nil, v)); got != want {
			t.Fatalf("appendFloat(%b) = %q, want %q", v, got, want)
		}
	}
	for _, v := range hostileFloats {
		check(v)
		check(-v)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 300_000 {
		// Decimals of every short length and scale, and arbitrary bits.
		k := r.IntN(12)
		m := float64(r.Int64N(int64(pow10[r.IntN(17)]) + 1))
		check(m / pow10[k])
		check(m * pow10[r.IntN(8)])
		check(r.NormFloat64() * pow10[r.IntN(10)])
		check(math.Float64frombits(r.Uint64()))
	}
}

func TestParseSimpleFloatMatchesStrconv(t *testing.T) {
	check := func(s string) {
		t.Helper()
		got, ok := parseSimpleFloat(s)
		want, err := strconv.ParseFloat(s, 64)
		if !ok {
			return // declined: strconv parses it
		}
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("parseSimpleFloat(%q) = %v, want %v (%v)", s, got, want, err)
		}
	}
	for _, s := range []string{"0", "-0", "00", "007", "0.0", "-0.0", "1", "1.5", "2.25", "450000.0",
		"0.1", "0.30000000000000004", "123456789012345", "1234567890123456", "999999999999999.9",
		"1e5", "+1", "-", ".5", "5.", "1..2", "1.2.3", "1_000", "inf", "NaN", "0x10", " 1", "1 ",
		"0.000000000000001", "9007199254740993", "12345678901234.5", "-99.99"} {
		check(s)
	}
	for _, s := range []string{"1e5", "+1", "-", ".5", "5.", "1_000", "inf", "0x10", " 1", "1234567890123456"} {
		if _, ok := parseSimpleFloat(s); ok {
			t.Errorf("parseSimpleFloat(%q) accepted a form it should leave to strconv", s)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 300_000 {
		v := r.NormFloat64() * pow10[r.IntN(10)]
		check(strconv.FormatFloat(v, 'f', r.IntN(8), 64))
		check(strconv.FormatFloat(v, 'f', -1, 64))
		check(strconv.Itoa(r.IntN(1 << 50)))
	}
}

func FuzzNumberFastPaths(f *testing.F) {
	for _, v := range hostileFloats {
		f.Add(strconv.FormatFloat(v, 'f', -1, 64), v)
	}
	f.Fuzz(func(t *testing.T, s string, v float64) {
		if got, want := string(appendFloat(nil, v)), strconv.FormatFloat(v, 'g', -1, 64); got != want {
			t.Fatalf("appendFloat(%b) = %q, want %q", v, got, want)
		}
		if got, ok := parseSimpleFloat(s); ok {
			want, err := strconv.ParseFloat(s, 64)
			if err != nil || math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("parseSimpleFloat(%q) = %v, want %v (%v)", s, got, want, err)
			}
		}
	})
}
