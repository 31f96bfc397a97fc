// Package blobtest is the conformance suite every blob.Bucket implementation
// must pass, so callers can rely on the same semantics in every deployment.
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/blob"
)

// Run runs the suite. newBucket must return an empty bucket each call.
func Run(t *testing.T, newBucket func(t *testing.T) blob.Bucket) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, b blob.Bucket)
	}{
		{"RoundTrip", testRoundTrip},
		{"CreateOnlyExisting", testCreateOnlyExisting},
		{"Overwrite", testOverwrite},
		{"FillError", testFillError},
		{"ContextCancelled", testContextCancelled},
		{"Missing", testMissing},
		{"List", testList},
		{"ListSkipsUncommitted", testListSkipsUncommitted},
		{"Names", testNames},
		{"ConcurrentCreateOnly", testConcurrentCreateOnly},
		{"DeleteGeneration", testDeleteGeneration},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newBucket(t))
		})
	}
}

var errFill = errors.New("blobtest: fill failed on purpose")

// write writes data in chunks of chunk bytes (all at once if chunk <= 0).
func write(ctx context.Context, b blob.Bucket, name string, mode blob.Mode, data []byte, chunk int) (blob.Object, error) {
	return b.Write(ctx, name, mode, func(w io.Writer) error {
		if chunk <= 0 {
			chunk = len(data)
		}
		for rest := data; len(rest) > 0; {
			n := min(chunk, len(rest))
			if _, err := w.Write(rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return nil
	})
}

func mustWrite(t *testing.T, b blob.Bucket, name string, mode blob.Mode, data []byte) blob.Object {
	t.Helper()
	obj, err := write(t.Context(), b, name, mode, data, 0)
	require.NoError(t, err)
	return obj
}

func read(t *testing.T, b blob.Bucket, name string) []byte {
	t.Helper()
	rc, err := b.Open(t.Context(), name)
	require.NoError(t, err)
	defer rc.Close()
	data, err := io.ReadAll(rc)
	require.NoError(t, err)
	return data
}

func requireAbsent(t *testing.T, b blob.Bucket, name string) {
	t.Helper()
	_, err := b.Stat(t.Context(), name)
	require.ErrorIs(t, err, blob.ErrNotExist)
	objs, err := b.List(t.Context(), "")
	require.NoError(t, err)
	for _, o := range objs {
		require.NotEqual(t, name, o.Name, "uncommitted object listed")
	}
}

// requireSameObject compares what Write returned with what Stat reports.
func requireSameObject(t *testing.T, want, got blob.Object) {
	t.Helper()
	require.Equal(t, want.Bucket, got.Bucket)
	require.Equal(t, want.Name, got.Name)
	require.Equal(t, want.Size, got.Size)
	require.Equal(t, want.Generation, got.Generation)
	require.True(t, want.Updated.Equal(got.Updated), "updated: want %v, got %v", want.Updated, got.Updated)
}

func pattern(n int, seed byte) []byte {
	data := make([]byte, n)
	for i := range data {
		data[i] = seed + byte(i*7+i/251)
	}
	return data
}

func testRoundTrip(t *testing.T, b blob.Bucket) {
	tests := []struct {
		name  string
		data  []byte
		chunk int
	}{
		{"empty", []byte{}, 0},
		{"small", []byte("hello, refit\n"), 0},
		{"binary", []byte{0, 1, 2, 0xff, 0xfe, 0, '\n', '\r'}, 1},
		{"5MB in small writes", pattern(5<<20, 3), 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "roundtrip/" + strings.ReplaceAll(tt.name, " ", "-")
			before := time.Now().Add(-time.Hour)
			obj, err := write(t.Context(), b, name, blob.CreateOnly, tt.data, tt.chunk)
			require.NoError(t, err)
			require.Equal(t, b.Name(), obj.Bucket)
			require.Equal(t, name, obj.Name)
			require.Equal(t, int64(len(tt.data)), obj.Size)
			require.NotZero(t, obj.Generation)
			require.True(t, obj.Updated.After(before), "updated %v", obj.Updated)

			require.True(t, bytes.Equal(tt.data, read(t, b, name)), "content differs")
			st, err := b.Stat(t.Context(), name)
			require.NoError(t, err)
			requireSameObject(t, obj, st)
		})
	}
}

func testCreateOnlyExisting(t *testing.T, b blob.Bucket) {
	first := mustWrite(t, b, "immutable/chunk-0001", blob.CreateOnly, []byte("first"))
	_, err := write(t.Context(), b, "immutable/chunk-0001", blob.CreateOnly, []byte("second, longer"), 0)
	require.ErrorIs(t, err, blob.ErrExists)
	require.Equal(t, "first", string(read(t, b, "immutable/chunk-0001")))
	st, err := b.Stat(t.Context(), "immutable/chunk-0001")
	require.NoError(t, err)
	requireSameObject(t, first, st)
}

func testOverwrite(t *testing.T, b blob.Bucket) {
	created := mustWrite(t, b, "uploads/data.csv", blob.Overwrite, []byte("a,b\n1,2\n"))
	require.Equal(t, "a,b\n1,2\n", string(read(t, b, "uploads/data.csv")))

	tests := []struct {
		name    string
		data    string
		newGen  bool // content changed, so the generation must change
		wantLen int64
	}{
		{"longer", "a,b\n1,2\n3,4\n", true, 12},
		{"shorter", "a\n", true, 2},
		{"empty", "", true, 0},
		{"same again", "", false, 0},
		{"back to first", "a,b\n1,2\n", true, 8},
	}
	prev := created
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := mustWrite(t, b, "uploads/data.csv", blob.Overwrite, []byte(tt.data))
			require.Equal(t, tt.wantLen, obj.Size)
			require.NotZero(t, obj.Generation)
			if tt.newGen {
				require.NotEqual(t, prev.Generation, obj.Generation)
			}
			require.Equal(t, tt.data, string(read(t, b, "uploads/data.csv")))
			st, err := b.Stat(t.Context(), "uploads/data.csv")
			require.NoError(t, err)
			requireSameObject(t, obj, st)
			prev = obj
		})
	}
}

