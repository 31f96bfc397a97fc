// Package preprocess validates uploaded files and corrections against their
// dataset's definition and stages the accepted rows for the next version.
//
// For each source (one generation of one uploaded object, or one
// correction) it streams the rows, quarantines the bad ones with their
// reason, writes the rest with their content hash as an immutable staged
// chunk and records the outcome in the ingest ledger. An upload large
// enough to be a version's rows blob by itself gets its statistics written
// beside the chunk, summed from the rows as they are staged
// (chunkstats.go). Duplicates are left
// for the version cut, which sees every source in order. The ledger entry is
// inserted last, under the source's idempotency key: until it exists the
// work is redone from scratch (with the same result: the chunk is a function
// of the source); once it exists nothing is redone.
package preprocess

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers"
	"github.com/refit-ml/refit/workers/stats"
)

// Config is the worker's dependencies and its one option.
type Config struct {
	workers.Deps
	// MaxRejectedListed caps the rejected rows written to a quarantine
	// report (default 10,000); the rest are counted.
	MaxRejectedListed int
	// IncomingRetention: an upload rejected whole (nothing staged from it)
	// is deleted from incoming/ by the reconcile pass once its rejection has
	// been recorded this long; its ledger entry and quarantine report stay.
	// 0 keeps every upload. The bucket must be able to delete a generation.
	IncomingRetention time.Duration
}

// generationDeleter deletes one generation of an object and nothing newer
// (blob/local and blob/gcs).
type generationDeleter interface {
	DeleteGeneration(ctx context.Context, name string, generation int64) error
}

// Worker is the preprocess worker.
type Worker struct {
	datasets    workers.Datasets
	bucket      blob.Bucket
	reg         *registry.Registry
	pub         workers.Publisher
	log         *slog.Logger
	now         func() time.Time
	maxRejected int
	retention   time.Duration
	deleter     generationDeleter // set when retention > 0

	accepted, rejected *prometheus.CounterVec
}

// New builds the worker.
func New(cfg Config) (*Worker, error) {
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("preprocess: %w", err)
	}
	if cfg.MaxRejectedListed <= 0 {
		cfg.MaxRejectedListed = 10_000
	}
	deleter, canDelete := cfg.Bucket.(generationDeleter)
	switch {
	case cfg.IncomingRetention < 0:
		return nil, fmt.Errorf("preprocess: IncomingRetention %v is negative", cfg.IncomingRetention)
	case cfg.IncomingRetention > 0 && !canDelete:
		return nil, fmt.Errorf("preprocess: IncomingRetention is set but bucket %T cannot delete a generation", cfg.Bucket)
	case cfg.IncomingRetention == 0:
		deleter = nil
	}
	counter := func(name, help string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"dataset"})
		cfg.Metrics.MustRegister(c)
		return c
	}
	return &Worker{
		datasets: cfg.Datasets, bucket: cfg.Bucket, reg: cfg.Registry, pub: cfg.Publisher,
		log: cfg.Logger.With("component", "preprocess"), now: cfg.Now(), maxRejected: cfg.MaxRejectedListed,
		retention: cfg.IncomingRetention, deleter: deleter,
		accepted: counter("refit_rows_accepted_total", "Rows accepted and staged."),
		rejected: counter("refit_rows_rejected_total", "Rows rejected and quarantined."),
	}, nil
}

