package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

type memOpener map[string][]byte

func (m memOpener) Open(_ context.Context, name string) (io.ReadCloser, error) {
	b, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("%s: no such object", name)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// stagedBlobs writes rows into blobs of the given sizes.
func stagedBlobs(t *testing.T, d *Definition, rows []StagedRow, sizes ...int) (memOpener, []string) {
	t.Helper()
	o := memOpener{}
	var names []string
	for i, n := range sizes {
		var buf bytes.Buffer
		sw := d.NewStagedWriter(&buf)
		for _, r := range rows[:n] {
			require.NoError(t, sw.Write(r))
		}
		require.NoError(t, sw.Flush())
		rows = rows[n:]
		name := fmt.Sprintf("b%d.csv", i)
		o[name] = buf.Bytes()
		names = append(names, name)
	}
	require.Empty(t, rows)
	return o, names
}

// scanRows is n staged rows. The first 200 are stagedRows, with fields
// longer than the read buffer; the rest have those shortened: the scans need
// volume in rows, not bytes, and writing the 40 MB that 1,100 rows of long
// fields make took most of this package's time under -race.
func scanRows(d *Definition, n int) []StagedRow {
	rows := stagedRows(d)
	for len(rows) < n {
		for _, r := range stagedRows(d) {
			for j, f := range r.Fields {
				if len(f.Str) > readBufferBytes {
					r.Fields[j] = Field{Str: "1 Long Street"}
				}
			}
			r.Hash = d.Hash(r.Row)
			rows = append(rows, r)
		}
	}
	return rows[:n]
}

func TestScans(t *testing.T) {
	d := housingDef(t)
	rows := scanRows(d, 1000)
	o, names := stagedBlobs(t, d, rows, 0, 255, len(rows)-255)
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		scan Scan
		keep func(StagedRow) bool
	}{
		{"ScanBlobs all", d.ScanBlobs(ctx, o, names, nil), func(StagedRow) bool { return true }},
		{"ScanBlobs train", d.ScanBlobs(ctx, o, names, TrainRows), TrainRows},
		{"ScanSplit train", d.ScanSplit(ctx, o, names, TrainSplit), TrainRows},
		{"ScanSplit test", d.ScanSplit(ctx, o, names, TestSplit), testRows},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var want []StagedRow
			for _, r := range rows {
				if tt.keep(r) {
					want = append(want, r)
				}
			}
			for range 2 { // a scan can be read again
				i := 0
				require.NoError(t, tt.scan(func(r StagedRow) error {
					require.Less(t, i, len(want))
					require.Equal(t, format(d, want[i]), format(d, r), "row %d", i)
					require.Equal(t, want[i].Hash, r.Hash)
					i++
					return nil
				}))
				require.Equal(t, len(want), i)
			}
		})
	}
}

func TestScanStops(t *testing.T) {
	d := housingDef(t)
	rows := scanRows(d, 1100) // enough to stop after 1,003 with rows left
	o, names := stagedBlobs(t, d, rows, len(rows))
	stop := errors.New("stop")
	n := 0
	err := d.ScanBlobs(context.Background(), o, names, nil)(func(StagedRow) error {
		if n++; n == 1003 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1003, n, "no row after the error")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = d.ScanSplit(ctx, o, names, TrainSplit)(func(StagedRow) error { return nil })
	require.ErrorIs(t, err, context.Canceled)

	err = d.ScanSplit(context.Background(), o, append(names, "missing.csv"), TrainSplit)(func(StagedRow) error { return nil })
	require.ErrorContains(t, err, "missing.csv")
}

// testRows keeps the test split (the check of TestSplit).
func testRows(r StagedRow) bool { return r.Test }
