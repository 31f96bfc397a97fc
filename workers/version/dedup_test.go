package version

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/dataset"
)

func byHashThenPos(a, b positioned) int {
	if c := compareHashes(a.hash, b.hash); c != 0 {
		return c
	}
	return a.pos - b.pos
}

// batchOf returns n rows in position order: SHA-256 hashes with repeats,
// and, when crafted, first 16 bits shared by most rows (as a client
// grinding hashes could make them).
func batchOf(n int, crafted bool, seed uint64) []positioned {
	r := rand.New(rand.NewPCG(seed, 1))
	rows := make([]positioned, n)
	for i := range rows {
		var buf [8]byte
		binary.LittleEndian.PutUint64(buf[:], r.Uint64N(uint64(n)*3/4+1)) // about a quarter repeats
		sum := sha256.Sum256(buf[:])
		var h dataset.RowHash
		copy(h[:], sum[:])
		if crafted && r.IntN(10) > 0 {
			h[0], h[1] = 0xab, 0xcd
		}
		rows[i] = positioned{h, i}
	}
	return rows
}

func TestSortPositioned(t *testing.T) {
	for _, tt := range []struct {
		n       int
		crafted bool
	}{{0, false}, {1, false}, {1000, false}, {1 << 14, false}, {100_000, false}, {100_000, true}} {
		t.Run(fmt.Sprintf("n=%d/crafted=%v", tt.n, tt.crafted), func(t *testing.T) {
			got := batchOf(tt.n, tt.crafted, 7)
			want := slices.Clone(got)
			slices.SortFunc(want, byHashThenPos)
			sortPositioned(got)
			require.Equal(t, want, got)
		})
	}
}

// BenchmarkSortPositioned: the batch's sort against one comparison sort.
func BenchmarkSortPositioned(b *testing.B) {
	for _, n := range []int{5_000, 1_000_000} {
		rows := batchOf(n, false, 3)
		work := make([]positioned, n)
		for _, impl := range []struct {
			name string
			sort func([]positioned)
		}{{"buckets", sortPositioned}, {"pdqsort", func(r []positioned) { slices.SortFunc(r, byHashThenPos) }}} {
			b.Run(fmt.Sprintf("rows=%d/%s", n, impl.name), func(b *testing.B) {
				for range b.N {
					copy(work, rows)
					impl.sort(work)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/row")
			})
		}
	}
}

// TestMarkKnownAcrossBlocks: a batch checked against a sorted stream of
// known hashes in blocks of any size marks exactly the known rows.
func TestMarkKnownAcrossBlocks(t *testing.T) {
	known := batchOf(10_000, false, 11)
	var stream []dataset.RowHash
	isKnown := map[dataset.RowHash]bool{}
	for _, r := range known {
		if !isKnown[r.hash] {
			stream = append(stream, r.hash)
		}
		isKnown[r.hash] = true
	}
	slices.SortFunc(stream, compareHashes)
	// A batch of new rows and known ones, unique, sorted by hash.
	rows := batchOf(3_000, false, 12)
	for i := 0; i < len(rows); i += 3 {
		rows[i].hash = stream[(i*7)%len(stream)]
	}
	slices.SortFunc(rows, byHashThenPos)
	rows = slices.CompactFunc(rows, func(a, b positioned) bool { return a.hash == b.hash })
	for _, size := range []int{1, 7, 4096, len(stream)} {
		t.Run(fmt.Sprintf("block=%d", size), func(t *testing.T) {
			dup := make(bitset, (3_000+63)/64)
			i := 0
			for k := 0; k < len(stream) && i < len(rows); k += size {
				i = markKnown(rows, i, stream[k:min(k+size, len(stream))], dup)
			}
			marked := 0
			for _, r := range rows {
				require.Equal(t, isKnown[r.hash], dup.has(r.pos), "row %d", r.pos)
				if isKnown[r.hash] {
					marked++
				}
			}
			require.Greater(t, marked, 900)
		})
	}
}
