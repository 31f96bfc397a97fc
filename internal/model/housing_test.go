package model

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/stretchr/testify/require"
)

func housingDef(t testing.TB) *dataset.Definition {
	t.Helper()
	b, err := os.ReadFile("../../schemas/datasets/housing.json")
	require.NoError(t, err)
	def, err := dataset.Parse(b)
	require.NoError(t, err)
	return def
}

type city struct {
	name   string
	weight int
	effect float64 // dollars added to the price
	zips   []string
}

func testCities() []city {
	return []city{
		{"Seattle", 30, 120_000, []string{"WA 98103", "WA 98115", "WA 98117"}},
		{"Renton", 12, -40_000, []string{"WA 98055", "WA 98056"}},
		{"Bellevue", 10, 250_000, []string{"WA 98004", "WA 98006"}},
		{"Kent", 9, -70_000, []string{"WA 98030", "WA 98031"}},
		{"Redmond", 8, 180_000, []string{"WA 98052"}},
		{"Auburn", 7, -90_000, []string{"WA 98001", "WA 98002"}},
		{"Kirkland", 7, 160_000, []string{"WA 98033", "WA 98034"}},
		{"Issaquah", 6, 90_000, []string{"WA 98027", "WA 98029"}},
		{"Sammamish", 5, 140_000, []string{"WA 98074", "WA 98075"}},
		{"Federal Way", 4, -80_000, []string{"WA 98003", "WA 98023"}},
		{"Shoreline", 2, 20_000, []string{"WA 98133", "WA 98155"}},
	}
}

// truth is the linear model the synthetic prices follow (per raw unit).
func truth() map[string]float64 {
	return map[string]float64{
		"sqft_living": 150,
		"bathrooms":   12_000,
		"bedrooms":    -9_000,
		"waterfront":  350_000,
		"view":        25_000,
		"yr_built":    -800,
	}
}

const (
	truthIntercept = 1_800_000
	truthNoise     = 5_000
)

// housingRows makes n rows whose price follows truth plus the city effect
// and Gaussian noise. TestHousingRowsAreValid checks them against the
// definition.
func housingRows(t testing.TB, def *dataset.Definition, n int, seed uint64) []dataset.StagedRow {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	cities, beta := testCities(), truth()
	streets := []string{"Main", "Pine", "Oak", "Maple", "Cedar", "Elm", "Lake", "Hill", "Park", "2nd"}
	total := 0
	for _, c := range cities {
		total += c.weight
	}
	rows := make([]dataset.StagedRow, n)
	ix := map[string]int{}
	for i, c := range def.Kept() {
		ix[c.Name] = i
	}
	for i := range rows {
		f := make([]dataset.Field, len(def.Kept()))
		set := func(name string, v float64) { f[ix[name]] = dataset.Field{Num: v} }
		w := r.IntN(total)
		var c city
		for _, c = range cities {
			if w < c.weight {
				break
			}
			w -= c.weight
		}
		living := float64(600 + r.IntN(4000))
		basement := 0.0
		if r.IntN(10) < 4 {
			basement = float64(r.IntN(int(living) / 2))
		}
		built := float64(1900 + r.IntN(115))
		renovated := 0.0
		if r.IntN(5) == 0 {
			renovated = built + float64(r.IntN(int(2015-built)+1))
		}
		num := map[string]float64{
			"bedrooms":      float64(1 + r.IntN(6)),
			"bathrooms":     float64(4+r.IntN(13)) / 4,
			"sqft_living":   living,
			"sqft_lot":      float64(1000 + r.IntN(20000)),
			"floors":        float64(2+r.IntN(5)) / 2,
			"waterfront":    float64(min(1, r.IntN(20)/19)),
			"view":          float64(r.IntN(5)),
			"condition":     float64(1 + r.IntN(5)),
			"sqft_above":    living - basement,
			"sqft_basement": basement,
			"yr_built":      built,
			"yr_renovated":  renovated,
		}
		price := truthIntercept + c.effect + truthNoise*r.NormFloat64()
		for _, name := range slices.Sorted(maps.Keys(num)) { // a fixed order: the same price bits every run
			v := num[name]
			set(name, v)
			price += beta[name] * v
		}
		f[ix["street"]] = dataset.Field{Str: fmt.Sprintf("%d %s St", 1+r.IntN(20000), streets[r.IntN(len(streets))])}
		f[ix["city"]] = dataset.Field{Str: c.name}
		f[ix["statezip"]] = dataset.Field{Str: c.zips[r.IntN(len(c.zips))]}
		f[ix["country"]] = dataset.Field{Str: "USA"}
		row := dataset.Row{Fields: f, Target: dataset.Field{Num: price}}
		rows[i] = dataset.StagedRow{Row: row, Hash: def.Hash(row)}
	}
	return rows
}

func scanOf(rows []dataset.StagedRow) dataset.Scan {
	return func(fn func(dataset.StagedRow) error) error {
		for _, r := range rows {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestHousingRowsAreValid(t *testing.T) {
	def := housingDef(t)
	for _, r := range housingRows(t, def, 2000, 1) {
		require.Positive(t, r.Target.Num)
		for i, c := range def.Kept() {
			_, err := def.ParseValue(c, dataset.Format(c, r.Fields[i]))
			require.NoError(t, err)
		}
	}
}
