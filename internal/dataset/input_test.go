package dataset_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/synth"
)

func housing(tb testing.TB) *dataset.Definition {
	tb.Helper()
	b, err := os.ReadFile("../../schemas/datasets/housing.json")
	require.NoError(tb, err)
	d, err := dataset.Parse(b)
	require.NoError(tb, err)
	return d
}

const (
	hdr  = "date,price,bedrooms,bathrooms,sqft_living,sqft_lot,floors,waterfront,view,condition,sqft_above,sqft_basement,yr_built,yr_renovated,street,city,statezip,country"
	good = "2014-05-02 00:00:00,313000.0,3.0,1.5,1340,7912,1.5,0,0,3,1340,0,1955,2005,18810 Densmore Ave N,Shoreline,WA 98133,USA"
)

// row builds a data line from good with some fields replaced (by header name).
func row(replace ...string) string {
	names := strings.Split(hdr, ",")
	vals := strings.Split(good, ",")
	for i := 0; i < len(replace); i += 2 {
		for j, n := range names {
			if n == replace[i] {
				vals[j] = replace[i+1]
			}
		}
	}
	return strings.Join(vals, ",")
}

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

type rej struct {
	Line   int
	Reason string
}

type inputCase struct {
	name     string
	in       string
	opts     dataset.InputOptions
	fileErr  string // expected FileError reason
	accepted int
	rejected []rej
	ignored  []string
	check    func(t *testing.T, d *dataset.Definition, rows []dataset.Row)
}

// field returns a kept string column of a row.
func field(t *testing.T, d *dataset.Definition, r dataset.Row, name string) string {
	t.Helper()
	i, ok := d.Index(name)
	require.True(t, ok, name)
	return r.Fields[i].Str
}

