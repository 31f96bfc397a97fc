package workertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/schemas"
	"github.com/refit-ml/refit/workers"
)

// What the workers' benchmarks share: a shipped definition, dependencies
// that publish and log nothing, and staged blobs of generated houses
// written as preprocess and version write them.

// Shipped is the dataset definition schemas/datasets/<name>.json, as
// shipped.
func Shipped(tb testing.TB, name string) *dataset.Definition {
	tb.Helper()
	b, err := fs.ReadFile(schemas.Files, "datasets/"+name+".json")
	if err != nil {
		tb.Fatal(err)
	}
	d, err := dataset.Parse(b)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// Discard is a Publisher that drops every event: nothing reads them in a
// benchmark, and keeping them would grow with b.N.
type Discard struct{}

// Publish drops e.
func (Discard) Publish(context.Context, events.Event) error { return nil }

// QuietDeps are a worker's dependencies on d, bucket and reg that publish
// nowhere and log nothing, with metrics of their own.
func QuietDeps(tb testing.TB, d *dataset.Definition, bucket blob.Bucket, reg *registry.Registry) workers.Deps {
	tb.Helper()
	catalog, err := dataset.NewCatalog(d)
	if err != nil {
		tb.Fatal(err)
	}
	return workers.Deps{Datasets: catalog, Bucket: bucket, Registry: reg, Publisher: Discard{},
		Logger: slog.New(slog.DiscardHandler), Metrics: prometheus.NewRegistry()}
}

// Houses is a stream of generated houses (synth.Housing) read as d's
// input, to be staged a blob at a time.
type Houses struct {
	d  *dataset.Definition
	in *dataset.InputReader
}

// NewHouses generates rows houses from seed.
func NewHouses(tb testing.TB, d *dataset.Definition, seed int64, rows int) *Houses {
	tb.Helper()
	var raw bytes.Buffer
	if err := (synth.Housing{Seed: seed}).Write(&raw, rows); err != nil {
		tb.Fatal(err)
	}
	in, err := d.NewInputReader(&raw, dataset.InputOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return &Houses{d: d, in: in}
}

// Blob is a staged blob Houses wrote.
type Blob struct {
	Name                      string
	Rows, TrainRows, TestRows int
	Hash                      string // hex SHA-256 of its bytes, as a version records it
}

// Stage writes the stream's next accepted rows, at most n, as the staged
// blob name (header first; rows encoded by a StagedEncoder named id).
// Once the stream is spent it writes a header alone: Rows is 0.
func (h *Houses) Stage(tb testing.TB, bucket blob.Bucket, name, id string, n int) Blob {
	tb.Helper()
	b := Blob{Name: name}
	sum := sha256.New()
	_, err := bucket.Write(context.Background(), name, blob.CreateOnly, func(w io.Writer) error {
		out := io.MultiWriter(w, sum)
		enc := h.d.NewStagedEncoder(id)
		if _, err := out.Write(h.d.HeaderRecord()); err != nil {
			return err
		}
		for b.Rows < n {
			row, rej, err := h.in.Next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if rej != nil {
				continue
			}
			_, test, rec := enc.Encode(row)
			if _, err := out.Write(rec); err != nil {
				return err
			}
			b.Rows++
			if test {
				b.TestRows++
			} else {
				b.TrainRows++
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	b.Hash = hex.EncodeToString(sum.Sum(nil))
	return b
}

// AddTo lists b in v as the version worker does: its name, row count and
// hash after v's blobs, and its rows in v's counts.
func (b Blob) AddTo(v *registry.Version) {
	v.Blobs = append(v.Blobs, b.Name)
	v.BlobRows = append(v.BlobRows, b.Rows)
	v.BlobHashes = append(v.BlobHashes, b.Hash)
	v.Rows += b.Rows
	v.TrainRows += b.TrainRows
	v.TestRows += b.TestRows
}
