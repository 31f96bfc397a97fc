package bench

import (
	"testing"
	"time"
)

func TestBucketsRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 1000, 123456, 1 << 40, 1<<62 + 12345} {
		i := bucketOf(v)
		lo, hi := valueOf(i), valueOf(i+1)
		if v < lo || v >= hi {
			t.Errorf("value %d in bucket %d = [%d, %d)", v, i, lo, hi)
		}
		if hi-lo > 1 && float64(hi-lo)/float64(lo) > 1.0/64+1e-9 {
			t.Errorf("bucket %d too wide: [%d, %d)", i, lo, hi)
		}
	}
}

func TestQuantiles(t *testing.T) {
	var h Histogram
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5 * time.Millisecond}, {0.99, 9900 * time.Microsecond}, {0.999, 9990 * time.Microsecond}, {1, 10 * time.Millisecond}} {
		got := h.Quantile(tt.q)
		if got < tt.want || float64(got-tt.want) > float64(tt.want)/64 {
			t.Errorf("q%.3f = %v, want %v within 1/64 above", tt.q, got, tt.want)
		}
	}
	if h.Max() != 10*time.Millisecond || h.Count() != 10000 {
		t.Errorf("max %v count %d", h.Max(), h.Count())
	}
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }
