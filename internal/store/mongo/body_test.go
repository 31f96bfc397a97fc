package mongo

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestBodyStoredForm(t *testing.T) {
	tests := []struct {
		name string
		body string
		want bson.D // without _id
	}{
		{"plain", `{"a":1,"b":"x"}`, bson.D{{Key: "a", Value: int32(1)}, {Key: "b", Value: "x"}}},
		{"number types", `{"i":1,"l":3000000000,"f":1.5,"e":1e3}`, bson.D{
			{Key: "i", Value: int32(1)}, {Key: "l", Value: int64(3000000000)},
			{Key: "f", Value: 1.5}, {Key: "e", Value: 1000.0},
		}},
		{"escaped names", `{"a.b":1,"$c":2,"%":3,"_id":4,"x":{"_id":5}}`, bson.D{
			{Key: "a%2Eb", Value: int32(1)}, {Key: "%24c", Value: int32(2)}, {Key: "%25", Value: int32(3)},
			{Key: "%5Fid", Value: int32(4)}, {Key: "x", Value: bson.D{{Key: "_id", Value: int32(5)}}},
		}},
		{"nested array", `{"a":[[1]]}`, bson.D{
			{Key: "a", Value: bson.A{bson.D{{Key: nestedArrayKey, Value: bson.A{int32(1)}}}}},
		}},
		{"duplicate names keep the last", `{"a":1,"b":2,"a":3}`, bson.D{{Key: "a", Value: int32(3)}, {Key: "b", Value: int32(2)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := toBSON("k", json.RawMessage(tt.body))
			require.NoError(t, err)
			require.Equal(t, append(bson.D{{Key: "_id", Value: "k"}}, tt.want...), doc)

			raw, err := bson.Marshal(doc)
			require.NoError(t, err)
			key, body, err := fromBSON(raw)
			require.NoError(t, err)
			require.Equal(t, "k", key)
			require.JSONEq(t, tt.body, string(body))
		})
	}
}

func TestBodyRejected(t *testing.T) {
	for _, body := range []string{`[1]`, `{"a":1e400}`, `{"a":` + deep(maxDepth+2) + `}`} {
		_, err := toBSON("k", json.RawMessage(body))
		require.Error(t, err, body)
	}
}

func deep(n int) string {
	s := "1"
	for range n {
		s = `{"a":` + s + `}`
	}
	return s
}

func TestUnescapeName(t *testing.T) {
	for _, name := range []string{"", "plain", "%", "%%", "%2", "%zz", "a.b.$c%25\x00", "é.ü"} {
		require.Equal(t, name, unescapeName(escapeName(name, false)), "%q", name)
	}
}
