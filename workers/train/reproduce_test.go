package train_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/workers/train"
	"github.com/refit-ml/refit/workers/workertest"
)

type catalog map[string]*dataset.Definition

func (c catalog) Get(name string) (*dataset.Definition, bool) { d, ok := c[name]; return d, ok }

func write(t *testing.T, b blob.Bucket, name string, data []byte) {
	t.Helper()
	_, err := b.Write(context.Background(), name, blob.CreateOnly, func(w io.Writer) error { _, err := w.Write(data); return err })
	require.NoError(t, err)
}

// reproduceFixture records version 1 of housing (two staged blobs) and a
// run of linear-onehot fitted on it, the way train does.
func reproduceFixture(t *testing.T) (*train.Reproducer, blob.Bucket, *registry.Registry, registry.Run) {
	t.Helper()
	ctx := context.Background()
	d := workertest.Shipped(t, "housing")
	bucket, err := local.New(t.TempDir(), "test")
	require.NoError(t, err)
	reg := registry.New(memory.New())

	var raw bytes.Buffer
	require.NoError(t, synth.Housing{Seed: 7}.Write(&raw, 400))
	in, err := d.NewInputReader(&raw, dataset.InputOptions{})
	require.NoError(t, err)
	var blobs [2]bytes.Buffer
	enc := d.NewStagedEncoder("test")
	for i := range blobs {
		blobs[i].Write(d.HeaderRecord())
	}
	for i := 0; ; i++ {
		row, rej, err := in.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.Nil(t, rej)
		_, _, rec := enc.Encode(row)
		blobs[i%2].Write(rec)
	}
	v := registry.Version{Dataset: "housing", Number: 1, Hash: strings.Repeat("a", 64), Rows: 400}
	for i := range blobs {
		name := fmt.Sprintf("datasets/housing/rows/%d.csv", i)
		write(t, bucket, name, blobs[i].Bytes())
		sum := sha256.Sum256(blobs[i].Bytes())
		v.Blobs = append(v.Blobs, name)
		v.BlobRows = append(v.BlobRows, 200)
		v.BlobHashes = append(v.BlobHashes, hex.EncodeToString(sum[:]))
	}
	require.NoError(t, reg.AddVersion(ctx, v))

	spec, _ := d.Spec("linear-onehot")
	art, err := model.Fit(ctx, d, spec, d.ScanBlobs(ctx, bucket, v.Blobs, dataset.TrainRows))
	require.NoError(t, err)
	ab, err := art.Marshal()
	require.NoError(t, err)
	write(t, bucket, "models/housing/run.json", ab)
	run := registry.Run{ID: "00000000000000a1", Dataset: "housing", Spec: spec.Name, SpecHash: spec.Hash(), Version: 1, VersionHash: v.Hash,
		TrainRows: art.TrainRows, Artifact: "models/housing/run.json", Checksum: model.Checksum(ab)}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	return train.NewReproducer(catalog{"housing": d}, reg, bucket, logger), bucket, reg, run
}

func TestReproduceGivesTheRecordedBytes(t *testing.T) {
	r, _, _, run := reproduceFixture(t)
	out, err := r.Reproduce(context.Background(), run)
	require.NoError(t, err)
	require.True(t, out.Identical, "%+v", out)
	require.Equal(t, run.Checksum, out.Checksum)
	require.Equal(t, run.TrainRows, out.TrainRows)
	require.Equal(t, 1, out.Version)
	require.Equal(t, "linear-onehot", out.Spec)
}

func TestReproduceNamesTheInputItCannotUse(t *testing.T) {
	ctx := context.Background()
	r, bucket, reg, run := reproduceFixture(t)
	v, err := reg.Version(ctx, "housing", 1)
	require.NoError(t, err)
	addVersion := func(n int, blobs ...string) {
		w := v
		w.Number, w.Blobs = n, blobs
		require.NoError(t, reg.AddVersion(ctx, w))
	}
	// Version 2: its second blob is gone; version 3: garbage in place of
	// staged rows; version 4: a row cut in half.
	addVersion(2, v.Blobs[0], "datasets/housing/rows/missing.csv")
	write(t, bucket, "datasets/housing/rows/garbage.csv", []byte("\x00\x01 not a staged file\n"))
	addVersion(3, "datasets/housing/rows/garbage.csv")
	var whole bytes.Buffer
	rc, err := bucket.Open(ctx, v.Blobs[0])
	require.NoError(t, err)
	_, err = io.Copy(&whole, rc)
	require.NoError(t, err)
	rc.Close()
	cut := whole.Bytes()[:bytes.LastIndexByte(whole.Bytes()[:whole.Len()-1], '\n')+20]
	write(t, bucket, "datasets/housing/rows/cut.csv", cut)
	addVersion(4, "datasets/housing/rows/cut.csv")
	// Version 5: the blob cut at a line boundary, every row it keeps whole;
	// only its recorded row count and hash tell.
	short := whole.Bytes()[:bytes.IndexByte(whole.Bytes()[whole.Len()/2:], '\n')+whole.Len()/2+1]
	write(t, bucket, "datasets/housing/rows/short.csv", short)
	w := v
	w.Number, w.Blobs, w.BlobRows, w.BlobHashes = 5, []string{"datasets/housing/rows/short.csv"}, v.BlobRows[:1], v.BlobHashes[:1]
	require.NoError(t, reg.AddVersion(ctx, w))

	tests := []struct {
		name     string
		edit     func(*registry.Run)
		contains string
	}{
		{"missing rows blob", func(r *registry.Run) { r.Version = 2 }, "rows of version 2 cannot be read"},
		{"garbage rows blob", func(r *registry.Run) { r.Version = 3 }, "rows of version 3 cannot be read"},
		{"truncated rows blob", func(r *registry.Run) { r.Version = 4 }, "rows of version 4 cannot be read"},
		{"blob short of rows", func(r *registry.Run) { r.Version = 5 }, "rows of version 5 cannot be read"},
		{"no such version", func(r *registry.Run) { r.Version = 9 }, "version 9 is not in the store"},
		{"other content", func(r *registry.Run) { r.VersionHash = strings.Repeat("b", 64) }, "the store has " + v.Hash},
		{"artifact checksum", func(r *registry.Run) { r.Checksum = "sha256:" + strings.Repeat("0", 64) }, "recorded artifact cannot be used"},
		{"artifact gone", func(r *registry.Run) { r.Artifact = "models/housing/gone.json" }, "recorded artifact cannot be used"},
		{"dataset gone", func(r *registry.Run) { r.Dataset = "boats" }, `dataset "boats" is not defined`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := run
			tt.edit(&bad)
			_, err := r.Reproduce(ctx, bad)
			require.ErrorIs(t, err, train.ErrUnreproducible)
			require.ErrorContains(t, err, tt.contains)
		})
	}
}
