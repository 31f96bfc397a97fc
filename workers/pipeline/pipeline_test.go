package pipeline_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/gateway"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store"
	"github.com/refit-ml/refit/internal/synth"
)

func TestUploadBecomesAPromotedModel(t *testing.T) {
	p, _, _ := freshPipeline(t, 500)
	p.q.Publish(context.Background(), p.upload("a.csv", 1, 1200, 0))
	p.drain()
	s := p.state()
	require.Len(t, s.Versions, 1)
	require.Contains(t, s.Versions[0], " 1200")
	require.Len(t, s.Runs, 2, "one run per model spec")
	require.Equal(t, 2, s.Decisions)
	champ, err := p.reg.LatestPromotion(context.Background(), "housing")
	require.NoError(t, err)
	require.Equal(t, "linear-onehot", champ.Spec, "one-hot city/zip must beat the hashed features of the stack Refit replaces")
	require.Equal(t, int64(1), champ.Sequence, "the hashed model, worse, must not be promoted after it")
}

func TestSameFileTwiceIngestsNothingNew(t *testing.T) {
	p, _, _ := freshPipeline(t, 500)
	first := p.upload("a.csv", 1, 700, 0)
	p.q.Publish(context.Background(), first)
	p.drain()
	before := p.state()

	// Same name, same bytes: same generation, same ingest.
	again := p.upload("a.csv", 1, 700, 0)
	require.Equal(t, first.ID, again.ID)
	p.q.Publish(context.Background(), again)
	p.drain()
	require.Equal(t, before, p.state())

	// Same bytes under another name: a new source whose rows are all
	// duplicates. No version is cut (it would have its parent's content
	// and never be trained); the batch is recorded as duplicates of v1,
	// and a reconcile pass does not take it again.
	copied := p.upload("copy.csv", 1, 700, 0)
	p.q.Publish(context.Background(), copied)
	p.drain()
	p.reconcile()
	after := p.state()
	require.Equal(t, before.Runs, after.Runs)
	require.Len(t, after.Ingests, 2)
	require.Contains(t, strings.Join(after.Ingests, "\n"), "copy.csv#")
	require.Equal(t, before.Versions, after.Versions, "a batch of duplicates must not become a version")
	dups, err := p.reg.DuplicateBatches(context.Background(), "housing")
	require.NoError(t, err)
	require.Len(t, dups, 1)
	require.Equal(t, 1, dups[0].Of)
	require.Equal(t, 700, dups[0].Duplicate)
	require.Len(t, dups[0].Sources, 1)
	require.Equal(t, copied.Name, dups[0].Sources[0].Source.Object)
	require.Equal(t, 0, dups[0].Sources[0].Rows)

	// The dataset holds 700 rows: accepted counts rows gained, not rows
	// that passed validation twice.
	st, err := gateway.Status(context.Background(), p.reg, p.def)
	require.NoError(t, err)
	require.Equal(t, 700, st.Rows.Accepted)
	require.Equal(t, 700, st.Rows.Duplicate)
	require.Equal(t, 0, st.StagedRows)
}

// scenario feeds the pipeline: uploads and corrections, each followed by
// whatever events it causes.
type action func(p *pipeline) events.Event

func scenario() []action {
	upload := func(name string, seed int64, rows int, bad float64) action {
		return func(p *pipeline) events.Event { return p.upload(name, seed, rows, bad) }
	}
	correction := func(id string, price string) action {
		return func(p *pipeline) events.Event {
			fields := map[string]string{"bedrooms": "3", "bathrooms": "2", "sqft_living": "1800", "sqft_lot": "5000", "floors": "1",
				"waterfront": "0", "view": "0", "condition": "3", "sqft_above": "1800", "sqft_basement": "0", "yr_built": "1990",
				"yr_renovated": "0", "street": "1 Main St", "city": "Seattle", "statezip": "WA 98103", "country": "USA"}
			return p.correction(id, fields, price, p.clock.Now())
		}
	}
	return []action{
		upload("a.csv", 1, 260, 0.05),
		upload("b.csv", 2, 130, 0),
		correction("c1", "612000"),
		upload("c.csv", 3, 300, 0.02),
		correction("c2", "498000"),
		upload("d.csv", 4, 150, 0),
	}
}

// play runs the actions in order, delivering every event right away.
func play(p *pipeline, acts []action) {
	for _, a := range acts {
		p.q.Publish(context.Background(), a(p))
		p.drain()
	}
}

