// Package version cuts immutable, content-addressed dataset versions from
// staged rows.
//
// Staged sources are taken in the order of their upload (or correction)
// time; a version is cut each time the sources not yet in a version reach
// the dataset's batch size, so the versions depend on the data, not on when
// this worker happened to run. Version numbers are claimed by insert: when
// two workers race, one inserts version N and the other starts over.
package version

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers"
)

// Worker is the version worker.
type Worker struct {
	datasets workers.Datasets
	bucket   blob.Bucket
	reg      *registry.Registry
	pub      workers.Publisher
	log      *slog.Logger
	now      func() time.Time

	// locks serialises cuts of one dataset in this process: an event and
	// the reconcile loop would otherwise build the same version twice
	// (safe, the loser's insert fails, but twice the work).
	mu    sync.Mutex
	locks map[string]*sync.Mutex

	versions      *prometheus.CounterVec
	duplicateRows *prometheus.CounterVec
	latest        *prometheus.GaugeVec
	stagedRows    *prometheus.GaugeVec
}

// New builds the worker.
func New(cfg workers.Deps) (*Worker, error) {
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("version: %w", err)
	}
	w := &Worker{
		datasets: cfg.Datasets, bucket: cfg.Bucket, reg: cfg.Registry, pub: cfg.Publisher,
		log: cfg.Logger.With("component", "version"), now: cfg.Now(),
		versions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refit_dataset_versions_total", Help: "Dataset versions cut by this process.",
		}, []string{"dataset"}),
		duplicateRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refit_rows_duplicate_total", Help: "Rows dropped when a version was cut, as already in the dataset.",
		}, []string{"dataset"}),
		latest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refit_dataset_latest_version", Help: "Number of the newest dataset version.",
		}, []string{"dataset"}),
		stagedRows: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refit_staged_rows_waiting", Help: "Staged rows not yet in a version.",
		}, []string{"dataset"}),
	}
	cfg.Metrics.MustRegister(w.versions, w.duplicateRows, w.latest, w.stagedRows)
	return w, nil
}

// HandleRowsStaged cuts every version the staged rows now allow.
func (w *Worker) HandleRowsStaged(ctx context.Context, e *events.RowsStaged) error {
	// A redelivery of a source already in a version brings nothing new, and
	// checking that reads the versions, not the whole ledger.
	versions, err := w.reg.Versions(ctx, e.Dataset)
	if err != nil {
		return err
	}
	for _, v := range versions {
		for _, src := range v.Sources {
			if src.IngestID == e.IngestID {
				return nil
			}
		}
	}
	dups, err := w.reg.DuplicateBatches(ctx, e.Dataset)
	if err != nil {
		return err
	}
	for _, b := range dups {
		for _, src := range b.Sources {
			if src.IngestID == e.IngestID {
				return nil
			}
		}
	}
	return w.Cut(ctx, e.Dataset, e.CorrelationID)
}

