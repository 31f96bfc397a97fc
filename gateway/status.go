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
	uploads, versions, err := reg.Uploads(ctx, d.Name)
	if err != nil {
		return st, err
	}
	for _, v := range versions {
		st.Versions = append(st.Versions, versionSummary{Number: v.Number, Rows: v.Rows, NewRows: v.NewRows,
			TrainRows: v.TrainRows, TestRows: v.TestRows, Hash: v.Hash, Sources: len(v.Sources), CreatedAt: v.CreatedAt})
		st.Rows.Duplicate += v.Duplicate
	}
	st.Uploads = uploads
	for _, u := range uploads {
		st.Rows.Accepted += u.Accepted - u.Duplicate // rows the dataset gained
		if u.DuplicateOf != 0 {
			st.Rows.Duplicate += u.Duplicate // a batch of duplicates cuts no version
		}
		st.Rows.Rejected += u.Rejected
		st.Rows.Sources++
		if u.FirstVersion == 0 {
			st.StagedRows += u.Accepted
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

// Upload is an ingest with what the version cut made of it.
type Upload = registry.Upload
