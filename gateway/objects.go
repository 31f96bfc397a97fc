package gateway

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/registry"
)

// Ingest statuses of an uploaded generation.
const (
	ingestAccepted  = "accepted"  // some rows accepted (others may be rejected or duplicates)
	ingestRejected  = "rejected"  // no row accepted: the file or every row was invalid
	ingestDuplicate = "duplicate" // every valid row was in the dataset already (known once versioned)
	ingestPending   = "pending"   // stored, not ingested yet
)

type objectGeneration struct {
	Generation int64      `json:"generation"`
	Current    bool       `json:"current"` // the object's content now
	Status     string     `json:"status"`
	Reason     string     `json:"reason,omitempty"`
	IngestID   string     `json:"ingest_id,omitempty"`
	Accepted   int        `json:"accepted"`
	Rejected   int        `json:"rejected"`
	Duplicate  int        `json:"duplicate"`
	Quarantine string     `json:"quarantine,omitempty"`
	StagedAt   *time.Time `json:"staged_at,omitempty"`
	// FirstVersion is the first version holding the rows; null if none yet.
	FirstVersion *int `json:"first_version"`
	// DuplicateOf is set when every row was in that version already: no
	// version was cut for them (FirstVersion is that version too).
	DuplicateOf *int `json:"duplicate_of,omitempty"`
}

type objectHistory struct {
	Dataset     string             `json:"dataset"`
	Bucket      string             `json:"bucket"`
	Object      string             `json:"object"`
	Generations []objectGeneration `json:"generations"`
}

// handleObject tells what became of an uploaded file: each generation's
// ingest, its quarantine report, and the first version with its rows.
func (s *Server) handleObject() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := s.dataset(w, r)
		if !ok {
			return
		}
		prefix := events.IncomingPrefix + d.Name + "/"
		name := r.PathValue("name")
		if err := checkObjectName(name); err != nil {
			s.fail(w, r, err)
			return
		}
		if !strings.HasPrefix(name, events.IncomingPrefix) {
			name = prefix + name
		}
		if !strings.HasPrefix(name, prefix) || name == prefix {
			s.fail(w, r, badRequest("name", "object %q is not an upload of %s (want a file name, or %s<file>)", name, d.Name, prefix))
			return
		}
		h, err := s.objectHistory(r, d.Name, name)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, h)
	})
}

// checkObjectName refuses, with the rule, a name no bucket holds an upload
// under: the bucket would refuse it too, which used to surface as a 500.
func checkObjectName(name string) error {
	refuse := func(rule string) error {
		return badRequest("name", "object name %q: %s", name, rule)
	}
	switch {
	case name == "":
		return refuse("empty")
	case len(name) > 1024:
		return refuse("longer than 1024 bytes")
	case !utf8.ValidString(name):
		return refuse("not valid UTF-8")
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return refuse("holds a control character (NUL included)")
	case strings.Contains(name, `\`):
		return refuse("holds a backslash")
	}
	for seg := range strings.SplitSeq(name, "/") {
		switch {
		case seg == "":
			return refuse("has an empty path segment (a leading, trailing or doubled /)")
		case seg == "." || seg == "..":
			return refuse("has a . or .. segment")
		case strings.HasPrefix(seg, "."):
			return refuse("has a segment starting with a dot (reserved for temporary files)")
		}
	}
	return nil
}

func (s *Server) objectHistory(r *http.Request, ds, name string) (objectHistory, error) {
	ctx := r.Context()
	h := objectHistory{Dataset: ds, Bucket: s.bucket.Name(), Object: name, Generations: []objectGeneration{}}
	current, err := s.bucket.Stat(ctx, name)
	exists := err == nil
	if err != nil && !errors.Is(err, blob.ErrNotExist) {
		return h, err
	}
	ingests, err := s.reg.Ingests(ctx, ds)
	if err != nil {
		return h, err
	}
	versions, err := s.reg.Versions(ctx, ds)
	if err != nil {
		return h, err
	}
	firstVersion := map[string]int{}
	share := map[string]registry.VersionSource{}
	for _, v := range versions {
		for _, src := range v.Sources {
			if _, ok := firstVersion[src.IngestID]; !ok {
				firstVersion[src.IngestID] = v.Number
				share[src.IngestID] = src
			}
		}
	}
	dups, err := s.reg.DuplicateBatches(ctx, ds)
	if err != nil {
		return h, err
	}
	duplicateOf := map[string]int{}
	for _, b := range dups {
		for _, src := range b.Sources {
			duplicateOf[src.IngestID], share[src.IngestID] = b.Of, src
		}
	}
	ingests = slices.DeleteFunc(ingests, func(in registry.Ingest) bool {
		return in.Source.Kind != registry.SourceObject || in.Source.Object != name
	})
	slices.SortFunc(ingests, func(a, b registry.Ingest) int {
		return cmp.Or(a.SourceTime.Compare(b.SourceTime), cmp.Compare(a.Source.Generation, b.Source.Generation))
	})
	ingested := false
	for _, in := range ingests {
		src, versioned := share[in.ID]
		g := objectGeneration{Generation: in.Source.Generation, Current: exists && in.Source.Generation == current.Generation,
			Status: ingestStatus(in, src, versioned), Reason: in.Reason, IngestID: in.ID, Accepted: in.Accepted, Rejected: in.Rejected,
			Duplicate: src.Duplicate, Quarantine: in.Quarantine, StagedAt: &in.StagedAt}
		if n, ok := firstVersion[in.ID]; ok {
			g.FirstVersion = &n
		}
		if n, ok := duplicateOf[in.ID]; ok {
			g.FirstVersion, g.DuplicateOf = &n, &n
		}
		ingested = ingested || g.Current
		h.Generations = append(h.Generations, g)
	}
	if exists && !ingested {
		h.Generations = append(h.Generations, objectGeneration{Generation: current.Generation, Current: true, Status: ingestPending})
	}
	if len(h.Generations) == 0 {
		return h, errorf(http.StatusNotFound, "no upload %q in dataset %q", name, ds)
	}
	return h, nil
}

// ingestStatus judges a generation by its ingest and, once versioned, its
// share of the version (duplicates are found when a version is cut).
func ingestStatus(in registry.Ingest, share registry.VersionSource, versioned bool) string {
	switch {
	case in.Reason != "" || in.Accepted == 0:
		return ingestRejected
	case versioned && share.Rows == 0:
		return ingestDuplicate
	default:
		return ingestAccepted
	}
}