func inputCases() []inputCase {
	oneMB := strings.Repeat("x", 1<<20)
	return []inputCase{
		{name: "good", in: lines(hdr, good, good), accepted: 2,
			check: func(t *testing.T, d *dataset.Definition, rows []dataset.Row) {
				require.Equal(t, 313000.0, rows[0].Target.Num)
				require.Equal(t, "WA 98133", field(t, d, rows[0], "statezip"))
				i, _ := d.Index("sqft_living")
				require.Equal(t, 1340.0, rows[1].Fields[i].Num)
			}},
		{name: "a value accepted before is still checked when it differs",
			// The second and third rows repeat an accepted statezip (its
			// checks are skipped); the others differ by a space or a letter.
			in:       lines(hdr, good, good, row("statezip", " WA 98133 "), row("statezip", "wa 98133"), good),
			accepted: 4, rejected: []rej{{5, `statezip: "wa 98133" does not match ^[A-Z]{2} [0-9]{5}$`}},
			check: func(t *testing.T, d *dataset.Definition, rows []dataset.Row) {
				for _, r := range rows {
					require.Equal(t, "WA 98133", field(t, d, r, "statezip"))
				}
			}},
		{name: "missing header", in: lines(good, good),
			fileErr: `missing target column "price" (line 1 has none of the column names: is the header missing?)`},
		{name: "missing target column",
			in:      lines(strings.Replace(hdr, "price,", "", 1), strings.Replace(good, "313000.0,", "", 1)),
			fileErr: `missing target column "price"`},
		{name: "missing other columns",
			in:      lines(strings.Replace(hdr, ",city,statezip", "", 1), strings.Replace(good, ",Shoreline,WA 98133", "", 1)),
			fileErr: `missing columns "city", "statezip"`},
		{name: "missing target and other",
			in:      lines(strings.Replace(strings.Replace(hdr, "price,", "", 1), ",city", "", 1)),
			fileErr: `missing target column "price"; missing columns "city"`},
		{name: "duplicate header names", in: lines(hdr+",city", good+",Seattle"),
			fileErr: `duplicate columns in header: "city"`},
		{name: "optional dropped column absent", in: lines(strings.TrimPrefix(hdr, "date,"), strings.TrimPrefix(good, "2014-05-02 00:00:00,")),
			accepted: 1},
		{name: "header names trimmed, quoted", in: lines(`" date ",`+strings.ReplaceAll(strings.TrimPrefix(hdr, "date,"), ",", " , "), good),
			accepted: 1},
		{name: "wrong types", in: lines(hdr,
			row("bedrooms", "three"),
			row("sqft_living", "1340.5"),
			row("waterfront", "maybe"),
			good,
			row("statezip", "98133"),
			row("price", ""),
			row("city", " "),
			row("view", "5")),
			accepted: 1,
			rejected: []rej{
				{2, `bedrooms: "three" is not a number`},
				{3, `sqft_living: "1340.5" is not a whole number`},
				{4, `waterfront: "maybe" is not a boolean (want 0/1 or true/false)`},
				{6, `statezip: "98133" does not match ^[A-Z]{2} [0-9]{5}$`},
				{7, `price: missing value`},
				{8, `city: missing value`},
				{9, `view: 5 is out of range (want <= 4)`},
			}},
		{name: "dropped column not validated", in: lines(hdr, row("date", "not a date")), accepted: 1},
		{name: "extra and missing fields", in: lines(hdr, good+",extra", good, strings.TrimSuffix(good, ",USA"), good),
			accepted: 2,
			rejected: []rej{{2, "expected 18 fields, got 19"}, {4, "expected 18 fields, got 17"}}},
		{name: "extra unknown column", in: lines(hdr+",notes,", good+",nice view,", good+",,"),
			accepted: 2, ignored: []string{"notes", ""}},
		{name: "empty file", in: "", fileErr: "empty file"},
		{name: "only blank lines", in: "\n\r\n  \n", fileErr: "empty file"},
		{name: "only a BOM", in: "\ufeff", fileErr: "empty file"},
		{name: "header only", in: lines(hdr)},
		{name: "header only without newline", in: hdr},
		{name: "quoted commas", in: lines(hdr, row("street", `"1, Main St, Unit 2"`), good), accepted: 2,
			check: func(t *testing.T, d *dataset.Definition, rows []dataset.Row) {
				require.Equal(t, "1, Main St, Unit 2", field(t, d, rows[0], "street"))
			}},
		{name: "quoted newline", in: lines(hdr, row("street", "\"12 Main St\nApt 4\""), row("city", "")), accepted: 1,
			rejected: []rej{{4, "city: missing value"}},
			check: func(t *testing.T, d *dataset.Definition, rows []dataset.Row) {
				require.Equal(t, "12 Main St\nApt 4", field(t, d, rows[0], "street"))
			}},
		{name: "doubled quotes", in: lines(hdr, row("street", `"The ""Big"" House"`), row("street", `""""`)), accepted: 2,
			check: func(t *testing.T, d *dataset.Definition, rows []dataset.Row) {
				require.Equal(t, `The "Big" House`, field(t, d, rows[0], "street"))
				require.Equal(t, `"`, field(t, d, rows[1], "street"))
			}},
		{name: "bare quote in unquoted field kept", in: lines(hdr, row("street", `12" Main St`)), accepted: 1,
			check: func(t *testing.T, d *dataset.Definition, rows []dataset.Row) {
				require.Equal(t, `12" Main St`, field(t, d, rows[0], "street"))
			}},
		{name: "text after closing quote", in: lines(hdr, row("street", `"12 Main"St`), good), accepted: 1,
			rejected: []rej{{2, "text after the closing quote of field 15"}}},
		{name: "CRLF", in: strings.ReplaceAll(lines(hdr, row("country", `"USA"`), row("street", "\"a\nb\""), row("price", "x"), good), "\n", "\r\n"),
			accepted: 3, rejected: []rej{{5, `price: "x" is not a number`}},
			check: func(t *testing.T, d *dataset.Definition, rows []dataset.Row) {
				require.Equal(t, "USA", field(t, d, rows[0], "country"))
				require.Equal(t, "a\nb", field(t, d, rows[1], "street"))
			}},
		{name: "CR at the end of a 64 KiB read", in: crAtBufferEnd(), accepted: 2, ignored: []string{"notes"}},
		{name: "BOM", in: "\ufeff" + lines(hdr, good), accepted: 1},
		{name: "1 MB line between good lines", in: lines(hdr, good, oneMB, good, row("street", `"`+oneMB+"\n"+oneMB+`"`), good),
			accepted: 3,
			rejected: []rej{{3, "record longer than 65536 bytes"}, {5, "record longer than 65536 bytes (record on lines 5-6)"}}},
		{name: "long record under a small limit", in: lines(hdr, good, row("street", strings.Repeat("y", 200))),
			opts: dataset.InputOptions{MaxRecordBytes: 250}, accepted: 1,
			rejected: []rej{{3, "record longer than 250 bytes"}}},
		{name: "header longer than the limit", in: lines(hdr, good), opts: dataset.InputOptions{MaxRecordBytes: 100},
			fileErr: "header longer than 100 bytes"},
		{name: "binary file", in: "PK\x03\x04\x14\x00\x00\x00\x08\x00price,date\n", fileErr: "binary file (NUL byte in the first 8 KiB)"},
		{name: "header not UTF-8", in: lines(strings.Replace(hdr, "date", "d\xe9te", 1), good),
			fileErr: "binary file (header is not valid UTF-8)"},
		{name: "UTF-16", in: "\xff\xfed\x00a\x00", fileErr: "UTF-16 text: save the file as UTF-8 CSV"},
		{name: "record not UTF-8", in: lines(hdr, row("city", "Seattl\xe9"), row("date", "\xff"), good), accepted: 1,
			rejected: []rej{{2, "not valid UTF-8"}, {3, "not valid UTF-8"}}},
		{name: "NUL after the first 8 KiB", in: hdr + "\n" + strings.Repeat(good+"\n", 80) + lines(row("city", "Sea\x00ttle"), good),
			accepted: 81, rejected: []rej{{82, "binary data (NUL byte)"}}},
		{name: "price 0 rejected", in: lines(hdr, row("price", "0.0"), good), accepted: 1,
			rejected: []rej{{2, "price: 0.0 is out of range (want > 0)"}}},
		// The quote swallows the rest of the file: the reason names every
		// line it took, so none goes uncounted.
		{name: "unterminated quote", in: lines(hdr, good, row("street", `"12 Main St`), good), accepted: 1,
			rejected: []rej{{3, "unterminated quoted field: the quote opened on line 3 is never closed, so lines 3-4 were read as one record"}}},
		{name: "unterminated quote, last line without newline", in: hdr + "\n" + good + "\n" + row("street", `"12 Main St`) + "\n" + good + "\n" + good,
			accepted: 1,
			rejected: []rej{{3, "unterminated quoted field: the quote opened on line 3 is never closed, so lines 3-5 were read as one record"}}},
		{name: "unterminated quote over the record limit", in: lines(hdr, good, row("street", `"12 Main St`), good, good, good),
			opts: dataset.InputOptions{MaxRecordBytes: 250}, accepted: 1,
			rejected: []rej{{3, "unterminated quoted field: the quote opened on line 3 is never closed, so lines 3-6 were read as one record"}}},
		{name: "trailing blank lines", in: lines(hdr, good, "", good, "", "   ", "\t", ""), accepted: 2},
		{name: "last line without newline", in: hdr + "\n" + good + "\n" + good, accepted: 2},
		{name: "last line without newline, CR", in: hdr + "\r\n" + good + "\r", accepted: 1},
	}
}