func TestSameEventThreeTimesChangesNothing(t *testing.T) {
	base, _, _ := freshPipeline(t, 150)
	play(base, scenario())
	want := base.state()
	require.GreaterOrEqual(t, len(want.Versions), 3)

	p, _, _ := freshPipeline(t, 150)
	for _, a := range scenario() {
		p.q.Publish(context.Background(), a(p))
		for len(p.q.pending) > 0 {
			e := p.q.pending[0]
			p.q.pending = p.q.pending[1:]
			for range 3 {
				require.NoError(t, p.deliver(e))
			}
		}
	}
	require.Equal(t, want, p.state())
}

func TestEventsOutOfOrderMakeNoSecondVersionOrRun(t *testing.T) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			p, _, _ := freshPipeline(t, 150)
			for _, a := range scenario() {
				p.q.Publish(context.Background(), a(p))
			}
			// Deliver everything in a random order, some events twice.
			for len(p.q.pending) > 0 {
				shuffle(r, p.q.pending)
				e := p.q.pending[0]
				if r.IntN(4) == 0 {
					p.q.pending = append(p.q.pending, e)
				}
				p.q.pending = p.q.pending[1:]
				require.NoError(t, p.deliver(e))
			}
			s := p.state()
			checkConsistent(t, p, s)
		})
	}
}

// checkConsistent: every staged row is in exactly one version, each
// version is trained once per spec and decided once.
func checkConsistent(t *testing.T, p *pipeline, s state) {
	t.Helper()
	ctx := context.Background()
	versions, err := p.reg.Versions(ctx, "housing")
	require.NoError(t, err)
	seen := map[string]int{}
	total := 0
	for i, v := range versions {
		require.Equal(t, i+1, v.Number)
		for _, src := range v.Sources {
			seen[src.IngestID]++
			total += src.Rows
		}
		require.Equal(t, total, v.Rows)
	}
	for id, n := range seen {
		require.Equal(t, 1, n, "ingest %s in %d versions", id, n)
	}
	runs, err := p.reg.Runs(ctx, "housing")
	require.NoError(t, err)
	perVersion := map[string]int{}
	for _, r := range runs {
		perVersion[fmt.Sprintf("v%d/%s", r.Version, r.Spec)]++
	}
	for k, n := range perVersion {
		require.Equal(t, 1, n, "%s trained %d times", k, n)
	}
	require.Len(t, runs, 2*len(versions))
	require.Equal(t, len(runs), s.Decisions)
	require.NotEmpty(t, s.Champion)
}

func TestCrashBetweenAnyTwoStepsConverges(t *testing.T) {
	base, _, _ := freshPipeline(t, 150)
	play(base, scenario())
	want := base.state()

	// Count the deliveries of an uninterrupted run, then crash after each.
	counter, _, _ := freshPipeline(t, 150)
	total := 0
	for _, a := range scenario() {
		counter.q.Publish(context.Background(), a(counter))
		for counter.step(1) == 1 {
			total++
		}
	}
	for crashAt := 0; crashAt <= total; crashAt += 3 {
		t.Run(fmt.Sprint("after ", crashAt), func(t *testing.T) {
			p, bucket, docs := freshPipeline(t, 150)
			acts := scenario()
			delivered := 0
			crashed := false
			for i, a := range acts {
				p.q.Publish(context.Background(), a(p))
				for !crashed && p.step(1) == 1 {
					delivered++
					if delivered == crashAt {
						crashed = true
					}
				}
				if crashed {
					// Lost: every event in flight. Restart on the same storage.
					p = newPipeline(t, p.def, bucket, docs)
					p.reconcile()
					p.drain()
					play(p, acts[i+1:])
					break
				}
			}
			require.Equal(t, want, p.state())
		})
	}
}

// failingDocs fails every write after the first n, like a process dying
// in the middle of a handler.
type failingDocs struct {
	store.Docs
	left int
}

var errCrash = errors.New("crash")

func (f *failingDocs) tick() error {
	if f.left <= 0 {
		return errCrash
	}
	f.left--
	return nil
}

func (f *failingDocs) Insert(ctx context.Context, c, k string, b json.RawMessage) error {
	if err := f.tick(); err != nil {
		return err
	}
	return f.Docs.Insert(ctx, c, k, b)
}

