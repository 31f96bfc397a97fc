package synth_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"hash/crc32"
	"hash/fnv"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/synth"
)

func housingDef(t *testing.T) *dataset.Definition {
	t.Helper()
	b, err := os.ReadFile("../../schemas/datasets/housing.json")
	require.NoError(t, err)
	d, err := dataset.Parse(b)
	require.NoError(t, err)
	return d
}

func generate(t *testing.T, h synth.Housing, rows int) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, h.Write(&buf, rows))
	return buf.Bytes()
}

// records parses a generated file with encoding/csv, as maps by column name.
func records(t *testing.T, data []byte) []map[string]string {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	all, err := r.ReadAll()
	require.NoError(t, err)
	require.Equal(t, synth.HousingHeader(), all[0])
	var out []map[string]string
	for _, rec := range all[1:] {
		m := map[string]string{}
		for i, v := range rec {
			m[all[0][i]] = v
		}
		out = append(out, m)
	}
	return out
}

func TestHousingDeterministic(t *testing.T) {
	a := generate(t, synth.Housing{Seed: 7}, 500)
	require.Equal(t, a, generate(t, synth.Housing{Seed: 7}, 500))
	require.NotEqual(t, a, generate(t, synth.Housing{Seed: 8}, 500))

	// Faults come from their own stream: the houses stay the same.
	b := generate(t, synth.Housing{Seed: 7, BadRowFraction: 0.1}, 500)
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	require.Len(t, bl, len(al))
	same := 0
	for i := range al {
		if al[i] == bl[i] {
			same++
		}
	}
	require.InDelta(t, 0.9, float64(same)/float64(len(al)), 0.05)
}

func TestHousingWriteErrors(t *testing.T) {
	for _, h := range []synth.Housing{{ZeroPriceFraction: -0.1}, {BadRowFraction: 1.1}, {ZeroPriceFraction: 0.6, BadRowFraction: 0.6}} {
		require.Error(t, h.Write(io.Discard, 1))
	}
	require.Error(t, synth.Housing{}.Write(io.Discard, -1))
	require.Error(t, synth.Housing{}.Write(failWriter{}, 10))
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestHousingAcceptedAndRealistic(t *testing.T) {
	const n = 10_000
	d := housingDef(t)
	data := generate(t, synth.Housing{Seed: 1}, n)
	require.Len(t, acceptedRows(t, d, data), n)

	// Plain checks, not require: this loop runs 10,000 times under -race.
	check := func(ok bool, format string, args ...any) {
		if !ok {
			t.Fatalf(format, args...)
		}
	}
	num := func(m map[string]string, k string) float64 {
		v, err := strconv.ParseFloat(m[k], 64)
		check(err == nil, "%s: %v", k, err)
		return v
	}
	cities, zips, streets := map[string]int{}, map[string]string{}, map[string]bool{}
	var noBasement, notRenovated, mid, waterfront, view0, cond3 int
	first, last := time.Date(2014, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC)
	for _, m := range records(t, data) {
		ts, err := time.Parse(time.DateTime, m["date"])
		check(err == nil && ts.After(first) && ts.Before(last), "date %q", m["date"])
		check(num(m, "price") >= synth.MinPrice, "price %s", m["price"])
		bed, bath, floors := num(m, "bedrooms"), num(m, "bathrooms"), num(m, "floors")
		check(strings.Contains(m["bedrooms"], ".") && bed >= 1 && bed <= 6 && bed == math.Trunc(bed), "bedrooms %q", m["bedrooms"])
		check(bath >= 0.75 && bath <= 4.5 && bath*4 == math.Trunc(bath*4), "bathrooms %q", m["bathrooms"])
		check(floors >= 1 && floors <= 3.5 && floors*2 == math.Trunc(floors*2), "floors %q", m["floors"])
		living, above, basement := num(m, "sqft_living"), num(m, "sqft_above"), num(m, "sqft_basement")
		check(living >= 500 && living <= 8000, "sqft_living %s", m["sqft_living"])
		check(living == above+basement, "above %v + basement %v != living %v", above, basement, living)
		if living >= 1500 && living <= 2500 {
			mid++
		}
		if basement == 0 {
			noBasement++
		}
		lot := num(m, "sqft_lot")
		check(lot >= 1000 && lot <= 100_000, "sqft_lot %s", m["sqft_lot"])
		if num(m, "waterfront") == 1 {
			waterfront++
		}
		if num(m, "view") == 0 {
			view0++
		}
		if num(m, "condition") == 3 {
			cond3++
		}
		built, renovated := num(m, "yr_built"), num(m, "yr_renovated")
		check(built >= 1900 && built <= 2014, "yr_built %s", m["yr_built"])
		if renovated == 0 {
			notRenovated++
		} else {
			check(renovated >= built && renovated <= 2014, "yr_renovated %s, built %s", m["yr_renovated"], m["yr_built"])
		}
		check(m["country"] == "USA", "country %q", m["country"])
		cities[m["city"]]++
		if c, ok := zips[m["statezip"]]; ok {
			check(c == m["city"], "zip %s in %s and %s", m["statezip"], c, m["city"])
		}
		zips[m["statezip"]] = m["city"]
		streets[m["street"]] = true
	}
	share := func(k int) float64 { return float64(k) / n }
	require.InDelta(t, 0.6, share(noBasement), 0.03)
	require.InDelta(t, 0.8, share(notRenovated), 0.03)
	require.InDelta(t, 0.01, share(waterfront), 0.005)
	require.Greater(t, share(mid), 0.45)
	require.Greater(t, share(view0), 0.85)
	require.Greater(t, share(cond3), 0.55)
	require.GreaterOrEqual(t, len(cities), 40)
	require.GreaterOrEqual(t, len(zips), 70)
	require.Greater(t, len(streets), 5000)
	for c, k := range cities {
		require.LessOrEqual(t, k, cities["Seattle"], c)
	}
}

func TestHousingFractions(t *testing.T) {
	d := housingDef(t)
	const n = 5000
	for _, tt := range []struct {
		name      string
		zero, bad float64
	}{
		{"zero prices", 0.1, 0},
		{"bad rows", 0, 0.1},
		{"both", 0.05, 0.15},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := generate(t, synth.Housing{Seed: 3, ZeroPriceFraction: tt.zero, BadRowFraction: tt.bad}, n)
			ir, err := d.NewInputReader(bytes.NewReader(data), dataset.InputOptions{})
			require.NoError(t, err)
			var zero, other int
			for {
				_, rj, err := ir.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case rj == nil:
				case strings.HasPrefix(rj.Reason, "price: 0.0 is out of range"):
					zero++
				default:
					other++
				}
			}
			require.InDelta(t, tt.zero, float64(zero)/n, 0.015)
			require.InDelta(t, tt.bad, float64(other)/n, 0.015)
		})
	}
}

