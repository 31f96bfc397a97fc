package version_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/workers/preprocess"
	"github.com/refit-ml/refit/workers/version"
	"github.com/refit-ml/refit/workers/workertest"
)

// housingLines returns a generated housing CSV's header and data lines.
func housingLines(t *testing.T, seed int64, n int) (string, []string) {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, synth.Housing{Seed: seed}.Write(&buf, n))
	lines := strings.SplitAfter(buf.String(), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	require.Len(t, lines, n+1)
	return lines[0], lines[1:]
}

// cutFiles stages each file as an upload and cuts after each one; it
// returns the versions and the names of the rows blobs the cut wrote.
func cutFiles(t *testing.T, e *workertest.Env, files ...string) ([]registry.Version, []string) {
	t.Helper()
	ctx := context.Background()
	pre, err := preprocess.New(preprocess.Config{Deps: e.Deps(t)})
	require.NoError(t, err)
	w, err := version.New(e.Deps(t))
	require.NoError(t, err)
	var mu sync.Mutex
	var written []string
	e.Bucket.WriteFn = func(ctx context.Context, name string, mode blob.Mode, fill func(io.Writer) error) (blob.Object, error) {
		if strings.HasSuffix(name, ".csv") && !strings.HasPrefix(name, "incoming/") && !strings.HasPrefix(name, "staged/") {
			mu.Lock()
			written = append(written, name)
			mu.Unlock()
		}
		return e.Local.Write(ctx, name, mode, fill)
	}
	defer func() { e.Bucket.WriteFn = nil }()
	for i, f := range files {
		require.NoError(t, pre.HandleObject(ctx, e.Put(t, string(rune('a'+i))+".csv", []byte(f))))
		require.NoError(t, w.Cut(ctx, "housing", ""))
	}
	vs, err := e.Registry.Versions(ctx, "housing")
	require.NoError(t, err)
	return vs, written
}

