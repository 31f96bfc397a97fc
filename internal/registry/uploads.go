package registry

import "context"

// Upload statuses: what became of a source.
const (
	UploadAccepted  = "accepted"  // some rows accepted (others may be rejected or duplicates)
	UploadRejected  = "rejected"  // no row accepted: the file or every row was invalid
	UploadDuplicate = "duplicate" // every valid row was in the dataset already (known once versioned)
	UploadPending   = "pending"   // stored, not ingested yet
)

// Upload is an ingest ledger entry joined with what the version cut made
// of it.
type Upload struct {
	Ingest
	// Duplicate rows were in the dataset already (0 until versioned).
	Duplicate int    `json:"duplicate"`
	Status    string `json:"status"`
	// FirstVersion is the first version holding the source's rows; 0 while
	// they wait for a version.
	FirstVersion int `json:"first_version,omitempty"`
	// DuplicateOf is set when every row of the source was in that version
	// already: no version was cut for them (FirstVersion is that version).
	DuplicateOf int `json:"duplicate_of,omitempty"`
}

// Uploads joins a dataset's ingest ledger (in ID order) with its versions
// in one pass, and returns the versions it read (oldest first).
func (r *Registry) Uploads(ctx context.Context, ds string) ([]Upload, []Version, error) {
	versions, err := r.Versions(ctx, ds)
	if err != nil {
		return nil, nil, err
	}
	ingests, err := r.Ingests(ctx, ds)
	if err != nil {
		return nil, nil, err
	}
	type share struct {
		version int
		VersionSource
	}
	first := map[string]share{}
	for _, v := range versions {
		for _, src := range v.Sources {
			if _, ok := first[src.IngestID]; !ok {
				first[src.IngestID] = share{v.Number, src}
			}
		}
	}
	dups, err := r.DuplicateBatches(ctx, ds)
	if err != nil {
		return nil, nil, err
	}
	duplicateOf := map[string]int{}
	for _, b := range dups {
		for _, src := range b.Sources {
			if _, ok := first[src.IngestID]; !ok {
				first[src.IngestID], duplicateOf[src.IngestID] = share{b.Of, src}, b.Of
			}
		}
	}
	out := make([]Upload, 0, len(ingests))
	for _, in := range ingests {
		sh, versioned := first[in.ID]
		u := Upload{Ingest: in, Duplicate: sh.Duplicate, FirstVersion: sh.version, DuplicateOf: duplicateOf[in.ID], Status: UploadAccepted}
		// Duplicates are found when a version is cut.
		switch {
		case in.Reason != "" || in.Accepted == 0:
			u.Status = UploadRejected
		case versioned && sh.Rows == 0:
			u.Status = UploadDuplicate
		}
		out = append(out, u)
	}
	return out, versions, nil
}