// HandleObject ingests one generation of an uploaded object.
func (w *Worker) HandleObject(ctx context.Context, e *events.ObjectFinalized) error {
	if e.EventType != events.EventTypeFinalize {
		return nil // deletes, metadata updates: nothing to ingest
	}
	dsName, ok := events.DatasetOf(e.Name)
	if !ok {
		return nil // not an upload
	}
	d, ok := w.datasets.Get(dsName)
	if !ok {
		return bus.Permanent(fmt.Errorf("object %s: unknown dataset %q (known: %v)", e.Name, dsName, w.datasets.Names()))
	}
	src := registry.Source{Kind: registry.SourceObject, Bucket: e.Bucket, Object: e.Name, Generation: e.Generation}
	in := registry.Ingest{ID: registry.IngestID(src.Key()), Dataset: d.Name, Source: src, SourceTime: e.Updated}
	if done, err := w.alreadyStaged(ctx, in, e.CorrelationID); done || err != nil {
		return err
	}
	obj, err := w.bucket.Stat(ctx, e.Name)
	if errors.Is(err, blob.ErrNotExist) {
		w.log.Info("object gone before it was ingested", "object", e.Name)
		return nil
	}
	if err != nil {
		return err
	}
	if obj.Generation != e.Generation {
		// Overwritten since: the new generation has its own event.
		w.log.Info("object overwritten before it was ingested", "object", e.Name, "generation", e.Generation, "current", obj.Generation)
		return nil
	}
	if in.SourceTime.IsZero() {
		in.SourceTime = obj.Updated
	}
	rc, err := w.bucket.Open(ctx, e.Name)
	if err != nil {
		return err
	}
	defer rc.Close()
	r, err := d.NewInputReader(rc, dataset.InputOptions{ReuseFields: true}) // readAhead copies the fields
	var fe *dataset.FileError
	switch {
	case errors.As(err, &fe):
		in.Reason = fe.Reason
		return w.finish(ctx, d, in, []dataset.Rejected{{Line: 1, Reason: fe.Reason}}, e.CorrelationID)
	case err != nil:
		return fmt.Errorf("read %s: %w", e.Name, err)
	}
	in.IgnoredColumns = r.Ignored()
	return w.stage(ctx, d, in, r, stats.Needed(d), e.CorrelationID)
}

// HandleCorrection stages one stored correction as a row.
func (w *Worker) HandleCorrection(ctx context.Context, e *events.CorrectionSubmitted) error {
	c, err := w.reg.Correction(ctx, e.Dataset, e.CorrectionID)
	if registry.IsNotFound(err) {
		return bus.Permanent(fmt.Errorf("correction %s/%s not in the store", e.Dataset, e.CorrectionID))
	}
	if err != nil {
		return err
	}
	return w.stageCorrection(ctx, c, e.CorrelationID)
}

func (w *Worker) stageCorrection(ctx context.Context, c registry.Correction, correlation string) error {
	d, ok := w.datasets.Get(c.Dataset)
	if !ok {
		return bus.Permanent(fmt.Errorf("correction %s: unknown dataset %q", c.ID, c.Dataset))
	}
	src := registry.Source{Kind: registry.SourceCorrection, CorrectionID: c.ID}
	in := registry.Ingest{ID: registry.IngestID(src.Key()), Dataset: d.Name, Source: src, SourceTime: c.ReceivedAt}
	if done, err := w.alreadyStaged(ctx, in, correlation); done || err != nil {
		return err
	}
	return w.stage(ctx, d, in, &correctionRows{d: d, c: c}, false, correlation) // one row: cheap to sum where it is needed
}

func (w *Worker) alreadyStaged(ctx context.Context, in registry.Ingest, correlation string) (bool, error) {
	done, err := w.reg.Ingest(ctx, in.Dataset, in.ID)
	if registry.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// Done before: repeat the event (a hint) in case the first one was lost.
	return true, w.announce(ctx, done, correlation)
}

// rowReader yields rows or rejections, then io.EOF.
type rowReader interface {
	Next() (dataset.Row, *dataset.Rejected, error)
}

// errNoRows aborts the chunk write when nothing was accepted.
var errNoRows = errors.New("no rows accepted")