func TestCrashInsideAHandlerConverges(t *testing.T) {
	base, _, _ := freshPipeline(t, 150)
	play(base, scenario())
	want := base.state()

	for writes := 1; writes < 60; writes += 4 {
		t.Run(fmt.Sprint("after ", writes, " writes"), func(t *testing.T) {
			p, bucket, docs := freshPipeline(t, 150)
			faulty := &failingDocs{Docs: docs, left: writes}
			p = newPipelineOn(t, p.def, bucket, docs, faulty)
			acts := scenario()
			for i, a := range acts {
				p.q.Publish(context.Background(), a(p))
				var err error
				for len(p.q.pending) > 0 && err == nil {
					e := p.q.pending[0]
					p.q.pending = p.q.pending[1:]
					err = p.deliver(e)
				}
				if err != nil {
					require.ErrorIs(t, err, errCrash)
					p = newPipeline(t, p.def, bucket, docs)
					p.reconcile()
					p.drain()
					play(p, acts[i+1:])
					break
				}
			}
			require.Equal(t, want, p.state())
		})
	}
}

func TestCorrectionsReachTheNextVersion(t *testing.T) {
	p, _, _ := freshPipeline(t, 150)
	play(p, scenario())
	ctx := context.Background()
	versions, err := p.reg.Versions(ctx, "housing")
	require.NoError(t, err)
	found := map[string]int{}
	for _, v := range versions {
		for _, s := range v.Sources {
			if s.Source.Kind == registry.SourceCorrection {
				found[s.Source.CorrectionID] = v.Number
			}
		}
	}
	require.Contains(t, found, "c1")
	require.Contains(t, found, "c2")
	in, err := p.reg.Ingest(ctx, "housing", registry.IngestID("correction/c1"))
	require.NoError(t, err)
	require.Equal(t, 1, in.Accepted)
}

func TestBadRowsQuarantinedGoodRowsArrive(t *testing.T) {
	p, _, _ := freshPipeline(t, 100)
	content := "date,price,bedrooms,bathrooms,sqft_living,sqft_lot,floors,waterfront,view,condition,sqft_above,sqft_basement,yr_built,yr_renovated,street,city,statezip,country\n" +
		"2014-05-02 00:00:00,313000,3,1.5,1340,7912,1.5,0,0,3,1340,0,1955,2005,18810 Densmore Ave N,Shoreline,WA 98133,USA\n" +
		"2014-05-02 00:00:00,0,3,1.5,1340,7912,1.5,0,0,3,1340,0,1955,2005,1 Zero St,Shoreline,WA 98133,USA\n" +
		"2014-05-02 00:00:00,2384000,three,2.5,3650,9050,2,0,4,5,3370,280,1921,0,709 W Blaine St,Seattle,WA 98119,USA\n" +
		"2014-05-02 00:00:00,342000,3,2,1930,11947,1,0,0,4,1930,0,1966,0,\"26206-26214 143rd Ave SE, Unit 2\",Kent,WA 98042,USA\n"
	p.q.Publish(context.Background(), p.put("mixed.csv", []byte(content)))
	p.drain()
	ingests, err := p.reg.Ingests(context.Background(), "housing")
	require.NoError(t, err)
	require.Len(t, ingests, 1)
	in := ingests[0]
	require.Equal(t, 2, in.Accepted)
	require.Equal(t, 2, in.Rejected)
	require.NotEmpty(t, in.Chunk)
	rc, err := p.bucket.Open(context.Background(), in.Quarantine)
	require.NoError(t, err)
	defer rc.Close()
	rows, err := csv.NewReader(rc).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"line", "reason", "record"}, rows[0])
	require.Equal(t, "3", rows[1][0])
	require.Contains(t, rows[1][1], "price")
	require.Equal(t, "4", rows[2][0])
	require.Contains(t, rows[2][1], "bedrooms")
}

func TestUnusableFileQuarantinedWhole(t *testing.T) {
	tests := []struct {
		name, content, reason string
	}{
		{"binary", "\x00\x01\x02PK\x03\x04", "binary"},
		{"empty", "", "empty"},
		{"no target", "bedrooms,bathrooms\n3,2\n", "price"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, _ := freshPipeline(t, 100)
			p.q.Publish(context.Background(), p.put(tt.name+".csv", []byte(tt.content)))
			p.drain()
			ingests, err := p.reg.Ingests(context.Background(), "housing")
			require.NoError(t, err)
			require.Len(t, ingests, 1)
			require.Contains(t, ingests[0].Reason, tt.reason)
			require.Empty(t, ingests[0].Chunk)
			rc, err := p.bucket.Open(context.Background(), ingests[0].Quarantine)
			require.NoError(t, err)
			b, _ := io.ReadAll(rc)
			rc.Close()
			require.Contains(t, string(b), tt.reason)
			versions, _ := p.reg.Versions(context.Background(), "housing")
			require.Empty(t, versions)
		})
	}
}