// crAtBufferEnd puts the \r of a record's \r\n, right after a closing
// quote, as the last byte of the 64 KiB chunk the reader sees.
func crAtBufferEnd() string {
	rest := "," + row("country", `"USA"`)
	pad := strings.Repeat("p", 64<<10-1-len(rest))
	return "notes," + hdr + "\r\n" + pad + rest + "\r\n" + "n," + good + "\r\n"
}

type result struct {
	rows     []dataset.Row
	rejected []dataset.Rejected
	ignored  []string
}

func readAll(d *dataset.Definition, r io.Reader, opts dataset.InputOptions) (result, error) {
	var res result
	ir, err := d.NewInputReader(r, opts)
	if err != nil {
		return res, err
	}
	res.ignored = ir.Ignored()
	for {
		row, rj, err := ir.Next()
		if errors.Is(err, io.EOF) {
			return res, nil
		}
		if err != nil {
			return res, err
		}
		if rj != nil {
			res.rejected = append(res.rejected, *rj)
			continue
		}
		res.rows = append(res.rows, row)
	}
}

func TestInputReader(t *testing.T) {
	d := housing(t)
	for _, tt := range inputCases() {
		t.Run(tt.name, func(t *testing.T) {
			// Also in small reads, to cross chunk boundaries everywhere.
			short := iotest.OneByteReader(strings.NewReader(tt.in))
			if len(tt.in) > 64<<10 {
				short = iotest.HalfReader(strings.NewReader(tt.in)) // one byte at a time is slow under -race
			}
			for _, r := range []io.Reader{strings.NewReader(tt.in), short} {
				res, err := readAll(d, r, tt.opts)
				if tt.fileErr != "" {
					var fe *dataset.FileError
					require.ErrorAs(t, err, &fe)
					require.Equal(t, tt.fileErr, fe.Reason)
					continue
				}
				require.NoError(t, err)
				var got []rej
				for _, r := range res.rejected {
					got = append(got, rej{r.Line, r.Reason})
					require.LessOrEqual(t, len(r.Record), 1024)
				}
				require.Equal(t, tt.rejected, got)
				require.Len(t, res.rows, tt.accepted)
				for _, r := range res.rows {
					require.Len(t, r.Fields, len(d.Kept()))
				}
				if tt.ignored != nil {
					require.Equal(t, tt.ignored, res.ignored)
				} else {
					require.Empty(t, res.ignored)
				}
				if tt.check != nil {
					tt.check(t, d, res.rows)
				}
			}
		})
	}
}

