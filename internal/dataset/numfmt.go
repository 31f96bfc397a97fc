package dataset

import (
	"math"
	"strconv"
)

// Fast paths for the numbers of typical data (counts, years, prices,
// 2.25 bathrooms): staging parses and formats every numeric value, and
// strconv's general algorithms were a fifth of its CPU. Both paths give
// exactly strconv's result or decline (numfmt_test.go checks them against
// strconv on generated and hostile values), because staged bytes feed
// content hashes and must not change.

// pow10 holds the powers of ten that a float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// maxExactDigits: a decimal of at most 15 significant digits is the only
// one of that length or shorter that rounds to its float64 (DBL_DIG), and
// its digits are below 2^53, so they convert to float64 exactly.
const maxExactDigits = 15

// parseSimpleFloat parses [-]digits[.digits] of at most 15 digits in all;
// ok is false for anything else (signs, exponents, inf, underscores...),
// which strconv.ParseFloat then handles. The digits and the power of ten are
// exact float64s, so the one division rounds correctly: the same float64
// strconv.ParseFloat returns (its own exact fast path).
func parseSimpleFloat(s string) (v float64, ok bool) {
	i := 0
	neg := false
	if i < len(s) && s[i] == '-' {
		neg = true
		i++
	}
	var m uint64
	digits, frac := 0, 0
	intStart := i
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		m = m*10 + uint64(s[i]-'0')
		digits++
	}
	if i == intStart {
		return 0, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		fracStart := i
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			m = m*10 + uint64(s[i]-'0')
			digits++
		}
		frac = i - fracStart
		if frac == 0 {
			return 0, false
		}
	}
	if i != len(s) || digits > maxExactDigits {
		return 0, false
	}
	v = float64(m) / pow10[frac]
	if neg {
		v = -v
	}
	return v, true
}

// appendFloat appends strconv.FormatFloat(v, 'g', -1, 64). A finite v that
// is an integer of at most 15 digits divided by a power of ten up to 10^8
// is found as that decimal and written directly; any other goes to strconv.
// That decimal is the shortest one that rounds to v (maxExactDigits), so its
// digits are the ones strconv's shortest formatting chooses.
func appendFloat(b []byte, v float64) []byte {
	if v == 0 {
		if math.Signbit(v) {
			return append(b, "-0"...)
		}
		return append(b, '0')
	}
	a := math.Abs(v)
	if !(a >= 1e-8 && a < 1e15) { // also NaN, Inf
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	for k := 0; k <= 8; k++ {
		m := math.Round(a * pow10[k])
		if m >= 1e15 {
			break
		}
		if m/pow10[k] == a {
			return appendDecimal(b, v < 0, uint64(m), k)
		}
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendDecimal writes m·10^-k (m > 0) in %g form with the shortest
// precision: %e when the decimal exponent is below -4 or at least 6
// (strconv's rule for precision -1), %f otherwise.
func appendDecimal(b []byte, neg bool, m uint64, k int) []byte {
	var buf [20]byte
	digs := strconv.AppendUint(buf[:0], m, 10)
	dp := len(digs) - k // decimal point position relative to digs
	for len(digs) > 1 && digs[len(digs)-1] == '0' {
		digs = digs[:len(digs)-1]
	}
	if neg {
		b = append(b, '-')
	}
	exp := dp - 1
	if exp < -4 || exp >= 6 {
		b = append(b, digs[0])
		if len(digs) > 1 {
			b = append(b, '.')
			b = append(b, digs[1:]...)
		}
		b = append(b, 'e')
		if exp < 0 {
			b = append(b, '-')
			exp = -exp
		} else {
			b = append(b, '+')
		}
		if exp < 10 {
			b = append(b, '0')
		}
		return strconv.AppendInt(b, int64(exp), 10)
	}
	if dp <= 0 {
		b = append(b, '0', '.')
		for ; dp < 0; dp++ {
			b = append(b, '0')
		}
		return append(b, digs...)
	}
	if dp >= len(digs) {
		b = append(b, digs...)
		for i := len(digs); i < dp; i++ {
			b = append(b, '0')
		}
		return b
	}
	b = append(b, digs[:dp]...)
	b = append(b, '.')
	return append(b, digs[dp:]...)
}
