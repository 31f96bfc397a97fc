package dataset_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/dataset"
)

// awkward are string values that need CSV quoting, or look as if they might.
var awkward = []string{"", "Seattle", "a,b", `say "hi"`, "two\nlines", "cr\rlf\r\n", " leading space", "\u00a0nbsp",
	`\.`, `"`, "trailing ", "ünïcödé", ",", "\n"}

func randomRows(d *dataset.Definition, n int, seed uint64) []dataset.Row {
	rnd := rand.New(rand.NewPCG(seed, 0))
	rows := make([]dataset.Row, n)
	for i := range rows {
		r := dataset.Row{Fields: make([]dataset.Field, len(d.Kept()))}
		for j, c := range d.Kept() {
			switch {
			case !dataset.IsNumeric(c):
				r.Fields[j].Str = awkward[rnd.IntN(len(awkward))]
			case rnd.IntN(10) == 0:
				r.Fields[j].Num = math.NaN()
			default:
				r.Fields[j].Num = math.Round(rnd.NormFloat64()*1e6) / 100
			}
		}
		r.Target.Num = rnd.Float64() * 1e6
		rows[i] = r
	}
	return rows
}

func TestStagedEncoderMatchesStagedWriter(t *testing.T) {
	d := housing(t)
	const source = `gs://b/incoming/housing/a "quoted", name.csv#7`
	var want bytes.Buffer
	sw := d.NewStagedWriter(&want)
	got := d.HeaderRecord()
	enc := d.NewStagedEncoder(source)
	for _, r := range randomRows(d, 2000, 1) {
		h, test, rec := enc.Encode(r)
		require.Equal(t, d.Hash(r), h)
		require.Equal(t, d.IsTest(h), test)
		require.NoError(t, sw.Write(dataset.StagedRow{Row: r, Hash: h, Test: test, Source: source}))
		got = append(got, rec...)
	}
	require.NoError(t, sw.Flush())
	require.Equal(t, want.String(), string(got))
}

func TestStagedRecordReaderReadsWhatTheWriterWrote(t *testing.T) {
	d := housing(t)
	var buf bytes.Buffer
	sw := d.NewStagedWriter(&buf)
	rows := randomRows(d, 1000, 2)
	var wantRecs []string
	for i, r := range rows {
		h := d.Hash(r)
		var one bytes.Buffer
		w1 := d.NewStagedWriter(&one)
		sr := dataset.StagedRow{Row: r, Hash: h, Test: d.IsTest(h), Source: "correction/" + awkward[i%len(awkward)]}
		require.NoError(t, w1.Write(sr))
		require.NoError(t, w1.Flush())
		wantRecs = append(wantRecs, strings.TrimPrefix(one.String(), string(d.HeaderRecord())))
		require.NoError(t, sw.Write(sr))
	}
	require.NoError(t, sw.Flush())

	rr, err := d.NewStagedRecordReader(&buf)
	require.NoError(t, err)
	for i, r := range rows {
		rec, h, test, err := rr.Next()
		require.NoError(t, err, "record %d", i)
		require.Equal(t, d.Hash(r), h, "record %d", i)
		require.Equal(t, d.IsTest(h), test, "record %d", i)
		require.Equal(t, wantRecs[i], string(rec), "record %d", i)
	}
	_, _, _, err = rr.Next()
	require.ErrorIs(t, err, io.EOF)
}

func TestStagedRecordReaderRejectsDamage(t *testing.T) {
	d := housing(t)
	var buf bytes.Buffer
	sw := d.NewStagedWriter(&buf)
	r := randomRows(d, 1, 3)[0]
	h := d.Hash(r)
	require.NoError(t, sw.Write(dataset.StagedRow{Row: r, Hash: h, Source: "correction/x"}))
	require.NoError(t, sw.Flush())
	good := buf.String()
	header := string(d.HeaderRecord())
	hexHash := h.String()

	for name, tc := range map[string]struct {
		input   string
		wantErr string
	}{
		"empty":              {"", "header"},
		"other header":       {"a,b,c\n", "definition changed"},
		"truncated record":   {good[:len(good)-1], "unexpected EOF"},
		"unterminated quote": {header + `"open,1` + "\n", "unexpected EOF"},
		"bad hash":           {strings.Replace(good, hexHash, "zz"+hexHash[2:], 1), "bad row hash"},
		"short hash":         {strings.Replace(good, hexHash, hexHash[2:], 1), "bad row hash"},
		"bad split":          {strings.Replace(good, hexHash+",0,", hexHash+",2,", 1), "bad _test"},
		"too few fields":     {header + "1,2\n", "fields"},
	} {
		t.Run(name, func(t *testing.T) {
			rr, err := d.NewStagedRecordReader(strings.NewReader(tc.input))
			if err == nil {
				_, _, _, err = rr.Next()
			}
			require.Error(t, err)
			require.False(t, errors.Is(err, io.EOF), "damage must not read as a clean end: %v", err)
			require.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

func BenchmarkStagedEncoder(b *testing.B) {
	d := housing(b)
	rows := randomRows(d, 1024, 4)
	enc := d.NewStagedEncoder("gs://bucket/incoming/housing/x.csv#1")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		enc.Encode(rows[i%len(rows)])
	}
}

func BenchmarkStagedRecordReader(b *testing.B) {
	d := housing(b)
	var buf bytes.Buffer
	enc := d.NewStagedEncoder("gs://bucket/incoming/housing/x.csv#1")
	buf.Write(d.HeaderRecord())
	for _, r := range randomRows(d, 10_000, 5) {
		_, _, rec := enc.Encode(r)
		buf.Write(rec)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		rr, err := d.NewStagedRecordReader(bytes.NewReader(buf.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, _, _, err := rr.Next(); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				b.Fatal(err)
			}
		}
	}
}
