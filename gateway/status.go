package gateway

import (
	"context"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
)

// Status summarises a dataset from the registry (the API and `refit
// status` both show it).
func Status(ctx context.Context, reg *registry.Registry, d *dataset.Definition) (DatasetStatus, error) {
	st := DatasetStatus{Name: d.Name, Description: d.Description, Target: d.Target.Name, BatchSize: d.BatchSize,
		TestFraction: d.TestFraction, Versions: []versionSummary{}, Columns: columnsOf(d)}
	for _, m := range d.Models {
		st.Models = append(st.Models, m.Name)
	}
	versions, err := reg.Versions(ctx, d.Name)
	if err != nil {
		return st, err
	}
	share := map[string]registry.VersionSource{}
	for _, v := range versions {
		st.Versions = append(st.Versions, versionSummary{Number: v.Number, Rows: v.Rows, NewRows: v.NewRows,
			TrainRows: v.TrainRows, TestRows: v.TestRows, Hash: v.Hash, Sources: len(v.Sources), CreatedAt: v.CreatedAt})
		for _, s := range v.Sources {
			if _, ok := share[s.IngestID]; !ok {
				share[s.IngestID] = s
			}
		}
		st.Rows.Duplicate += v.Duplicate
	}
	dups, err := reg.DuplicateBatches(ctx, d.Name)
	if err != nil {
		return st, err
	}
	for _, b := range dups {
		for _, s := range b.Sources {
			share[s.IngestID] = s
		}
		st.Rows.Duplicate += b.Duplicate
	}
	ingests, err := reg.Ingests(ctx, d.Name)
	if err != nil {
		return st, err
	}
	for _, in := range ingests {
		src, versioned := share[in.ID]
		st.Uploads = append(st.Uploads, Upload{Ingest: in, Duplicate: src.Duplicate, Status: ingestStatus(in, src, versioned)})
		st.Rows.Accepted += in.Accepted - src.Duplicate // rows the dataset gained
		st.Rows.Rejected += in.Rejected
		st.Rows.Sources++
		if !versioned {
			st.StagedRows += in.Accepted
		}
	}
	champ, err := reg.LatestPromotion(ctx, d.Name)
	switch {
	case err == nil:
		st.Champion = &champ
	case !registry.IsNotFound(err):
		return st, err
	}
	return st, nil
}

// Upload is an ingest ledger entry with what the version cut found.
type Upload struct {
	registry.Ingest
	// Duplicate rows were in the dataset already (0 until versioned).
	Duplicate int    `json:"duplicate"`
	Status    string `json:"status"`
}
