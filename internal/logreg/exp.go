package logreg

import "math"

// expTableBits is 64: expNeg looks 2^(j/64) up for the low bits of the
// exponent, which leaves a polynomial of degree 5 on |r| <= ln2/128.
const expTableBits = 6

// exp2Frac[j] = 2^(j/64), read-only after init.
var exp2Frac = func() (t [1 << expTableBits]float64) {
	for j := range t {
		t[j] = math.Exp2(float64(j) / (1 << expTableBits))
	}
	return t
}()

// expNeg is e^x for x <= 0, within 2 ulps of math.Exp, and 0 below -700
// (where e^x < 1e-304 does not change 1+e^x or a gradient). The loss
// pass needs one exponential per row and math.Exp's long serial Taylor
// chain was half of it; this is a table step and five multiply-adds.
func expNeg(x float64) float64 {
	const (
		scale   = (1 << expTableBits) / math.Ln2
		shifter = 0x1.8p52 // adding it rounds to an integer in the low bits
		ln2Hi   = 0x1.62e42fee00000p-1 / (1 << expTableBits)
		ln2Lo   = 0x1.a39ef35793c76p-33 / (1 << expTableBits)
	)
	if !(x >= -700) { // also NaN
		return 0
	}
	t := x*scale + shifter
	k := int64(math.Float64bits(t)) // low bits: round(x·scale), two's complement
	kf := t - shifter
	r := x - kf*ln2Hi - kf*ln2Lo
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120)))))
	v := exp2Frac[k&(1<<expTableBits-1)] * p
	// Scale by 2^(k>>6): add to the exponent bits (the result is normal).
	e := (k << (64 - 20)) >> (64 - 20) >> expTableBits // sign-extended integer part
	return math.Float64frombits(math.Float64bits(v) + uint64(e)<<52)
}
