package bolt_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/store/bolt"
)

// A truncated file is refused with one line naming it; bbolt itself would
// map it and die of SIGBUS past the end.
func TestTruncatedFileIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "refit.db")
	s, err := bolt.Open(path)
	require.NoError(t, err)
	for i := range 200 {
		require.NoError(t, s.Insert(context.Background(), "c", string(rune('a'+i%26))+string(rune('A'+i/26)), []byte(`{"pad":"`+string(make([]byte, 0))+`0123456789012345678901234567890123456789"}`)))
	}
	require.NoError(t, s.Close())
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(path, st.Size()/2+1000))
	_, err = bolt.Open(path)
	require.Error(t, err)
	require.Contains(t, err.Error(), path)
	require.Contains(t, err.Error(), "truncated")
	require.NotContains(t, err.Error(), "\n")
}
