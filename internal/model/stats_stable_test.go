package model

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/stretchr/testify/require"
)

// wideDef gives every statistics role: optional numbers (missing
// indicators), a number one-hot encoded and one hashed, two near-unique
// string columns one-hot encoded (their pair of levels does not fit a
// small table) and a hashed-only string.
const wideDef = `{
  "name": "wide", "task": "regression", "batch_size": 100, "test_fraction": 0.3,
  "target": {"name": "y", "type": "float"},
  "columns": [
    {"name": "a", "type": "float", "optional": true},
    {"name": "b", "type": "float", "optional": true},
    {"name": "rooms", "type": "int"},
    {"name": "code", "type": "int", "optional": true},
    {"name": "tag", "type": "string"},
    {"name": "id1", "type": "string"},
    {"name": "id2", "type": "string"},
    {"name": "flag", "type": "bool"}
  ],
  "models": [
    {"name": "one", "kind": "linear", "features": [
      {"column": "a", "transform": "numeric"},
      {"column": "b", "transform": "numeric"},
      {"column": "rooms", "transform": "onehot", "max_categories": 5},
      {"column": "id1", "transform": "onehot", "max_categories": 50},
      {"column": "id2", "transform": "onehot", "max_categories": 50},
      {"column": "flag", "transform": "numeric"}
    ]},
    {"name": "two", "kind": "linear", "features": [
      {"column": "a", "transform": "numeric"},
      {"column": "code", "transform": "hashed", "buckets": 6},
      {"column": "tag", "transform": "hashed", "buckets": 4},
      {"column": "rooms", "transform": "hashed", "buckets": 3}
    ]}
  ]
}`

func wideRows(t testing.TB, def *dataset.Definition, n int, seed uint64, extreme bool) []dataset.StagedRow {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 3))
	rows := make([]dataset.StagedRow, n)
	for i := range rows {
		num := func(missingOneIn int, v float64) dataset.Field {
			if missingOneIn > 0 && r.IntN(missingOneIn) == 0 {
				return dataset.Field{Num: math.NaN()}
			}
			return dataset.Field{Num: v}
		}
		f := []dataset.Field{
			num(9, r.NormFloat64()*1e3),
			num(2, float64(r.IntN(7))-3), // often missing, often equal to the mean's neighbours
			{Num: float64(r.IntN(6))},
			num(5, float64(r.IntN(40))),
			{Str: []string{"x", "y", "z", "x,y", `q"t`}[r.IntN(5)]},
			{Str: fmt.Sprintf("u%d", r.IntN(3000))},
			{Str: fmt.Sprintf("v%d", r.IntN(3000))},
			{Num: float64(r.IntN(2))},
		}
		y := 3*f[2].Num + r.NormFloat64()
		if i == 0 {
			f[1].Num = 0 // a zero in the first row, the shift
		}
		if extreme && i%97 < 12 {
			f[0].Num = math.Copysign(1.7e308, float64(i%2)-0.5) // v - mean overflows
		}
		row := dataset.Row{Fields: f, Target: dataset.Field{Num: y}}
		rows[i] = dataset.StagedRow{Row: row, Hash: def.Hash(row)}
	}
	return withSplit(def, rows)
}

// TestStatsBytesAreStable pins the statistics files' bytes of fixed rows
// as the first version of ComputeStats wrote them: a faster accumulation
// must give the same sums bit for bit (fits, scores and artifact checksums
// depend on them).
func TestStatsBytesAreStable(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("pinned on amd64: other architectures may fuse multiply-adds")
	}
	housing := housingDef(t)
	wide, err := dataset.Parse([]byte(wideDef))
	require.NoError(t, err)
	tests := []struct {
		name string
		def  *dataset.Definition
		rows func() []dataset.StagedRow
		want string
	}{
		{"housing", housing, func() []dataset.StagedRow {
			return withSplit(housing, housingRows(t, housing, 20_000, 5))
		}, "9cb5093aece69f548bee03e52b206e1f60f201ef89c5a4f4995c476c2c73b56f"},
		{"housing awkward", housing, func() []dataset.StagedRow {
			return withSplit(housing, awkward(t, housing, housingRows(t, housing, 9_000, 6)))
		}, "6808a998940f4e72a43e3647859544602951be454f9b1179e0a6457fcc216647"},
		{"wide", wide, func() []dataset.StagedRow { return wideRows(t, wide, 12_000, 1, false) }, "f0cae123b2d5c94c14d0d5b8479cc0f17cedce2606b1fed85844be7044b7210c"},
		{"wide extreme", wide, func() []dataset.StagedRow { return wideRows(t, wide, 3_000, 2, true) }, "a54eb71e8141fcd06b8229273933029255dd9a7a693400a5146677279054f656"},
		{"wide one row", wide, func() []dataset.StagedRow { return wideRows(t, wide, 1, 3, false) }, "3372840f373cc5d180579c386489e001384428c5958fb09cea8a9a2be07ab110"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := ComputeStats(context.Background(), tt.def, scanOf(tt.rows()))
			require.NoError(t, err)
			sum := sha256.Sum256(st.Marshal())
			require.Equal(t, tt.want, hex.EncodeToString(sum[:]))
		})
	}
}