func testFillError(t *testing.T, b blob.Bucket) {
	mustWrite(t, b, "existing", blob.CreateOnly, []byte("keep me"))
	tests := []struct {
		name string
		obj  string
		mode blob.Mode
		want string // content afterwards; "" means absent
	}{
		{"create only, new", "failed/new-1", blob.CreateOnly, ""},
		{"overwrite, new", "failed/new-2", blob.Overwrite, ""},
		{"overwrite, existing", "existing", blob.Overwrite, "keep me"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.Write(t.Context(), tt.obj, tt.mode, func(w io.Writer) error {
				if _, err := w.Write(pattern(64<<10, 1)); err != nil {
					return err
				}
				return fmt.Errorf("parsing row 7: %w", errFill)
			})
			require.ErrorIs(t, err, errFill)
			if tt.want == "" {
				requireAbsent(t, b, tt.obj)
				return
			}
			require.Equal(t, tt.want, string(read(t, b, tt.obj)))
		})
	}
}

func testContextCancelled(t *testing.T, b blob.Bucket) {
	tests := []struct {
		name string
		fill func(cancel context.CancelFunc) func(io.Writer) error
		pre  bool // cancel before calling Write
	}{
		{
			name: "before write",
			pre:  true,
			fill: func(context.CancelFunc) func(io.Writer) error {
				return func(w io.Writer) error { _, err := w.Write([]byte("x")); return err }
			},
		},
		{
			name: "during fill",
			fill: func(cancel context.CancelFunc) func(io.Writer) error {
				return func(w io.Writer) error {
					if _, err := w.Write([]byte("partial ")); err != nil {
						return err
					}
					cancel()
					// A fill that ignores the context must not make the write commit.
					_, _ = w.Write([]byte("rest"))
					return nil
				}
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("cancelled/%d", i)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.pre {
				cancel()
			}
			_, err := b.Write(ctx, name, blob.CreateOnly, tt.fill(cancel))
			require.ErrorIs(t, err, context.Canceled)
			requireAbsent(t, b, name)
		})
	}
}

