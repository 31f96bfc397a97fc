package synth

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKingCounty(t *testing.T) {
	cities := kingCounty()
	require.Len(t, cities, 44)
	names, zips := map[string]bool{}, map[string]string{}
	for _, c := range cities {
		require.False(t, names[c.name], "city %s twice", c.name)
		names[c.name] = true
		require.LessOrEqual(t, c.weight, cities[0].weight)
		require.LessOrEqual(t, abs(c.effect), 100_000.0, c.name)
		require.NotEmpty(t, c.zips)
		for _, z := range c.zips {
			require.Regexp(t, `^98[0-9]{3}$`, z)
			other, dup := zips[z]
			require.False(t, dup, "zip %s in %s and %s", z, other, c.name)
			zips[z] = c.name
			require.True(t, knownZip("WA "+z))
			require.LessOrEqual(t, abs(zipEffect(z)), 40_000.0)
		}
		e, ok := cityEffect(c.name)
		require.True(t, ok)
		require.Equal(t, c.effect, e)
	}
	require.Equal(t, "Seattle", cities[0].name)
	require.Len(t, zips, 77)
	require.False(t, knownZip("98103"))
}

func abs(v float64) float64 { return max(v, -v) }

func TestOrdinal(t *testing.T) {
	for n, want := range map[int]string{1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 11: "11th", 12: "12th", 13: "13th",
		21: "21st", 22: "22nd", 101: "101st", 111: "111th", 112: "112th", 123: "123rd"} {
		require.Equal(t, want, ordinal(n))
	}
}
