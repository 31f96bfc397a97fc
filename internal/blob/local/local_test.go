package local

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/blob/blobtest"
)

func newBucket(t *testing.T) *Bucket {
	t.Helper()
	b, err := New(t.TempDir(), "refit-local")
	require.NoError(t, err)
	return b
}

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Bucket {
		b := newBucket(t)
		t.Cleanup(func() { requireNoTempFiles(t, b.Root()) })
		return b
	})
}

// requireNoTempFiles checks that failed and losing writes cleaned up.
func requireNoTempFiles(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		require.False(t, strings.HasPrefix(d.Name(), ".") && path != root, "leftover %s", path)
		return nil
	})
	require.NoError(t, err)
}

func write(t *testing.T, b *Bucket, name string, mode blob.Mode, data string) (blob.Object, error) {
	t.Helper()
	return b.Write(t.Context(), name, mode, func(w io.Writer) error {
		_, err := io.WriteString(w, data)
		return err
	})
}

func TestInvalidNames(t *testing.T) {
	b := newBucket(t)
	tests := []struct {
		name string
		obj  string
	}{
		{"empty", ""},
		{"absolute", "/etc/passwd"},
		{"parent", "../outside"},
		{"parent inside", "a/../../outside"},
		{"dot segment", "a/./b"},
		{"empty segment", "a//b"},
		{"trailing slash", "a/b/"},
		{"hidden segment", "a/.hidden"},
		{"backslash", `a\b`},
		{"nul", "a\x00b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := write(t, b, tt.obj, blob.Overwrite, "x")
			require.ErrorIs(t, err, ErrInvalidName)
			_, err = b.Stat(t.Context(), tt.obj)
			require.ErrorIs(t, err, ErrInvalidName)
			_, err = b.Open(t.Context(), tt.obj)
			require.ErrorIs(t, err, ErrInvalidName)
		})
	}
	entries, err := os.ReadDir(filepath.Dir(b.Root()))
	require.NoError(t, err)
	require.Len(t, entries, 1, "nothing written outside root")
	objs, err := b.List(t.Context(), "")
	require.NoError(t, err)
	require.Empty(t, objs)
}

func TestListPrefixCannotEscape(t *testing.T) {
	b := newBucket(t)
	_, err := write(t, b, "a/b", blob.CreateOnly, "x")
	require.NoError(t, err)
	for _, prefix := range []string{"../", "/", "a/../", "./a/", "a/.x/"} {
		objs, err := b.List(t.Context(), prefix)
		require.NoError(t, err, prefix)
		require.Empty(t, objs, prefix)
	}
}

func TestGenerationIsContentHash(t *testing.T) {
	b := newBucket(t)
	first, err := write(t, b, "a/data.csv", blob.Overwrite, "x,y\n1,2\n")
	require.NoError(t, err)

	sum := sha256.Sum256([]byte("x,y\n1,2\n"))
	want := int64(binary.BigEndian.Uint64(sum[:8]) & (1<<63 - 1))
	require.Equal(t, want, first.Generation)

	// Same bytes, same name, other bucket and time: same generation.
	other := newBucket(t)
	again, err := write(t, other, "a/data.csv", blob.CreateOnly, "x,y\n1,2\n")
	require.NoError(t, err)
	require.Equal(t, first.Generation, again.Generation)

	rewritten, err := write(t, b, "a/data.csv", blob.Overwrite, "x,y\n1,2\n")
	require.NoError(t, err)
	require.Equal(t, first.Generation, rewritten.Generation)

	// A fresh Bucket (empty cache) hashes the file to the same value.
	reopened, err := New(b.Root(), "refit-local")
	require.NoError(t, err)
	st, err := reopened.Stat(t.Context(), "a/data.csv")
	require.NoError(t, err)
	require.Equal(t, first.Generation, st.Generation)
}

func TestStatCacheKeyedBySizeAndMtime(t *testing.T) {
	b := newBucket(t)
	obj, err := write(t, b, "f", blob.CreateOnly, "aaaa")
	require.NoError(t, err)
	path := filepath.Join(b.Root(), "f")

	// Same size and mtime: the cached generation is used, the file not read.
	require.NoError(t, os.WriteFile(path, []byte("bbbb"), 0o644))
	require.NoError(t, os.Chtimes(path, obj.Updated, obj.Updated))
	st, err := b.Stat(t.Context(), "f")
	require.NoError(t, err)
	require.Equal(t, obj.Generation, st.Generation)

	// A new mtime invalidates the entry.
	later := obj.Updated.Add(time.Second)
	require.NoError(t, os.Chtimes(path, later, later))
	st, err = b.Stat(t.Context(), "f")
	require.NoError(t, err)
	require.NotEqual(t, obj.Generation, st.Generation)
	sum := sha256.Sum256([]byte("bbbb"))
	require.Equal(t, int64(binary.BigEndian.Uint64(sum[:8])&(1<<63-1)), st.Generation)
}

func TestListSkipsHiddenFiles(t *testing.T) {
	b := newBucket(t)
	_, err := write(t, b, "in/a.csv", blob.CreateOnly, "a")
	require.NoError(t, err)
	// A crashed write's temp file and a hidden folder.
	require.NoError(t, os.WriteFile(filepath.Join(b.Root(), "in", ".a.csv.123.tmp"), []byte("half"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(b.Root(), "in", ".cache"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(b.Root(), "in", ".cache", "x"), []byte("x"), 0o644))

	objs, err := b.List(t.Context(), "")
	require.NoError(t, err)
	require.Len(t, objs, 1)
	require.Equal(t, "in/a.csv", objs[0].Name)
}

func TestFolderNameConflict(t *testing.T) {
	b := newBucket(t)
	_, err := write(t, b, "a/b", blob.CreateOnly, "x")
	require.NoError(t, err)

	_, err = write(t, b, "a", blob.CreateOnly, "y")
	require.Error(t, err)
	require.NotErrorIs(t, err, blob.ErrExists)

	_, err = write(t, b, "a/b/c", blob.CreateOnly, "z")
	require.Error(t, err)
	_, err = b.Stat(t.Context(), "a/b/c")
	require.ErrorIs(t, err, blob.ErrNotExist)
	requireNoTempFiles(t, b.Root())
}

func TestUnknownMode(t *testing.T) {
	b := newBucket(t)
	_, err := write(t, b, "x", blob.Mode(42), "x")
	require.ErrorContains(t, err, "unknown mode")
	_, err = b.Stat(t.Context(), "x")
	require.ErrorIs(t, err, blob.ErrNotExist)
}