func (w *Worker) stage(ctx context.Context, d *dataset.Definition, in registry.Ingest, rows rowReader, withStats bool, correlation string) error {
	var rejected []dataset.Rejected
	var st *model.Stats
	var noStats string
	chunk := fmt.Sprintf("staged/%s/%s.csv", d.Name, in.ID)
	hashList := in.Source.Kind == registry.SourceObject // a correction's one row is cheap to read
	_, err := w.bucket.Write(ctx, chunk, blob.CreateOnly, func(out io.Writer) error {
		in.Accepted, in.TestRows, in.Rejected, in.RejectedLines, rejected = 0, 0, 0, 0, nil // a retried write starts over
		in.ChunkHash, in.RowHashes, in.RowHashesSum = "", "", ""
		st, noStats = nil, ""
		chunkSum := sha256.New() // on the writer's goroutine, with the bytes
		cw := startChunkWriter(io.MultiWriter(out, chunkSum))
		closed := false
		defer func() {
			if !closed {
				_ = cw.close()
			}
		}()
		var hl *rowHashList
		if hashList {
			hl = startRowHashList(ctx, w.bucket, strings.TrimSuffix(chunk, ".csv")+".rowhashes")
		}
		defer func() {
			if hl != nil {
				hl.abandon()
			}
		}()
		enc := d.NewStagedEncoder(in.Source.Key())
		next, stop := readAhead(ctx, rows)
		defer stop()
		var cs *chunkStats
		if withStats {
			cs = newChunkStats(d)
		}
		buf := append(cw.buffer(), d.HeaderRecord()...)
		for {
			batch, err := next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			for _, p := range batch {
				if p.rej != nil {
					in.Rejected++
					in.RejectedLines += max(p.rej.Lines, 1)
					if len(rejected) < w.maxRejected {
						rejected = append(rejected, *p.rej)
					}
					continue
				}
				h, test, rec := enc.Encode(p.row)
				buf = append(buf, rec...)
				if hl != nil {
					hl.add(h)
				}
				if cs != nil {
					cs.add(p.row, h, test)
				}
				in.Accepted++
				if test {
					in.TestRows++
				}
			}
			if len(buf) >= 128<<10 {
				cw.write(buf)
				buf = cw.buffer()
			}
		}
		if in.Accepted == 0 {
			return errNoRows
		}
		if cs != nil {
			st, noStats = cs.finish()
		}
		cw.write(buf)
		closed = true
		if err := cw.close(); err != nil {
			return err
		}
		in.ChunkHash = hex.EncodeToString(chunkSum.Sum(nil))
		if hl != nil {
			sum, err := hl.finish()
			hl = nil
			if err != nil {
				w.log.Warn("row hash list not written; the version cut reads the chunk", "dataset", d.Name, "chunk", chunk, "err", err)
				return nil
			}
			in.RowHashes, in.RowHashesSum = strings.TrimSuffix(chunk, ".csv")+".rowhashes", sum
		}
		return nil
	})
	switch {
	case err == nil, errors.Is(err, blob.ErrExists):
		// ErrExists: an earlier attempt committed the same chunk (the output
		// is a function of the input).
		in.Chunk = chunk
		w.writeStats(ctx, d, in, st, noStats)
	case errors.Is(err, errNoRows):
		// The upload API refuses a header-only file; one dropped straight
		// into the bucket is recorded with the same reason.
		in.Reason = "no valid rows"
		if in.Rejected == 0 {
			in.Reason = "the file holds only a header line and no rows"
		}
	default:
		return fmt.Errorf("stage %s: %w", in.Source.Key(), err)
	}
	return w.finish(ctx, d, in, rejected, correlation)
}

