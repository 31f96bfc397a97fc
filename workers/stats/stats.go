// Package stats keeps the sufficient statistics (model.Stats) of the rows
// blobs and versions of a dataset in the bucket, beside the rows:
//
//	datasets/<d>/rows/<blob>.<key>.stats    one rows blob's statistics
//	datasets/<d>/stats/<version-hash>.<key>.stats  a version's, merged
//
// where <key> is model.StatsKey of the dataset's specs. Both are derived
// data: written create-only, and rebuilt from the rows whenever a file is
// missing or fails its checksum (never half-read), so a crash between
// writing a blob and its statistics costs one recomputation.
//
// A version's statistics are the fold, in blob position order, of its
// blobs' statistics: its parent's merged statistics, then its new blob's.
// Merge is exact and ordered, so the result is bit-identical whichever
// worker or replica computed each part. The train worker computes each
// blob's on its own message (blob.written), so replicas share the work; a
// fit that finds one missing computes it then (Version).
//
// Rows are read through VerifiedOpener: a blob whose row count or content
// hash is not what its version recorded fails with CorruptBlobError, and
// no statistics are written from it.
package stats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
)

// Needed reports whether def's specs use statistics: only least squares
// (linear) is fitted and scored from them, so a classification dataset
// computes none.
func Needed(def *dataset.Definition) bool {
	for _, m := range def.Models {
		if m.Kind == dataset.KindLinear {
			return true
		}
	}
	return false
}

// Store reads, computes and writes statistics files.
type Store struct {
	bucket  blob.Bucket
	log     *slog.Logger
	rebuilt *prometheus.CounterVec
	// versions finds what the blobs of a version cut before blob hashes
	// were recorded must hold (nil: such blobs cannot be rebuilt).
	versions VersionLister
	// computing: a blob's statistics asked for twice at once in this
	// process (its blob.written and a fit of its version) are computed once.
	computing singleflight.Group
}

// Option configures a Store.
type Option func(*Store)

// WithVersions lets the store check the blobs of versions that do not
// record their blobs' row counts and hashes against the versions that
// added them.
func WithVersions(l VersionLister) Option { return func(s *Store) { s.versions = l } }

// New builds a store. Several workers of one process may share metrics.
func New(bucket blob.Bucket, log *slog.Logger, metrics prometheus.Registerer, opts ...Option) (*Store, error) {
	rebuilt := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "refit_stats_rebuilt_total",
		Help: "Statistics files computed from the rows because they were missing or corrupt.",
	}, []string{"dataset", "reason"})
	if err := metrics.Register(rebuilt); err != nil {
		are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err)
		if !ok {
			return nil, fmt.Errorf("stats: %w", err)
		}
		existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return nil, fmt.Errorf("stats: %w", err)
		}
		rebuilt = existing
	}
	s := &Store{bucket: bucket, log: log, rebuilt: rebuilt}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// BlobName is where a rows blob's statistics are kept.
func BlobName(rowsBlob, key string) string {
	return strings.TrimSuffix(rowsBlob, ".csv") + "." + key + ".stats"
}

// VersionName is where a version's merged statistics are kept.
func VersionName(dataset, versionHash, key string) string {
	return fmt.Sprintf("datasets/%s/stats/%s.%s.stats", dataset, versionHash, key)
}

// Reasons a statistics file is rebuilt.
const (
	reasonMissing = "missing"
	reasonCorrupt = "corrupt"
)

// read loads one statistics file. It reports a reason ("missing",
// "corrupt") instead of an error when the file must be rebuilt.
func (s *Store) read(ctx context.Context, def *dataset.Definition, name string) (*model.Stats, string, error) {
	rc, err := s.bucket.Open(ctx, name)
	if errors.Is(err, blob.ErrNotExist) {
		return nil, reasonMissing, nil
	}
	if err != nil {
		return nil, "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", name, err)
	}
	st, err := model.UnmarshalStats(b)
	if err == nil && st.Dataset != def.Name {
		err = fmt.Errorf("%w: statistics of dataset %q", model.ErrCorruptStats, st.Dataset)
	}
	if errors.Is(err, model.ErrCorruptStats) {
		s.log.Warn("corrupt statistics; rebuilding them from the rows", "dataset", def.Name, "object", name, "err", err)
		return nil, reasonCorrupt, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	return st, "", nil
}

// write stores st under name: create-only for a new file, overwriting
// only a file found corrupt. A racing writer's file is as good as ours
// (the same inputs give the same bytes).
func (s *Store) write(ctx context.Context, name string, st *model.Stats, reason string) error {
	mode := blob.CreateOnly
	if reason == reasonCorrupt {
		mode = blob.Overwrite
	}
	return write(ctx, s.bucket, name, st, mode)
}

