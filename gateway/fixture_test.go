package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
)

// What the gateway's tests and benchmarks build their servers from: a
// shipped definition, rows parsed from generated CSV, and a model fitted on
// them and promoted, as train and promote would leave it.

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, events.Event) error { return nil }

// shipped is schemas/datasets/<name>.json, with each edit (a pair: old,
// new) made to its first occurrence before it is parsed.
func shipped(tb testing.TB, name string, edits ...string) *dataset.Definition {
	tb.Helper()
	b, err := os.ReadFile("../schemas/datasets/" + name + ".json")
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(edits); i += 2 {
		b = bytes.Replace(b, []byte(edits[i]), []byte(edits[i+1]), 1)
	}
	def, err := dataset.Parse(b)
	if err != nil {
		tb.Fatal(err)
	}
	return def
}

// stagedRows parses csv as def's input: the rows it accepts, and how many
// it rejected.
func stagedRows(tb testing.TB, def *dataset.Definition, csv []byte) ([]dataset.StagedRow, int) {
	tb.Helper()
	in, err := def.NewInputReader(bytes.NewReader(csv), dataset.InputOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	var rows []dataset.StagedRow
	rejected := 0
	for {
		r, rej, err := in.Next()
		if errors.Is(err, io.EOF) {
			return rows, rejected
		}
		if err != nil {
			tb.Fatal(err)
		}
		if rej != nil {
			rejected++
			continue
		}
		rows = append(rows, dataset.StagedRow{Row: r, Hash: def.Hash(r)})
	}
}

// promoteFitted fits spec on rows (by the spec's kind), writes the
// artifact as p.Artifact (one already there is the same fit, and kept)
// and records p with the spec and the artifact's checksum.
func promoteFitted(tb testing.TB, bucket blob.Bucket, reg *registry.Registry, def *dataset.Definition, spec string, rows []dataset.StagedRow, p registry.Promotion) registry.Promotion {
	tb.Helper()
	ctx := context.Background()
	s, ok := def.Spec(spec)
	if !ok {
		tb.Fatalf("%s has no spec %s", def.Name, spec)
	}
	kind, ok := model.LookupKind(s.Kind)
	if !ok {
		tb.Fatalf("no model kind %q", s.Kind)
	}
	art, _, err := kind.Fit(ctx, def, s, func(fn func(dataset.StagedRow) error) error {
		for _, r := range rows {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	data, err := art.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	_, err = bucket.Write(ctx, p.Artifact, blob.CreateOnly, func(w io.Writer) error { _, err := w.Write(data); return err })
	if err != nil && !errors.Is(err, blob.ErrExists) {
		tb.Fatal(err)
	}
	p.Spec, p.Checksum = s.Name, model.Checksum(data)
	if err := reg.AddPromotion(ctx, p); err != nil {
		tb.Fatal(err)
	}
	return p
}