// writeStats stores a chunk's statistics beside it when the chunk can be a
// version's rows blob as it is: a version cut takes a chunk alone only
// when it fills a batch by itself. They are a head start for the train
// worker, which computes any that are missing, so a failure is logged,
// not returned.
func (w *Worker) writeStats(ctx context.Context, d *dataset.Definition, in registry.Ingest, st *model.Stats, noStats string) {
	switch {
	case in.Accepted < d.BatchSize:
		return
	case st == nil:
		if noStats != "" {
			w.log.Info("no statistics computed while staging; the train worker computes them from the chunk",
				"dataset", d.Name, "chunk", in.Chunk, "reason", noStats)
		}
		return
	}
	if err := stats.WriteBlob(ctx, w.bucket, d, in.Chunk, st); err != nil {
		w.log.Warn("chunk statistics not written; the train worker computes them from the chunk", "dataset", d.Name, "chunk", in.Chunk, "err", err)
	}
}

// finish writes the quarantine report, records the ledger entry and
// announces the staged rows.
func (w *Worker) finish(ctx context.Context, d *dataset.Definition, in registry.Ingest, rejected []dataset.Rejected, correlation string) error {
	if in.Reason != "" && in.Rejected == 0 {
		in.Rejected = len(rejected)
	}
	if len(rejected) > 0 {
		in.Quarantine = fmt.Sprintf("quarantine/%s/%s.csv", d.Name, in.ID)
		report, err := quarantineReport(in, rejected)
		if err != nil {
			return err
		}
		_, err = w.bucket.Write(ctx, in.Quarantine, blob.CreateOnly, func(out io.Writer) error {
			_, err := out.Write(report)
			return err
		})
		if err != nil && !errors.Is(err, blob.ErrExists) {
			return fmt.Errorf("quarantine %s: %w", in.Source.Key(), err)
		}
	}
	in.StagedAt = w.now()
	err := w.reg.RecordIngest(ctx, in)
	if registry.IsDuplicate(err) {
		// Another worker finished first; its entry is the same.
		if in, err = w.reg.Ingest(ctx, in.Dataset, in.ID); err != nil {
			return err
		}
		return w.announce(ctx, in, correlation)
	}
	if err != nil {
		return err
	}
	w.accepted.WithLabelValues(d.Name).Add(float64(in.Accepted))
	w.rejected.WithLabelValues(d.Name).Add(float64(in.Rejected))
	w.log.Info("staged", "dataset", d.Name, "source", in.Source.Key(), "accepted", in.Accepted,
		"rejected", in.Rejected, "reason", in.Reason, "correlation_id", correlation)
	return w.announce(ctx, in, correlation)
}

func quarantineReport(in registry.Ingest, rejected []dataset.Rejected) ([]byte, error) {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	_ = cw.Write([]string{"line", "reason", "record"})
	for _, r := range rejected {
		_ = cw.Write([]string{strconv.Itoa(r.Line), r.Reason, r.Record})
	}
	if more := in.Rejected - len(rejected); more > 0 {
		_ = cw.Write([]string{"", fmt.Sprintf("%d more rejected rows not listed", more), ""})
	}
	cw.Flush()
	return buf.Bytes(), cw.Error()
}

func (w *Worker) announce(ctx context.Context, in registry.Ingest, correlation string) error {
	if correlation == "" {
		correlation = in.Source.Key()
	}
	return w.pub.Publish(ctx, &events.RowsStaged{
		Meta:     events.Meta{ID: "rows.staged/" + in.Dataset + "/" + in.ID, Dataset: in.Dataset, Time: w.now(), CorrelationID: correlation},
		IngestID: in.ID, Source: in.Source.Key(), Accepted: in.Accepted, Rejected: in.Rejected,
	})
}

// correctionRows validates a correction exactly like a CSV row.
type correctionRows struct {
	d    *dataset.Definition
	c    registry.Correction
	done bool
}

func (cr *correctionRows) Next() (dataset.Row, *dataset.Rejected, error) {
	if cr.done {
		return dataset.Row{}, nil, io.EOF
	}
	cr.done = true
	row, err := cr.d.RowFromFields(cr.c.Fields, cr.c.Label)
	if err != nil {
		return dataset.Row{}, &dataset.Rejected{Line: 1, Reason: err.Error()}, nil
	}
	return row, nil, nil
}
