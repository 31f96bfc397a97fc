package preprocess

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/workers/workertest"
)

// TestSharedEncodingGivesTheSameBytes: whichever goroutine encodes a
// batch (readAhead encodes it when the caller is behind), every row's
// hash, split and record are those the caller's own encoder gives, bad
// rows included.
func TestSharedEncodingGivesTheSameBytes(t *testing.T) {
	d := workertest.Housing(t, 100)
	var buf bytes.Buffer
	require.NoError(t, synth.Housing{Seed: 3}.Write(&buf, 10000))
	text := strings.Replace(buf.String(), "\n", "\nnot,a,row\n", 7) // a few rejections among the rows
	for _, readerEncodes := range []bool{false, true} {
		r, err := d.NewInputReader(strings.NewReader(text), dataset.InputOptions{ReuseFields: true})
		require.NoError(t, err)
		newEnc := func() *dataset.StagedEncoder { return d.NewStagedEncoder("gs://b/incoming/housing/x.csv#1") }
		next, stop := readAhead(context.Background(), r, newEnc)
		own := newEnc()
		rows, rejected, shared := 0, 0, 0
		for {
			b, err := next()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			if readerEncodes && !b.encoded {
				b.encodeAll(newEnc()) // as readAhead does when the caller is behind
			}
			if b.encoded {
				shared++
			}
			for i, p := range b.rows {
				if p.rej != nil {
					rejected++
					continue
				}
				rows++
				h, test, rec := b.record(i, own)
				wantH, wantTest, wantRec := own.Encode(p.row)
				require.Equal(t, wantH, h)
				require.Equal(t, wantTest, test)
				require.Equal(t, string(wantRec), string(rec))
			}
		}
		stop()
		require.Equal(t, 10000, rows)
		require.Equal(t, 7, rejected)
		if readerEncodes {
			require.Equal(t, 10, shared, "every batch checked encoded by the other encoder")
		}
	}
}