func write(ctx context.Context, bucket blob.Bucket, name string, st *model.Stats, mode blob.Mode) error {
	b := st.Marshal()
	_, err := bucket.Write(ctx, name, mode, func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(b))
		return err
	})
	if err != nil && !errors.Is(err, blob.ErrExists) {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// WriteBlob stores the statistics of a rows blob computed by the worker
// that wrote the blob, from the rows it wrote (staging: from the rows it
// has just validated, so the chunk is not read back), create-only. They
// must be the statistics ComputeStats gives on the blob's bytes; a train
// replica then finds them and reads no rows.
func WriteBlob(ctx context.Context, bucket blob.Bucket, def *dataset.Definition, rowsBlob string, st *model.Stats) error {
	key, err := model.StatsKey(def)
	if err != nil {
		return err
	}
	return write(ctx, bucket, BlobName(rowsBlob, key), st, blob.CreateOnly)
}

// Ensure makes sure a rows blob has readable statistics, computing them
// from its rows (one verified read) when they are missing or corrupt. The
// train worker calls it on blob.written; check is what the blob holds.
func (s *Store) Ensure(ctx context.Context, def *dataset.Definition, rowsBlob string, check BlobCheck) error {
	key, err := model.StatsKey(def)
	if err != nil {
		return err
	}
	name := BlobName(rowsBlob, key)
	_, reason, err := s.read(ctx, def, name)
	if err != nil || reason == "" {
		return err
	}
	// A first computation is what this call is for; a corrupt file is a
	// rebuild.
	_, err = s.compute(ctx, def, rowsBlob, name, reason, reason == reasonCorrupt, check)
	return err
}

// compute reads a blob's rows, checked against what its version recorded
// (a short or altered blob fails with CorruptBlobError before anything is
// written), and stores their statistics. rebuild: the file should have
// been there (logged and counted, once however many callers wait).
func (s *Store) compute(ctx context.Context, def *dataset.Definition, rowsBlob, name, reason string, rebuild bool, check BlobCheck) (*model.Stats, error) {
	v, err, _ := s.computing.Do(name, func() (any, error) {
		if rebuild {
			s.rebuilt.WithLabelValues(def.Name, reason).Inc()
			s.log.Info("computing statistics from the rows", "dataset", def.Name, "blob", rowsBlob, "reason", reason)
		}
		rows := VerifiedOpener{Opener: s.bucket, Checks: map[string]BlobCheck{rowsBlob: check}}
		st, err := model.ComputeStats(ctx, def, def.ScanBlobs(ctx, rows, []string{rowsBlob}, nil))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rowsBlob, err)
		}
		if err := s.write(ctx, name, st, reason); err != nil {
			return nil, err
		}
		return st, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*model.Stats), nil
}

// blob returns a rows blob's statistics, computing them from the rows when
// their file is missing or corrupt (check says what the rows must be).
func (s *Store) blob(ctx context.Context, def *dataset.Definition, key, rowsBlob string, check func() (BlobCheck, error)) (*model.Stats, error) {
	name := BlobName(rowsBlob, key)
	st, reason, err := s.read(ctx, def, name)
	if err != nil || reason == "" {
		return st, err
	}
	c, err := check()
	if err != nil {
		return nil, err
	}
	return s.compute(ctx, def, rowsBlob, name, reason, true, c)
}

// Version returns a version's statistics: its cached merge, else its
// parent's cached merge and its new blob's, else the fold of every blob's.
// The result is cached for the next version.
func (s *Store) Version(ctx context.Context, def *dataset.Definition, v registry.Version) (*model.Stats, error) {
	if len(v.Blobs) == 0 {
		return nil, fmt.Errorf("statistics of %s/v%d: %w", def.Name, v.Number, model.ErrNoRows)
	}
	key, err := model.StatsKey(def)
	if err != nil {
		return nil, err
	}
	name := VersionName(def.Name, v.Hash, key)
	st, reason, err := s.read(ctx, def, name)
	if err != nil || reason == "" {
		return st, err
	}
	// The parent's merge covers every blob but the last when the version
	// added one (a version of duplicates only shares its parent's hash,
	// and so its file).
	var acc *model.Stats
	from := 0
	if v.ParentHash != "" && v.ParentHash != v.Hash {
		p, preason, err := s.read(ctx, def, VersionName(def.Name, v.ParentHash, key))
		if err != nil {
			return nil, err
		}
		if preason == "" {
			acc, from = p, len(v.Blobs)-1
		}
	}
	// What each blob must hold, looked up only if one must be read.
	var checks map[string]BlobCheck
	check := func(b string) func() (BlobCheck, error) {
		return func() (BlobCheck, error) {
			if checks == nil {
				c, err := Checks(ctx, s.versions, v)
				if err != nil {
					return BlobCheck{}, err
				}
				checks = c
			}
			return checks[b], nil
		}
	}
	for _, b := range v.Blobs[from:] {
		bs, err := s.blob(ctx, def, key, b, check(b))
		if err != nil {
			return nil, err
		}
		if acc == nil {
			acc = bs
			continue
		}
		if acc, err = model.Merge(acc, bs); err != nil {
			return nil, fmt.Errorf("statistics of %s/v%d: %w", def.Name, v.Number, err)
		}
	}
	if reason == reasonCorrupt {
		s.rebuilt.WithLabelValues(def.Name, reason).Inc()
	}
	if err := s.write(ctx, name, acc, reason); err != nil {
		return nil, err
	}
	return acc, nil
}