func TestObjectEventsThatAreNotUploadsAreIgnored(t *testing.T) {
	p, _, _ := freshPipeline(t, 100)
	outside := events.NewObjectFinalized("test-bucket", "models/housing/x.json", 1, 1, time.Now())
	deleted := p.upload("a.csv", 1, 50, 0)
	deleted.EventType = "OBJECT_DELETE"
	for _, e := range []events.Event{outside, deleted} {
		require.NoError(t, p.deliver(e))
	}
	require.Empty(t, p.state().Ingests)
}

// Rows repeated across sources are dropped when a version is cut: against
// earlier sources of the same batch and against the parent version.
func TestOverlappingFilesAreDeduplicatedAtTheCut(t *testing.T) {
	p, _, _ := freshPipeline(t, 500)
	ctx := context.Background()
	// The same generator seed gives the same houses, so b's first 400 rows
	// are a's 400 rows, and c's first 600 are the dataset's 600.
	a, b := p.upload("a.csv", 1, 400, 0), p.upload("b.csv", 1, 600, 0)
	p.q.Publish(ctx, b)
	p.q.Publish(ctx, a)
	p.drain()
	v1, err := p.reg.Version(ctx, "housing", 1)
	require.NoError(t, err)
	require.Equal(t, 600, v1.NewRows)
	require.Equal(t, 400, v1.Duplicate)
	require.Equal(t, 600, v1.Rows)
	require.Equal(t, v1.Rows, v1.TrainRows+v1.TestRows)

	p.q.Publish(ctx, p.upload("c.csv", 1, 700, 0))
	p.drain()
	v2, err := p.reg.Version(ctx, "housing", 2)
	require.NoError(t, err)
	require.Equal(t, 100, v2.NewRows)
	require.Equal(t, 600, v2.Duplicate)
	require.Equal(t, 700, v2.Rows)
	require.Len(t, v2.Sources, 1)
	require.Equal(t, 100, v2.Sources[0].Rows)

	// The version's rows are unique and are exactly 700 houses.
	seen := map[dataset.RowHash]bool{}
	scan := p.def.ScanBlobs(ctx, p.bucket, v2.Blobs, nil)
	require.NoError(t, scan(func(r dataset.StagedRow) error {
		require.False(t, seen[r.Hash], "row %s twice in version 2", r.Hash)
		seen[r.Hash] = true
		return nil
	}))
	require.Len(t, seen, 700)
}

// TestUnbalancedQuoteIsCountedAndLocated: a quote never closed swallows
// every line after it into one record; the ingest counts the record and the
// lines it took, and the quarantine report names the lines.
func TestUnbalancedQuoteIsCountedAndLocated(t *testing.T) {
	p, bucket, _ := freshPipeline(t, 500)
	var buf bytes.Buffer
	require.NoError(t, synth.Housing{Seed: 7}.Write(&buf, 100))
	lines := strings.SplitAfter(buf.String(), "\n")
	// Line 42 (a row) gets an opening quote in its street: lines 42..101
	// become one record.
	lines[41] = strings.Replace(lines[41], ",", `,"`, 5)
	p.q.Publish(context.Background(), p.put("quote.csv", []byte(strings.Join(lines, ""))))
	p.drain()
	ingests, err := p.reg.Ingests(context.Background(), "housing")
	require.NoError(t, err)
	require.Len(t, ingests, 1)
	in := ingests[0]
	require.Equal(t, 40, in.Accepted)
	require.Equal(t, 1, in.Rejected)
	require.Equal(t, 60, in.RejectedLines, "every line the record swallowed is counted")
	require.Equal(t, 101, 1+in.Accepted+in.RejectedLines, "header, accepted and rejected lines cover the file")
	rc, err := bucket.Open(context.Background(), in.Quarantine)
	require.NoError(t, err)
	defer rc.Close()
	recs, err := csv.NewReader(rc).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 2)
	require.Equal(t, "42", recs[1][0])
	require.Contains(t, recs[1][1], "lines 42-101")
}
