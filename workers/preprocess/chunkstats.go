package preprocess

import (
	"strings"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
)

// chunkStats computes a staged chunk's sufficient statistics (model.Stats)
// from the rows staging has just validated, each right after its record is
// encoded (its values are still in this core's cache), so that the train
// worker finds them beside the chunk when the version cut takes the chunk
// as its rows blob, instead of reading the chunk back and parsing it again.
//
// They are ComputeStats of the chunk's bytes bit for bit: the same rows in
// the same order, and every value the statistics read is what the staged
// reader gives back. A number is written in its shortest form, which
// parses to the same float64; a string goes back unchanged, except that
// CSV turns a CR LF inside a quoted field into LF, so a chunk with a CR in
// a string value computes none (the train worker reads that one).
type chunkStats struct {
	sb     *model.StatsBuilder
	text   []int  // fields holding strings
	reason string // why there are none, once known
}

func newChunkStats(d *dataset.Definition) *chunkStats {
	sb, err := model.NewStatsBuilder(d)
	if err != nil {
		return &chunkStats{reason: err.Error()} // the train worker reports it on the version
	}
	cs := &chunkStats{sb: sb}
	for i, c := range d.Kept() {
		if !dataset.IsNumeric(c) {
			cs.text = append(cs.text, i)
		}
	}
	return cs
}

// add sums one encoded row.
func (cs *chunkStats) add(r dataset.Row, h dataset.RowHash, test bool) {
	if cs.reason != "" {
		return
	}
	for _, f := range cs.text {
		if strings.IndexByte(r.Fields[f].Str, '\r') >= 0 {
			cs.reason = "a string value holds a carriage return"
			return
		}
	}
	if err := cs.sb.Add(dataset.StagedRow{Row: r, Hash: h, Test: test}); err != nil {
		cs.reason = err.Error() // the train worker reports it from the chunk
	}
}

// finish returns the statistics of the rows added, or nil and the reason
// there are none.
func (cs *chunkStats) finish() (*model.Stats, string) {
	if cs.reason != "" {
		return nil, cs.reason
	}
	return cs.sb.Stats(), ""
}
