package bench

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: 2^subBits buckets per power of
// two, so a recorded value is off by at most 1/64 (1.6%), like an
// HdrHistogram with two significant digits, in a fixed 64×64 array.
const subBits = 6

// Histogram counts durations in log-linear buckets. Not safe for
// concurrent use: each load worker keeps its own and they are merged.
type Histogram struct {
	counts [64 << subBits]uint64
	n      uint64
	sum    float64
	max    time.Duration
}

func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // shift that leaves subBits+1 significant bits
	return (e+1)<<subBits + int(v>>e) - 1<<subBits
}

// lowest value of bucket i, the inverse of bucketOf.
func valueOf(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	e := i>>subBits - 1
	return (uint64(i&(1<<subBits-1)) + 1<<subBits) << e
}

// Record adds one duration (negative ones count as zero).
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	h.max = max(h.max, d)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Mean is the average recorded value.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Max is the largest recorded value, exact.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the value at quantile q (0..1): the upper edge of the
// bucket holding it, so it never understates a latency.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(valueOf(i+1)-1), h.max)
		}
	}
	return h.max
}
