package dataset_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/dataset"
)

func TestJSONBoolOnlyForBoolColumns(t *testing.T) {
	tests := []struct {
		col     dataset.Column
		b       bool
		want    string
		wantErr string
	}{
		{dataset.Column{Name: "waterfront", Type: dataset.TypeBool}, true, "1", ""},
		{dataset.Column{Name: "waterfront", Type: dataset.TypeBool}, false, "0", ""},
		{dataset.Column{Name: "price", Type: dataset.TypeFloat}, true, "", "price: true is a boolean; want a number"},
		{dataset.Column{Name: "bedrooms", Type: dataset.TypeInt}, false, "", "bedrooms: false is a boolean; want a whole number"},
		{dataset.Column{Name: "city", Type: dataset.TypeString}, true, "", "city: true is a boolean; want a string"},
	}
	for _, tt := range tests {
		t.Run(tt.col.Name, func(t *testing.T) {
			got, err := dataset.JSONBool(tt.col, tt.b)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				var fe *dataset.FieldError
				require.ErrorAs(t, err, &fe)
				require.Equal(t, tt.col.Name, fe.Field)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseValueSaysOverflow(t *testing.T) {
	d, err := dataset.Parse([]byte(`{"name":"tt","task":"regression","batch_size":1,"test_fraction":0.5,
		"target":{"name":"y","type":"float"},"columns":[{"name":"x","type":"int"}],
		"models":[{"name":"mm","kind":"linear","features":[{"column":"x","transform":"numeric"}]}]}`))
	require.NoError(t, err)
	x, _ := d.Lookup("x")
	for raw, want := range map[string]string{
		"1e400":  "x: 1e400 overflows a 64-bit float (at most about 1.8e308)",
		"-1e999": "x: -1e999 overflows a 64-bit float (at most about 1.8e308)",
		"inf":    `x: "inf" is not a number`,
		"NaN":    `x: "NaN" is not a number`,
		"true":   `x: "true" is not a number`,
	} {
		_, err := d.ParseValue(x, raw)
		require.EqualError(t, err, want, raw)
	}
	f, err := d.ParseValue(x, "1e-400") // underflows to 0: a number, and whole
	require.NoError(t, err)
	require.Zero(t, f.Num)
}
