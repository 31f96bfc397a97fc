package preprocess

import (
	"strings"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
)

// chunkStats computes a staged chunk's sufficient statistics (model.Stats)
// from the rows staging has just validated and encoded, on a goroutine of
// its own, so that the train worker finds them beside the chunk when the
// version cut takes the chunk as its rows blob, instead of reading the
// chunk back and parsing it again.
//
// They are ComputeStats of the chunk's bytes bit for bit: the same rows in
// the same order, and every value the statistics read is what the staged
// reader gives back. A number is written in its shortest form, which
// parses to the same float64; a string goes back unchanged, except that
// CSV turns a CR LF inside a quoted field into LF, so a chunk with a CR in
// a string value computes none (the train worker reads that one).
type chunkStats struct {
	batches chan *batch
	done    chan struct{}
	release func(*batch)
	sb      *model.StatsBuilder
	text    []int // fields holding strings
	st      *model.Stats
	err     error // the first row the builder refused
	skipped bool  // a CR in a string
}

// startChunkStats starts summing batches given to add; each is released
// once summed.
func startChunkStats(d *dataset.Definition, release func(*batch)) (*chunkStats, error) {
	sb, err := model.NewStatsBuilder(d)
	if err != nil {
		return nil, err
	}
	cs := &chunkStats{batches: make(chan *batch, 2), done: make(chan struct{}), release: release, sb: sb}
	for i, c := range d.Kept() {
		if !dataset.IsNumeric(c) {
			cs.text = append(cs.text, i)
		}
	}
	go cs.run()
	return cs, nil
}

func (cs *chunkStats) run() {
	defer close(cs.done)
	for b := range cs.batches {
		if cs.err == nil && !cs.skipped {
			cs.sum(b)
		}
		cs.release(b)
	}
	if cs.err == nil && !cs.skipped {
		cs.st = cs.sb.Stats()
	}
}

func (cs *chunkStats) sum(b *batch) {
	for i := range b.rows {
		p := &b.rows[i]
		if p.rej != nil {
			continue
		}
		for _, f := range cs.text {
			if strings.IndexByte(p.row.Fields[f].Str, '\r') >= 0 {
				cs.skipped = true
				return
			}
		}
		if err := cs.sb.Add(dataset.StagedRow{Row: p.row, Hash: p.hash, Test: p.test}); err != nil {
			cs.err = err
			return
		}
	}
}

// add hands over an encoded batch (its rows' hash and split set).
func (cs *chunkStats) add(b *batch) { cs.batches <- b }

// finish waits for the batches given and returns the statistics, or nil
// with the reason they were not computed (a CR in a string, or the error
// of a row the statistics refuse, which the train worker will report
// from the chunk).
func (cs *chunkStats) finish() (*model.Stats, string) {
	close(cs.batches)
	<-cs.done
	switch {
	case cs.skipped:
		return nil, "a string value holds a carriage return"
	case cs.err != nil:
		return nil, cs.err.Error()
	}
	return cs.st, ""
}