func read(t *testing.T, e *workertest.Env, name string) []byte {
	t.Helper()
	rc, err := e.Local.Open(context.Background(), name)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// requireBlobsRecorded: each blob of v holds the rows and the content hash
// its version records, and its index is the sorted hashes of its rows.
func requireBlobsRecorded(t *testing.T, e *workertest.Env, v registry.Version) {
	t.Helper()
	require.Len(t, v.BlobRows, len(v.Blobs))
	require.Len(t, v.BlobHashes, len(v.Blobs))
	total := 0
	for i, name := range v.Blobs {
		content := read(t, e, name)
		require.Equal(t, v.BlobHashes[i], sha(content), "content hash of %s", name)
		rr, err := e.Def.NewStagedRecordReader(bytes.NewReader(content))
		require.NoError(t, err)
		var hashes []dataset.RowHash
		for {
			_, h, _, err := rr.Next()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			hashes = append(hashes, h)
		}
		require.Equal(t, v.BlobRows[i], len(hashes), "rows of %s", name)
		total += len(hashes)
		slices.SortFunc(hashes, func(a, b dataset.RowHash) int { return bytes.Compare(a[:], b[:]) })
		var index []byte
		for _, h := range hashes {
			index = append(index, h[:]...)
		}
		require.Equal(t, index, read(t, e, strings.TrimSuffix(name, ".csv")+".index"), "index of %s", name)
	}
	require.Equal(t, v.Rows, total)
}

// TestCutReferencesCleanChunks: an upload with no duplicate is its
// version's rows blob as staged; nothing is copied.
func TestCutReferencesCleanChunks(t *testing.T) {
	e := workertest.New(t, 150)
	header, rows := housingLines(t, 1, 400)
	vs, written := cutFiles(t, e, header+strings.Join(rows[:200], ""), header+strings.Join(rows[200:], ""))
	require.Empty(t, written, "rows blobs copied")
	require.Len(t, vs, 2)
	ingests, err := e.Registry.Ingests(context.Background(), "housing")
	require.NoError(t, err)
	chunks := map[string]bool{}
	for _, in := range ingests {
		chunks[in.Chunk] = true
	}
	for i, v := range vs {
		require.Equal(t, 200*(i+1), v.Rows)
		require.Equal(t, 200, v.NewRows)
		require.Zero(t, v.Duplicate)
		require.True(t, chunks[v.Blobs[i]], "version %d's new blob %s is its staged chunk", v.Number, v.Blobs[i])
		requireBlobsRecorded(t, e, v)
	}
	whole := sha256.Sum256([]byte(vs[0].Hash + ":" + vs[1].BlobHashes[1]))
	require.Equal(t, hex.EncodeToString(whole[:]), vs[1].Hash, "the version hash chains its parent's and its blob's content")
}

// TestCutCopiesWhenRowsRepeat: a batch with a row already in the dataset,
// or twice in itself, gets a new blob of the rows it adds.
func TestCutCopiesWhenRowsRepeat(t *testing.T) {
	e := workertest.New(t, 150)
	header, rows := housingLines(t, 1, 500)
	first := header + strings.Join(rows[:200], "")
	// 100 rows of the first upload, then 150 new rows, one of them twice.
	second := header + strings.Join(rows[100:200], "") + strings.Join(rows[300:450], "") + rows[300]
	vs, written := cutFiles(t, e, first, second)
	require.Len(t, vs, 2)
	require.Len(t, written, 1, "one rows blob copied")
	v := vs[1]
	require.Equal(t, written[0], v.Blobs[1])
	require.Equal(t, 150, v.NewRows)
	require.Equal(t, 101, v.Duplicate)
	require.Equal(t, 350, v.Rows)
	requireBlobsRecorded(t, e, v)
	// The copy holds the new rows in file order.
	rr, err := e.Def.NewStagedRecordReader(bytes.NewReader(read(t, e, v.Blobs[1])))
	require.NoError(t, err)
	var got []dataset.RowHash
	for {
		_, h, _, err := rr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		got = append(got, h)
	}
	in, err := e.Def.NewInputReader(strings.NewReader(header+strings.Join(rows[300:450], "")), dataset.InputOptions{})
	require.NoError(t, err)
	var want []dataset.RowHash
	for {
		row, rej, err := in.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		require.Nil(t, rej)
		want = append(want, e.Def.Hash(row))
	}
	require.Equal(t, want, got)
}

// TestCutReadsRowHashListsNotChunks: staging lists each upload's row
// hashes beside its chunk, and the cut reads the list (16 bytes a row)
// instead of the chunk. A list that is missing, truncated, altered or
// recorded with another checksum is not trusted: the cut reads the chunk,
// and every case cuts the same versions.
func TestCutReadsRowHashListsNotChunks(t *testing.T) {
	header, rows := housingLines(t, 1, 500)
	first := header + strings.Join(rows[:200], "")
	second := header + strings.Join(rows[100:200], "") + strings.Join(rows[300:450], "") + rows[300] // 101 duplicates
	type cut struct {
		Hash                 string
		Rows, New, Dup, Test int
		Blobs, BlobHashes    []string
		BlobRows             []int
	}
	for _, tt := range []struct {
		name      string
		spoil     func(t *testing.T, e *workertest.Env, in registry.Ingest)
		readsList bool
	}{
		{"intact", func(*testing.T, *workertest.Env, registry.Ingest) {}, true},
		{"missing", func(t *testing.T, e *workertest.Env, in registry.Ingest) {
			e.Bucket.OpenFn = func(ctx context.Context, name string) (io.ReadCloser, error) {
				if name == in.RowHashes {
					return nil, blob.ErrNotExist
				}
				return e.Local.Open(ctx, name)
			}
		}, false},
		{"truncated by one hash", func(t *testing.T, e *workertest.Env, in registry.Ingest) {
			overwrite(t, e, in.RowHashes, read(t, e, in.RowHashes)[16:])
		}, false},
		{"one bit flipped", func(t *testing.T, e *workertest.Env, in registry.Ingest) {
			b := read(t, e, in.RowHashes)
			b[len(b)/2] ^= 1
			overwrite(t, e, in.RowHashes, b)
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := workertest.New(t, 150)
			pre, err := preprocess.New(preprocess.Config{Deps: e.Deps(t)})
			require.NoError(t, err)
			require.NoError(t, pre.HandleObject(ctx, e.Put(t, "a.csv", []byte(first))))
			require.NoError(t, pre.HandleObject(ctx, e.Put(t, "b.csv", []byte(second))))
			ingests, err := e.Registry.Ingests(ctx, "housing")
			require.NoError(t, err)
			require.Len(t, ingests, 2)
			for _, in := range ingests {
				require.NotEmpty(t, in.RowHashes, "staging lists the row hashes")
				require.Equal(t, sha(read(t, e, in.Chunk)), in.ChunkHash)
				require.Equal(t, sha(read(t, e, in.RowHashes)), in.RowHashesSum)
				tt.spoil(t, e, in)
			}
			// What the cut reads of the chunks, beyond their header line.
			var mu sync.Mutex
			chunkBytes := 0
			open := e.Local.Open
			if e.Bucket.OpenFn != nil {
				open = e.Bucket.OpenFn
			}
			e.Bucket.OpenFn = func(ctx context.Context, name string) (io.ReadCloser, error) {
				rc, err := open(ctx, name)
				if err != nil || !strings.HasPrefix(name, "staged/") || !strings.HasSuffix(name, ".csv") {
					return rc, err
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				return io.NopCloser(&countingReader{r: bytes.NewReader(b), n: &chunkBytes, mu: &mu}), err
			}
			w, err := version.New(e.Deps(t))
			require.NoError(t, err)
			require.NoError(t, w.Cut(ctx, "housing", ""))
			vs, err := e.Registry.Versions(ctx, "housing")
			require.NoError(t, err)
			require.Len(t, vs, 2)
			var got []cut
			for _, v := range vs {
				requireBlobsRecorded(t, e, v)
				got = append(got, cut{v.Hash, v.Rows, v.NewRows, v.Duplicate, v.TestRows, v.Blobs, v.BlobHashes, v.BlobRows})
			}
			require.Equal(t, 200, got[0].New)
			require.Equal(t, 150, got[1].New)
			require.Equal(t, 101, got[1].Dup)
			want := cutByReadingChunks(t, first, second)
			require.Equal(t, len(want), len(got))
			for i := range got {
				require.Equal(t, want[i].Hash, got[i].Hash, "version %d", i+1)
				require.Equal(t, want[i].TestRows, got[i].Test, "version %d", i+1)
			}
			// The second batch has duplicates, so its rows are copied (the
			// chunk is read); the first is taken as it stands.
			headerLen := len(e.Def.HeaderRecord())
			copied := len(second) // at least the second chunk's rows, read to copy them
			if tt.readsList {
				require.Less(t, chunkBytes, len(read(t, e, ingests[0].Chunk))+len(read(t, e, ingests[1].Chunk))-headerLen,
					"with intact lists the cut reads the duplicated chunk only")
			} else {
				require.Greater(t, chunkBytes, copied, "without a usable list both chunks are read")
			}
		})
	}
}

// cutByReadingChunks cuts the files with the row hash lists removed from
// the ledger, as before they existed.
func cutByReadingChunks(t *testing.T, files ...string) []registry.Version {
	t.Helper()
	ctx := context.Background()
	e := workertest.New(t, 150)
	pre, err := preprocess.New(preprocess.Config{Deps: e.Deps(t)})
	require.NoError(t, err)
	for i, f := range files {
		require.NoError(t, pre.HandleObject(ctx, e.Put(t, string(rune('a'+i))+".csv", []byte(f))))
	}
	e.Bucket.OpenFn = func(ctx context.Context, name string) (io.ReadCloser, error) {
		if strings.HasSuffix(name, ".rowhashes") {
			return nil, blob.ErrNotExist
		}
		return e.Local.Open(ctx, name)
	}
	w, err := version.New(e.Deps(t))
	require.NoError(t, err)
	require.NoError(t, w.Cut(ctx, "housing", ""))
	vs, err := e.Registry.Versions(ctx, "housing")
	require.NoError(t, err)
	return vs
}

func overwrite(t *testing.T, e *workertest.Env, name string, b []byte) {
	t.Helper()
	_, err := e.Local.Write(context.Background(), name, blob.Overwrite, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	require.NoError(t, err)
}

type countingReader struct {
	r  io.Reader
	n  *int
	mu *sync.Mutex
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.mu.Lock()
	*c.n += n
	c.mu.Unlock()
	return n, err
}