func testMissing(t *testing.T, b blob.Bucket) {
	mustWrite(t, b, "present/a", blob.CreateOnly, []byte("a"))
	for _, name := range []string{"absent", "present/b", "present"} {
		t.Run(name, func(t *testing.T) {
			_, err := b.Open(t.Context(), name)
			require.ErrorIs(t, err, blob.ErrNotExist)
			_, err = b.Stat(t.Context(), name)
			require.ErrorIs(t, err, blob.ErrNotExist)
		})
	}
}

func testList(t *testing.T, b blob.Bucket) {
	names := []string{
		"z-last.csv",
		"incoming/housing/b.csv",
		"incoming/housing/a.csv",
		"incoming/housing/sub/c.csv",
		"incoming/housing2/x.csv",
		"incoming/housing-x/d.csv",
		"incoming/other.csv",
		"models/housing/v1/model.json",
	}
	written := map[string]blob.Object{}
	for i, name := range names {
		// Distinct sizes so a wrong size is caught.
		written[name] = mustWrite(t, b, name, blob.CreateOnly, pattern(10+i*3, byte(i)))
	}

	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{
			"incoming/housing-x/d.csv", "incoming/housing/a.csv", "incoming/housing/b.csv",
			"incoming/housing/sub/c.csv", "incoming/housing2/x.csv", "incoming/other.csv",
			"models/housing/v1/model.json", "z-last.csv",
		}},
		{"incoming/housing/", []string{"incoming/housing/a.csv", "incoming/housing/b.csv", "incoming/housing/sub/c.csv"}},
		{"incoming/housing", []string{
			"incoming/housing-x/d.csv", "incoming/housing/a.csv", "incoming/housing/b.csv",
			"incoming/housing/sub/c.csv", "incoming/housing2/x.csv",
		}},
		{"incoming/housing/sub/", []string{"incoming/housing/sub/c.csv"}},
		{"incoming/housing/a", []string{"incoming/housing/a.csv"}},
		{"incoming/o", []string{"incoming/other.csv"}},
		{"z", []string{"z-last.csv"}},
		{"z-last.csv", []string{"z-last.csv"}},
		{"nothing/", []string{}},
		{"incoming/housing/a.csv/", []string{}},
		{"incoming/housing3", []string{}},
	}
	for _, tt := range tests {
		t.Run("prefix="+tt.prefix, func(t *testing.T) {
			objs, err := b.List(t.Context(), tt.prefix)
			require.NoError(t, err)
			got := make([]string, 0, len(objs))
			for _, o := range objs {
				got = append(got, o.Name)
				requireSameObject(t, written[o.Name], o)
			}
			require.Equal(t, tt.want, got)
			require.True(t, slices.IsSorted(got))
		})
	}
}

func testListSkipsUncommitted(t *testing.T, b blob.Bucket) {
	mustWrite(t, b, "staging/done", blob.CreateOnly, []byte("done"))

	started := make(chan struct{})
	release := make(chan error)
	result := make(chan error, 1)
	go func() {
		_, err := b.Write(t.Context(), "staging/in-progress", blob.CreateOnly, func(w io.Writer) error {
			if _, err := w.Write(pattern(128<<10, 9)); err != nil {
				close(started)
				return err
			}
			close(started)
			select {
			case err := <-release:
				return err
			case <-t.Context().Done():
				return t.Context().Err()
			}
		})
		result <- err
	}()
	<-started

	listNames := func() []string {
		objs, err := b.List(t.Context(), "staging/")
		require.NoError(t, err)
		var names []string
		for _, o := range objs {
			names = append(names, o.Name)
		}
		return names
	}
	require.Equal(t, []string{"staging/done"}, listNames())
	_, err := b.Stat(t.Context(), "staging/in-progress")
	require.ErrorIs(t, err, blob.ErrNotExist)

	release <- errFill
	require.ErrorIs(t, <-result, errFill)
	require.Equal(t, []string{"staging/done"}, listNames())
	requireAbsent(t, b, "staging/in-progress")
}