// An optional kept column missing from the header reads like an empty value.
func TestInputReaderOptionalColumns(t *testing.T) {
	d, err := dataset.Parse([]byte(`{"name": "opt", "task": "regression", "batch_size": 10, "test_fraction": 0.2,
		"target": {"name": "y", "type": "float"},
		"columns": [{"name": "a", "type": "float"}, {"name": "b", "type": "float", "optional": true},
			{"name": "s", "type": "string", "optional": true}],
		"models": [{"name": "lin", "kind": "linear", "features": [{"column": "a", "transform": "numeric"}]}]}`))
	require.NoError(t, err)
	emptyB, err := d.ParseValue(d.Kept()[1], "")
	require.NoError(t, err)
	for _, in := range []string{"y,a\n1,2\n3,4\n", "y,a,b,s\n1,2,,\n3,4, ,\n", "a,y\n2,1\nx,0\n4,3\n"} {
		res, err := readAll(d, strings.NewReader(in), dataset.InputOptions{})
		require.NoError(t, err, in)
		require.Len(t, res.rows, 2, in)
		for _, r := range res.rows {
			require.Equal(t, fmt.Sprint(emptyB), fmt.Sprint(r.Fields[1]), in) // NaN != NaN
			require.Equal(t, "", r.Fields[2].Str)
		}
		require.Equal(t, 4.0, res.rows[1].Fields[0].Num)
		require.Equal(t, 3.0, res.rows[1].Target.Num)
	}
}

func TestInputReaderRejectedRecord(t *testing.T) {
	d := housing(t)
	bad := row("street", "\"a\r\nb\"", "bedrooms", "three")
	res, err := readAll(d, strings.NewReader(lines(hdr, bad, "x"+strings.Repeat("é", 2000))), dataset.InputOptions{})
	require.NoError(t, err)
	require.Len(t, res.rejected, 2)
	require.Equal(t, strings.Replace(bad, "\r\n", "\n", 1), res.rejected[0].Record)
	long := res.rejected[1].Record
	require.Equal(t, "x"+strings.Repeat("é", 511), long) // clipped to 1 KiB on a character boundary
}

func TestInputReaderLine(t *testing.T) {
	d := housing(t)
	ir, err := d.NewInputReader(strings.NewReader(lines(hdr, "", good, row("street", "\"a\nb\""), good)), dataset.InputOptions{})
	require.NoError(t, err)
	var got []int
	for {
		_, _, err := ir.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		got = append(got, ir.Line())
	}
	require.Equal(t, []int{3, 4, 6}, got)
}