// Reconcile cuts versions whose event was lost, and re-announces the latest
// version of each dataset (a hint; training is idempotent).
func (w *Worker) Reconcile(ctx context.Context) error {
	var errs []error
	for _, name := range w.datasets.Names() {
		if err := w.Cut(ctx, name, ""); err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Cut cuts versions until the rows waiting are fewer than a batch.
func (w *Worker) Cut(ctx context.Context, name, correlation string) error {
	d, ok := w.datasets.Get(name)
	if !ok {
		return bus.Permanent(fmt.Errorf("unknown dataset %q", name))
	}
	lock := w.lock(name)
	lock.Lock()
	defer lock.Unlock()
	for {
		cut, err := w.cutOne(ctx, d, correlation)
		if err != nil || !cut {
			return err
		}
	}
}

func (w *Worker) lock(dataset string) *sync.Mutex {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.locks == nil {
		w.locks = map[string]*sync.Mutex{}
	}
	l, ok := w.locks[dataset]
	if !ok {
		l = &sync.Mutex{}
		w.locks[dataset] = l
	}
	return l
}

// cutOne cuts the next version if a batch is waiting. It reports whether
// there may be more to do (a version was cut, or a racing worker cut it).
func (w *Worker) cutOne(ctx context.Context, d *dataset.Definition, correlation string) (bool, error) {
	versions, err := w.reg.Versions(ctx, d.Name)
	if err != nil {
		return false, err
	}
	ledger, err := w.reg.Ingests(ctx, d.Name)
	if err != nil {
		return false, err
	}
	dups, err := w.reg.DuplicateBatches(ctx, d.Name)
	if err != nil {
		return false, err
	}
	var parent registry.Version
	included := map[string]bool{}
	for _, v := range versions {
		for _, s := range v.Sources {
			included[s.IngestID] = true
		}
		parent = v
	}
	// A batch that added no row took its sources all the same.
	for _, b := range dups {
		for _, s := range b.Sources {
			included[s.IngestID] = true
		}
	}
	pending := slices.DeleteFunc(slices.Clone(ledger), func(in registry.Ingest) bool { return in.Accepted == 0 || included[in.ID] })
	slices.SortFunc(pending, func(a, b registry.Ingest) int {
		if c := a.SourceTime.Compare(b.SourceTime); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	waiting := 0
	for _, in := range pending {
		waiting += in.Accepted
	}
	w.stagedRows.WithLabelValues(d.Name).Set(float64(waiting))
	w.latest.WithLabelValues(d.Name).Set(float64(parent.Number))
	if waiting < d.BatchSize {
		return false, nil // most events: no batch yet, and the watermark could only shorten one
	}
	mark, err := w.watermark(ctx, d, ledger)
	if err != nil {
		return false, err
	}

	// The shortest prefix of the pending sources that fills a batch. It may
	// not reach past the watermark: a source uploaded earlier but not staged
	// yet belongs before whatever comes after it.
	rows, n := 0, 0
	for n < len(pending) && rows < d.BatchSize && (mark.IsZero() || pending[n].SourceTime.Before(mark)) {
		rows += pending[n].Accepted
		n++
	}
	if rows < d.BatchSize {
		return false, nil
	}
	batch := pending[:n]

	v, err := w.build(ctx, d, parent, batch)
	if err != nil {
		return false, err
	}
	if v.NewRows == 0 {
		return true, w.settleDuplicates(ctx, v, correlation)
	}
	w.announceBlob(ctx, v, correlation) // statistics: see stats.go
	err = w.reg.AddVersion(ctx, v)
	if registry.IsDuplicate(err) {
		w.log.Info("version cut by another worker", "dataset", d.Name, "version", v.Number)
		return true, nil
	}
	if err != nil {
		return false, err
	}
	w.versions.WithLabelValues(d.Name).Inc()
	w.duplicateRows.WithLabelValues(d.Name).Add(float64(v.Duplicate))
	w.latest.WithLabelValues(d.Name).Set(float64(v.Number))
	w.stagedRows.WithLabelValues(d.Name).Set(float64(waiting - v.NewRows))
	w.log.Info("version cut", "dataset", d.Name, "version", v.Number, "rows", v.Rows, "new_rows", v.NewRows, "duplicate", v.Duplicate,
		"sources", len(v.Sources), "hash", v.Hash, "correlation_id", correlation)
	if correlation == "" {
		correlation = fmt.Sprintf("%s/v%d", d.Name, v.Number)
	}
	return true, w.pub.Publish(ctx, &events.DatasetVersioned{
		Meta:    events.Meta{ID: fmt.Sprintf("%s/v%d", d.Name, v.Number), Dataset: d.Name, Time: v.CreatedAt, CorrelationID: correlation},
		Version: v.Number, Hash: v.Hash, Parent: v.Parent, Rows: v.Rows, TrainRows: v.TrainRows, TestRows: v.TestRows,
	})
}

// settleDuplicates records a batch whose rows were all in the parent
// version: no version is cut (it would hold the parent's content under a
// new number, and nothing would ever train it), and the sources say they
// are duplicates of the parent, so a client waiting on them returns.
func (w *Worker) settleDuplicates(ctx context.Context, v registry.Version, correlation string) error {
	ids := make([]string, len(v.Sources))
	for i, s := range v.Sources {
		ids[i] = s.IngestID
	}
	id := sha256.Sum256([]byte(v.ParentHash + "\n" + strings.Join(ids, "\n")))
	b := registry.DuplicateBatch{ID: hex.EncodeToString(id[:12]), Dataset: v.Dataset, Of: v.Parent, OfHash: v.ParentHash,
		Sources: v.Sources, Duplicate: v.Duplicate, CreatedAt: v.CreatedAt}
	err := w.reg.AddDuplicateBatch(ctx, b)
	if err != nil && !registry.IsDuplicate(err) {
		return err
	}
	w.duplicateRows.WithLabelValues(v.Dataset).Add(float64(b.Duplicate))
	w.log.Info("batch adds no rows: no version cut", "dataset", v.Dataset, "duplicate_of", b.Of, "duplicate", b.Duplicate,
		"sources", len(b.Sources), "correlation_id", correlation)
	return nil
}

// watermark is the time of the oldest source not yet staged: an upload in
// incoming/ or a stored correction without a ledger entry (zero if none).
// Cutting only before it makes the versions a function of the sources and
// their times, not of the order in which concurrent workers staged them.
func (w *Worker) watermark(ctx context.Context, d *dataset.Definition, ledger []registry.Ingest) (time.Time, error) {
	staged := make(map[string]bool, len(ledger))
	for _, in := range ledger {
		staged[in.ID] = true
	}
	var mark time.Time
	older := func(t time.Time) {
		if mark.IsZero() || t.Before(mark) {
			mark = t
		}
	}
	objects, err := w.bucket.List(ctx, events.IncomingPrefix+d.Name+"/")
	if err != nil {
		return mark, err
	}
	for _, o := range objects {
		src := registry.Source{Kind: registry.SourceObject, Bucket: w.bucket.Name(), Object: o.Name, Generation: o.Generation}
		if !staged[registry.IngestID(src.Key())] {
			older(o.Updated)
		}
	}
	corrections, err := w.reg.Corrections(ctx, d.Name)
	if err != nil {
		return mark, err
	}
	for _, c := range corrections {
		src := registry.Source{Kind: registry.SourceCorrection, CorrectionID: c.ID}
		if !staged[registry.IngestID(src.Key())] {
			older(c.ReceivedAt)
		}
	}
	return mark, nil
}

// build describes the version and makes sure its new rows are one blob. A
// row already in the parent version, or earlier in the batch (in source
// order, then file order), is a duplicate and is dropped here: this worker
// is the one place that sees every source in order, so deduplication costs
// no per-row record in the store, and its result depends only on the
// sources. Each rows blob has a sorted index of its row hashes beside it
// (rowIndexName) that later cuts check against.
//
// The chunks are read once to find the duplicates. A batch of one chunk
// with none (an upload, most of the time) takes the chunk itself as its
// rows blob: it is immutable, in the same format, and holds exactly the
// new rows, so copying it would only write the same bytes again. Otherwise
// the rows taken are copied into a new blob, named by its inputs.
func (w *Worker) build(ctx context.Context, d *dataset.Definition, parent registry.Version, batch []registry.Ingest) (registry.Version, error) {
	ids := make([]string, len(batch))
	v := registry.Version{
		Dataset: d.Name, Number: parent.Number + 1, Parent: parent.Number, ParentHash: parent.Hash,
		Rows: parent.Rows, TrainRows: parent.TrainRows, TestRows: parent.TestRows,
		Blobs: slices.Clone(parent.Blobs), CreatedAt: w.now(),
	}
	if len(parent.BlobHashes) == len(parent.Blobs) { // else cut before they were recorded
		v.BlobRows, v.BlobHashes = slices.Clone(parent.BlobRows), slices.Clone(parent.BlobHashes)
	}
	for i, in := range batch {
		ids[i] = in.ID
	}
	for _, m := range d.Models {
		v.Specs = append(v.Specs, m.Hash())
	}
	scan, err := w.scan(ctx, d, parent, batch)
	if err != nil {
		return v, err
	}
	var (
		name        string
		contentHash string
		taken       batchRows
	)
	if len(batch) == 1 && !scan.dup.any() {
		name, contentHash = batch[0].Chunk, scan.chunkHashes[0]
		taken = batchRows{sources: []registry.VersionSource{{IngestID: batch[0].ID, Source: batch[0].Source, Rows: scan.rows}},
			rows: scan.rows, test: scan.test}
	} else {
		name, contentHash, taken, err = w.copyRows(ctx, d, parent, batch, ids, scan.dup)
		if err != nil && !errors.Is(err, errNoNewRows) {
			return v, err
		}
	}
	v.Sources = taken.sources
	for _, src := range taken.sources {
		v.NewRows += src.Rows
		v.Duplicate += src.Duplicate
	}
	if taken.rows == 0 {
		// Every row was in the dataset already: no version (cutOne records
		// the batch as duplicates of the parent instead).
		v.Hash = parent.Hash
		return v, nil
	}
	v.Rows += v.NewRows
	v.TestRows += taken.test
	v.TrainRows = v.Rows - v.TestRows
	if err := w.writeRowIndex(ctx, rowIndexName(name), scan.newRows()); err != nil {
		return v, err
	}
	whole := sha256.Sum256([]byte(parent.Hash + ":" + contentHash))
	v.Hash = hex.EncodeToString(whole[:])
	v.Blobs = append(v.Blobs, name)
	if len(v.BlobHashes) == len(v.Blobs)-1 {
		v.BlobRows, v.BlobHashes = append(v.BlobRows, v.NewRows), append(v.BlobHashes, contentHash)
	}
	return v, nil
}

var errNoNewRows = errors.New("no new rows")

// copyRows writes the rows of the batch that are not duplicates into a new
// blob, and returns its name and its content hash. Named by its inputs, so
// a retry or a racing worker writes the same object. errNoNewRows: every
// row was a duplicate.
func (w *Worker) copyRows(ctx context.Context, d *dataset.Definition, parent registry.Version, batch []registry.Ingest, ids []string, dup bitset) (string, string, batchRows, error) {
	inputs := sha256.Sum256([]byte(parent.Hash + "\n" + strings.Join(ids, "\n")))
	name := fmt.Sprintf("datasets/%s/rows/%s.csv", d.Name, hex.EncodeToString(inputs[:12]))
	var taken batchRows
	var contentHash string
	_, err := w.bucket.Write(ctx, name, blob.CreateOnly, func(out io.Writer) error {
		sum := sha256.New() // the content hash, without reading the blob back
		bw := bufio.NewWriterSize(io.MultiWriter(out, sum), 256<<10)
		if _, err := bw.Write(d.HeaderRecord()); err != nil {
			return err
		}
		var err error
		if taken, err = w.take(ctx, d, batch, dup, bw); err != nil {
			return err
		}
		if taken.rows == 0 {
			return errNoNewRows
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		contentHash = hex.EncodeToString(sum.Sum(nil))
		return nil
	})
	if errors.Is(err, blob.ErrExists) {
		// An earlier attempt wrote the same blob: count without writing.
		if taken, err = w.take(ctx, d, batch, dup, nil); err == nil {
			contentHash, err = w.hashBlob(ctx, name)
		}
	}
	switch {
	case errors.Is(err, errNoNewRows):
		return name, "", taken, err
	case err != nil:
		return name, "", taken, fmt.Errorf("write %s: %w", name, err)
	}
	return name, contentHash, taken, nil
}

// batchRows is what a batch adds to a version.
type batchRows struct {
	sources []registry.VersionSource
	rows    int // rows taken
	test    int // of which in the test split
}

// take reads the batch's chunks in order and copies the rows that are not
// duplicates to out (when not nil).
func (w *Worker) take(ctx context.Context, d *dataset.Definition, batch []registry.Ingest, dup bitset, out io.Writer) (batchRows, error) {
	var b batchRows
	pos := 0
	for _, in := range batch {
		src := registry.VersionSource{IngestID: in.ID, Source: in.Source}
		err := w.eachRecord(ctx, d, in.Chunk, func(rec []byte, h dataset.RowHash, test bool) error {
			defer func() { pos++ }()
			if dup.has(pos) {
				src.Duplicate++
				return nil
			}
			src.Rows++
			b.rows++
			if test {
				b.test++
			}
			if out == nil {
				return nil
			}
			_, err := out.Write(rec)
			return err
		})
		if err != nil {
			return b, err
		}
		b.sources = append(b.sources, src)
	}
	return b, nil
}

func (w *Worker) hashBlob(ctx context.Context, name string) (string, error) {
	rc, err := w.bucket.Open(ctx, name)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return "", fmt.Errorf("hash %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