func testNames(t *testing.T, b blob.Bucket) {
	names := []string{
		"with space/file name.csv",
		"ünïcødé/日本語 データ.txt",
		"emoji 🎉/party.bin",
		"odd chars/a+b=c&d%20e#f.csv",
	}
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			data := pattern(100+i, byte(i))
			obj := mustWrite(t, b, name, blob.CreateOnly, data)
			require.Equal(t, name, obj.Name)
			require.Equal(t, data, read(t, b, name))
			st, err := b.Stat(t.Context(), name)
			require.NoError(t, err)
			requireSameObject(t, obj, st)

			dir := name[:strings.IndexByte(name, '/')+1]
			objs, err := b.List(t.Context(), dir)
			require.NoError(t, err)
			require.Len(t, objs, 1)
			requireSameObject(t, obj, objs[0])
		})
	}
}

func testConcurrentCreateOnly(t *testing.T, b blob.Bucket) {
	const writers = 8
	const name = "race/artifact.bin"
	contents := make([][]byte, writers)
	for i := range contents {
		contents[i] = bytes.Repeat([]byte{byte('A' + i)}, 256<<10)
	}

	type outcome struct {
		obj blob.Object
		err error
	}
	outcomes := make([]outcome, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			<-start
			obj, err := write(t.Context(), b, name, blob.CreateOnly, contents[i], 8<<10)
			outcomes[i] = outcome{obj, err}
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, o := range outcomes {
		if o.err == nil {
			require.Equal(t, -1, winner, "writers %d and %d both succeeded", winner, i)
			winner = i
			continue
		}
		require.ErrorIs(t, o.err, blob.ErrExists, "writer %d", i)
	}
	require.NotEqual(t, -1, winner, "no writer succeeded")
	require.True(t, bytes.Equal(contents[winner], read(t, b, name)), "content is not the winner's complete content")
	st, err := b.Stat(t.Context(), name)
	require.NoError(t, err)
	requireSameObject(t, outcomes[winner].obj, st)
}

// generationDeleter is what preprocess's retention of rejected uploads needs.
type generationDeleter interface {
	DeleteGeneration(ctx context.Context, name string, generation int64) error
}

// testDeleteGeneration: only the named generation is deleted; a newer one
// under the same name, and other objects, stay.
func testDeleteGeneration(t *testing.T, b blob.Bucket) {
	d, ok := b.(generationDeleter)
	require.True(t, ok, "%T has no DeleteGeneration", b)
	ctx := t.Context()
	old := mustWrite(t, b, "incoming/housing/a.csv", blob.Overwrite, []byte("old"))
	cur := mustWrite(t, b, "incoming/housing/a.csv", blob.Overwrite, []byte("newer"))
	other := mustWrite(t, b, "incoming/housing/b.csv", blob.CreateOnly, []byte("other"))
	require.NotEqual(t, old.Generation, cur.Generation)

	err := d.DeleteGeneration(ctx, "incoming/housing/a.csv", old.Generation)
	require.ErrorIs(t, err, blob.ErrChanged, "an overwritten generation's delete leaves the newer one")
	require.Equal(t, []byte("newer"), read(t, b, "incoming/housing/a.csv"))
	got, err := b.Stat(ctx, "incoming/housing/a.csv")
	require.NoError(t, err)
	require.Equal(t, cur.Generation, got.Generation)

	require.NoError(t, d.DeleteGeneration(ctx, "incoming/housing/a.csv", cur.Generation))
	requireAbsent(t, b, "incoming/housing/a.csv")
	require.ErrorIs(t, d.DeleteGeneration(ctx, "incoming/housing/a.csv", cur.Generation), blob.ErrNotExist)

	listed, err := b.List(ctx, "incoming/housing/")
	require.NoError(t, err)
	require.Len(t, listed, 1)
	requireSameObject(t, other, listed[0])
}