func TestInputReaderIOError(t *testing.T) {
	d := housing(t)
	boom := errors.New("boom")
	in := hdr + "\n" + strings.Repeat(good+"\n", 100) // past the 8 KiB sniffed at the start
	r := io.MultiReader(strings.NewReader(in), iotest.ErrReader(boom))
	ir, err := d.NewInputReader(r, dataset.InputOptions{})
	require.NoError(t, err)
	for range 100 {
		_, rj, err := ir.Next()
		require.NoError(t, err)
		require.Nil(t, rj)
	}
	var rj *dataset.Rejected
	for range 2 { // permanent
		_, rj, err = ir.Next()
		require.ErrorIs(t, err, boom)
		require.Nil(t, rj)
		var fe *dataset.FileError
		require.False(t, errors.As(err, &fe))
	}

	_, err = d.NewInputReader(iotest.ErrReader(boom), dataset.InputOptions{})
	require.ErrorIs(t, err, boom)
}

// The returned rows own their strings: later reads do not change them.
func TestInputReaderRowsOwnStrings(t *testing.T) {
	d := housing(t)
	var in strings.Builder
	in.WriteString(hdr + "\n")
	for i := range 5000 {
		in.WriteString(row("street", strings.Repeat("ab", i%50)+"St", "city", "City"+strings.Repeat("z", i%7)) + "\n")
	}
	res, err := readAll(d, strings.NewReader(in.String()), dataset.InputOptions{})
	require.NoError(t, err)
	require.Len(t, res.rows, 5000)
	for i, r := range res.rows {
		require.Equal(t, strings.Repeat("ab", i%50)+"St", field(t, d, r, "street"))
		require.Equal(t, "City"+strings.Repeat("z", i%7), field(t, d, r, "city"))
	}
}

func FuzzInputReader(f *testing.F) {
	for _, tt := range inputCases() {
		if len(tt.in) < 4096 {
			f.Add([]byte(tt.in), uint16(tt.opts.MaxRecordBytes))
		}
	}
	d := housing(f)
	f.Fuzz(func(t *testing.T, in []byte, limit uint16) {
		ir, err := d.NewInputReader(bytes.NewReader(in), dataset.InputOptions{MaxRecordBytes: int(limit)})
		if err != nil {
			var fe *dataset.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("not a FileError from an in-memory reader: %v", err)
			}
			return
		}
		oracle, haveOracle := parseWithEncodingCSV(in)
		last, records := 1, 0
		for range len(in) + 1 {
			row, rj, err := ir.Next()
			if errors.Is(err, io.EOF) {
				if haveOracle && records != len(oracle.byLine) {
					t.Fatalf("%d records, encoding/csv reads %d", records, len(oracle.byLine))
				}
				return
			}
			if err != nil {
				t.Fatalf("error from an in-memory reader: %v", err)
			}
			records++
			if ir.Line() <= last {
				t.Fatalf("line %d after line %d", ir.Line(), last)
			}
			last = ir.Line()
			if rj != nil {
				if row.Fields != nil {
					t.Fatal("both a row and a rejection")
				}
				if rj.Reason == "" || len(rj.Record) > 1024 || rj.Line != last {
					t.Fatalf("bad rejection %+v", rj)
				}
				continue
			}
			if len(row.Fields) != len(d.Kept()) {
				t.Fatalf("row has %d fields", len(row.Fields))
			}
			if haveOracle {
				oracle.check(t, d, last, row)
			}
		}
		t.Fatal("more records than bytes")
	})
}

// csvOracle is what encoding/csv makes of a well-formed file.
type csvOracle struct {
	header []string
	byLine map[int][]string // data records by first line
}

