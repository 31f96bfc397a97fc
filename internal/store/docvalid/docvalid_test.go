package docvalid_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/store/docvalid"
)

func TestDoc(t *testing.T) {
	tests := []struct {
		name            string
		collection, key string
		body            string
		ok              bool
	}{
		{"object", "c", "k", `{"a":1}`, true},
		{"leading space", "c", "k", " \n{}", true},
		{"unicode key", "c", "é/1", `{}`, true},
		{"array", "c", "k", `[]`, false},
		{"scalar", "c", "k", `1`, false},
		{"invalid", "c", "k", `{`, false},
		{"empty body", "c", "k", ``, false},
		{"empty key", "c", "", `{}`, false},
		{"key not UTF-8", "c", "\xff", `{}`, false},
		{"empty collection", "", "k", `{}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := docvalid.Doc(tt.collection, tt.key, json.RawMessage(tt.body))
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, docvalid.ErrInvalid)
		})
	}
}
