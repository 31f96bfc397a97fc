package dataset

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

func housingDef(tb testing.TB) *Definition {
	tb.Helper()
	b, err := os.ReadFile("../../schemas/datasets/housing.json")
	require.NoError(tb, err)
	d, err := Parse(b)
	require.NoError(tb, err)
	return d
}

// csvRecords is what encoding/csv reads from in, the reference for
// StagedReader's own splitting.
func csvRecords(in string) ([][]string, error) {
	r := csv.NewReader(strings.NewReader(in))
	r.FieldsPerRecord = -1
	return r.ReadAll()
}

func stagedRecords(in io.Reader) ([][]string, error) {
	sr := &StagedReader{br: bufio.NewReaderSize(in, 16)}
	var out [][]string
	for {
		err := sr.readRecord()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		rec := make([]string, len(sr.fields))
		for i, f := range sr.fields {
			rec[i] = string(f)
		}
		out = append(out, rec)
	}
}

func TestStagedRecordsAreEncodingCSVs(t *testing.T) {
	cases := []string{
		"a,b,c\n1,2,3\n",
		"a,b,c\r\n1,2,3\r\n",
		"a,b,c\n\n\n1,2,3",
		"a,,c,\n,\n",
		"\"a,b\",\"c\"\"d\",e\n",
		"\"multi\nline\",x\n\"crlf\r\ninside\",y\r\n",
		"x,\"\"\n\"\",\"\",\n",
		"\"open\nnever closed\n",
		"a\"b,c\n",
		"\"a\"b,c\n",
		"lone\r\n\r\nlast\r",
		strings.Repeat("long", 40) + ",\"" + strings.Repeat("q\"\"", 30) + "\"\n",
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "bc", ",", "\"", "\"\"", "\n", "\r\n", "\r", " "}
	for range 3000 {
		var b strings.Builder
		for range r.IntN(30) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		cases = append(cases, b.String())
	}
	for i, in := range cases {
		want, wantErr := csvRecords(in)
		got, err := stagedRecords(iotest.HalfReader(strings.NewReader(in)))
		if wantErr != nil {
			require.Errorf(t, err, "case %d %q", i, in)
			continue
		}
		require.NoErrorf(t, err, "case %d %q", i, in)
		require.Equalf(t, want, got, "case %d %q", i, in)
	}
}

// stagedRows has values that need quoting, missing numbers, both splits
// and a line longer than the read buffer.
func stagedRows(d *Definition) []StagedRow {
	streets := []string{"1 Main St", "a, b", `say "hi"`, "two\nlines", "cr\rlf", "", strings.Repeat("x", readBufferBytes+10)}
	var rows []StagedRow
	for i := range 200 {
		r := Row{Fields: make([]Field, len(d.kept))}
		for j, c := range d.kept {
			switch {
			case !IsNumeric(c):
				r.Fields[j] = Field{Str: streets[(i+j)%len(streets)]}
			case (i+j)%7 == 0:
				r.Fields[j] = Field{Num: math.NaN()}
			default:
				r.Fields[j] = Field{Num: float64(i*j) / 3}
			}
		}
		r.Target = Field{Num: 1000 + float64(i)}
		h := d.Hash(r)
		rows = append(rows, StagedRow{Row: r, Hash: h, Test: i%3 == 0, Source: fmt.Sprintf("b/o,%d#1", i%4)})
	}
	return rows
}

func TestStagedReaderReadsWhatTheWriterWrote(t *testing.T) {
	d := housingDef(t)
	rows := stagedRows(d)
	var buf bytes.Buffer
	sw := d.NewStagedWriter(&buf)
	for _, r := range rows {
		require.NoError(t, sw.Write(r))
	}
	require.NoError(t, sw.Flush())

	for _, tt := range []struct {
		name  string
		split Split
		keep  func(StagedRow) bool
	}{
		{"all", AllRows, func(StagedRow) bool { return true }},
		{"train", TrainSplit, TrainRows},
		{"test", TestSplit, testRows},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sr, err := d.NewStagedReader(iotest.HalfReader(bytes.NewReader(buf.Bytes())))
			require.NoError(t, err)
			sr.Select(tt.split)
			var got []StagedRow
			var reused StagedRow
			for {
				err := sr.Read(&reused)
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				r := reused
				r.Fields = append([]Field(nil), reused.Fields...)
				got = append(got, r)
			}
			var want []StagedRow
			for _, r := range rows {
				if tt.keep(r) {
					want = append(want, r)
				}
			}
			require.Len(t, got, len(want))
			for i := range want {
				require.Equal(t, format(d, want[i]), format(d, got[i]), "row %d", i)
				require.Equal(t, want[i].Hash, got[i].Hash)
				require.Equal(t, want[i].Test, got[i].Test)
				require.Equal(t, want[i].Source, got[i].Source)
			}
		})
	}
}

// format compares rows with NaN in them.
func format(d *Definition, r StagedRow) []string {
	var out []string
	for i, c := range d.kept {
		out = append(out, Format(c, r.Fields[i]))
	}
	return append(out, Format(d.Target, r.Target))
}

func TestStagedReaderRejects(t *testing.T) {
	d := housingDef(t)
	header := strings.Join(d.StagedHeader(), ",")
	good := "3,1,1000,5000,1,0,0,3,1000,0,1990,0,1 Main St,Seattle,WA 98103,USA,500000," + strings.Repeat("ab", 16) + ",0,src"
	for _, tt := range []struct {
		name, in, err string
	}{
		{"empty", "", "header"},
		{"other header", "a,b\n", "columns"},
		{"short row", header + "\n1,2\n", "fields"},
		{"bad number", header + "\n" + strings.Replace(good, "1000", "x", 1) + "\n", "sqft_living"},
		{"bad hash", header + "\n" + strings.Replace(good, strings.Repeat("ab", 16), "zz", 1) + "\n", "row hash"},
		{"bare quote", header + "\n" + strings.Replace(good, "Seattle", `Sea"ttle`, 1) + "\n", "bare"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sr, err := d.NewStagedReader(strings.NewReader(tt.in))
			if err == nil {
				_, err = sr.Next()
			}
			require.ErrorContains(t, err, tt.err)
		})
	}
	sr, err := d.NewStagedReader(strings.NewReader(header + "\n" + good + "\n"))
	require.NoError(t, err)
	r, err := sr.Next()
	require.NoError(t, err)
	require.Equal(t, "Seattle", r.Fields[13].Str)
	_, err = sr.Next()
	require.ErrorIs(t, err, io.EOF)
}