// parseWithEncodingCSV reads in with encoding/csv. ok is false when it
// fails or when the file has one-field records, where blank-line rules
// differ.
func parseWithEncodingCSV(in []byte) (o csvOracle, ok bool) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(in, []byte("\ufeff"))))
	r.FieldsPerRecord = -1
	o.byLine = map[int][]string{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return o, o.header != nil
		}
		if err != nil || len(rec) == 1 {
			return o, false
		}
		if o.header == nil {
			o.header = rec
			continue
		}
		line, _ := r.FieldPos(0)
		o.byLine[line] = rec
	}
}

func (o csvOracle) check(t *testing.T, d *dataset.Definition, line int, row dataset.Row) {
	rec, ok := o.byLine[line]
	if !ok {
		t.Fatalf("accepted a row at line %d; encoding/csv has none there", line)
	}
	for j, name := range o.header {
		name = strings.TrimSpace(name)
		want := strings.TrimSpace(rec[j])
		var got dataset.Field
		if name == d.Target.Name {
			got = row.Target
		} else if k, ok := d.Index(name); ok {
			got = row.Fields[k]
		} else {
			continue
		}
		if got.Str != "" && got.Str != want {
			t.Fatalf("line %d, %s: %q, encoding/csv reads %q", line, name, got.Str, want)
		}
		if v, err := strconv.ParseFloat(want, 64); err == nil && got.Str == "" && got.Num != v {
			t.Fatalf("line %d, %s: %v, encoding/csv reads %q", line, name, got.Num, want)
		}
	}
}

func BenchmarkInputReader(b *testing.B) {
	const rows = 100_000
	var buf bytes.Buffer
	require.NoError(b, synth.Housing{Seed: 1}.Write(&buf, rows))
	data := buf.Bytes()
	d := housing(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		ir, err := d.NewInputReader(bytes.NewReader(data), dataset.InputOptions{})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, rj, err := ir.Next()
			if err == io.EOF {
				break
			}
			if err != nil || rj != nil {
				b.Fatal(err, rj)
			}
			n++
		}
		if n != rows {
			b.Fatalf("%d rows, want %d", n, rows)
		}
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N)/rows, "allocs/row")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rows, "ns/row")
}

// BenchmarkInputReaderEncodingCSV is the baseline InputReader is measured
// against: encoding/csv with ReuseRecord splitting the same file into
// records, with no validation, parsing or hashing. input.go says why
// InputReader does not use it.
func BenchmarkInputReaderEncodingCSV(b *testing.B) {
	const rows = 100_000
	var buf bytes.Buffer
	require.NoError(b, synth.Housing{Seed: 1}.Write(&buf, rows))
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		r := csv.NewReader(bytes.NewReader(data))
		r.ReuseRecord = true
		n := -1 // the header
		for {
			_, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != rows {
			b.Fatalf("%d rows, want %d", n, rows)
		}
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N)/rows, "allocs/row")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rows, "ns/row")
}

// TestInputReaderReuseFields: reusing the Fields slice changes where a row
// lives, not what it holds (rows and rejections as without the option).
func TestInputReaderReuseFields(t *testing.T) {
	d := housing(t)
	var buf bytes.Buffer
	require.NoError(t, synth.Housing{Seed: 5, BadRowFraction: 0.1, ZeroPriceFraction: 0.05}.Write(&buf, 3000))
	read := func(opts dataset.InputOptions) (rows []dataset.Row, rejected []dataset.Rejected) {
		r, err := d.NewInputReader(bytes.NewReader(buf.Bytes()), opts)
		require.NoError(t, err)
		for {
			row, rej, err := r.Next()
			if errors.Is(err, io.EOF) {
				return rows, rejected
			}
			require.NoError(t, err)
			if rej != nil {
				rejected = append(rejected, *rej)
				continue
			}
			row.Fields = slices.Clone(row.Fields)
			rows = append(rows, row)
		}
	}
	wantRows, wantRej := read(dataset.InputOptions{})
	gotRows, gotRej := read(dataset.InputOptions{ReuseFields: true})
	require.NotEmpty(t, wantRej)
	require.Equal(t, wantRej, gotRej)
	require.Equal(t, len(wantRows), len(gotRows))
	for i := range wantRows {
		require.Equal(t, fmt.Sprint(wantRows[i]), fmt.Sprint(gotRows[i]), "row %d", i) // NaN-safe
	}
}