func TestTruePrice(t *testing.T) {
	recs := records(t, generate(t, synth.Housing{Seed: 5}, 10_000))
	var within, clamped int
	var sum2 float64
	for _, m := range recs {
		truth, err := synth.TruePrice(m)
		if err != nil {
			t.Fatal(err)
		}
		if truth == synth.MinPrice {
			clamped++
		}
		price, err := strconv.ParseFloat(m["price"], 64)
		if err != nil {
			t.Fatal(err)
		}
		res := price - truth
		sum2 += res * res
		if math.Abs(res) < 4*synth.NoiseSD {
			within++
		}
	}
	require.Greater(t, float64(within)/float64(len(recs)), 0.999)
	require.InEpsilon(t, synth.NoiseSD, math.Sqrt(sum2/float64(len(recs))), 0.05)
	require.Less(t, float64(clamped)/float64(len(recs)), 0.005, "the floor must stay rare, or the truth is not linear")

	good := recs[0]
	for _, tt := range []struct{ name, key, value string }{
		{"unknown city", "city", "Springfield"},
		{"unknown zip", "statezip", "WA 12345"},
		{"not a number", "bedrooms", "three"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range good {
				m[k] = v
			}
			m[tt.key] = tt.value
			_, err := synth.TruePrice(m)
			require.Error(t, err)
		})
	}
	m := map[string]string{}
	for k, v := range good {
		m[k] = v
	}
	delete(m, "sqft_lot")
	_, err := synth.TruePrice(m)
	require.ErrorContains(t, err, "sqft_lot")
}

// The comparison the product makes: one-hot city and statezip reach the
// noise floor; hashing the string columns into 10 buckets does not.
func TestHousingLearnable(t *testing.T) {
	if testing.Short() {
		t.Skip("fits models")
	}
	d := housingDef(t)
	rows := acceptedRows(t, d, generate(t, synth.Housing{Seed: 11}, 8000))
	train, valid := rows[:6000], rows[6000:]

	var numeric []int
	for _, c := range []string{"bedrooms", "bathrooms", "sqft_living", "sqft_lot", "floors", "waterfront",
		"view", "condition", "sqft_above", "sqft_basement", "yr_built", "yr_renovated"} {
		i, ok := d.Index(c)
		require.True(t, ok)
		numeric = append(numeric, i)
	}
	col := func(name string) int { i, _ := d.Index(name); return i }

	onehot := oneHotFeatures(train, numeric, col("city"), col("statezip"))
	rmseOneHot := fitRMSE(t, train, valid, onehot)
	require.Less(t, rmseOneHot, 1.1*synth.NoiseSD)

	strs := []int{col("street"), col("city"), col("statezip"), col("country")}
	for name, hash := range map[string]func(string) uint32{
		"fnv":   func(s string) uint32 { h := fnv.New32a(); h.Write([]byte(s)); return h.Sum32() },
		"crc32": func(s string) uint32 { return crc32.ChecksumIEEE([]byte(s)) },
	} {
		rmseHashed := fitRMSE(t, train, valid, hashedFeatures(numeric, strs, hash))
		t.Logf("validation RMSE: one-hot %.0f, hashed (%s) %.0f", rmseOneHot, name, rmseHashed)
		require.Greater(t, rmseHashed, 1.25*rmseOneHot, name)
	}
}
