package registry

import (
	"context"
	"fmt"
	"time"
)

// LineageVersion is one link of a version's parent chain.
type LineageVersion struct {
	Number     int       `json:"number"`
	Hash       string    `json:"hash"`
	ParentHash string    `json:"parent_hash,omitempty"`
	Rows       int       `json:"rows"`
	NewRows    int       `json:"new_rows"`
	CreatedAt  time.Time `json:"created_at"`
}

// LineageSource is one source whose rows a version holds.
type LineageSource struct {
	// Version is the first version that took the source's rows.
	Version  int    `json:"version"`
	IngestID string `json:"ingest_id"`
	Source
	Rows int `json:"rows"`
}

// Lineage is what a dataset version is made of: its parent chain and every
// source (uploaded object generation or correction) in it, with rows per
// source. The rows of the sources add up to the version's rows.
type Lineage struct {
	Dataset   string `json:"dataset"`
	Version   int    `json:"version"`
	Hash      string `json:"hash"`
	Rows      int    `json:"rows"`
	TrainRows int    `json:"train_rows"`
	TestRows  int    `json:"test_rows"`
	// Chain is the version, then its parent, back to version 1.
	Chain []LineageVersion `json:"chain"`
	// Sources are the chain's sources, oldest version first.
	Sources     []LineageSource `json:"sources"`
	Corrections []string        `json:"corrections"`
}

// Lineage describes version n of ds (store.ErrNotFound if absent).
func (r *Registry) Lineage(ctx context.Context, ds string, n int) (Lineage, error) {
	versions, err := r.Versions(ctx, ds)
	if err != nil {
		return Lineage{}, err
	}
	byNumber := make(map[int]Version, len(versions))
	for _, v := range versions {
		byNumber[v.Number] = v
	}
	v, err := r.Version(ctx, ds, n)
	if err != nil {
		return Lineage{}, err
	}
	byNumber[v.Number] = v // cut after the listing, perhaps
	l := Lineage{Dataset: ds, Version: v.Number, Hash: v.Hash, Rows: v.Rows, TrainRows: v.TrainRows, TestRows: v.TestRows,
		Sources: []LineageSource{}, Corrections: []string{}}
	for cur := v; ; {
		l.Chain = append(l.Chain, LineageVersion{Number: cur.Number, Hash: cur.Hash, ParentHash: cur.ParentHash,
			Rows: cur.Rows, NewRows: cur.NewRows, CreatedAt: cur.CreatedAt})
		if cur.Parent == 0 {
			break
		}
		parent, ok := byNumber[cur.Parent]
		if !ok {
			return Lineage{}, fmt.Errorf("lineage of %s/v%d: parent v%d of v%d is missing", ds, n, cur.Parent, cur.Number)
		}
		cur = parent
	}
	for i := len(l.Chain) - 1; i >= 0; i-- {
		link := byNumber[l.Chain[i].Number]
		for _, s := range link.Sources {
			l.Sources = append(l.Sources, LineageSource{Version: link.Number, IngestID: s.IngestID, Source: s.Source, Rows: s.Rows})
			if s.Source.Kind == SourceCorrection {
				l.Corrections = append(l.Corrections, s.Source.CorrectionID)
			}
		}
	}
	return l, nil
}
