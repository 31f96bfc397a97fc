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
	uploads, _, err := s.reg.Uploads(ctx, ds)
	if err != nil {
		return h, err
	}
	uploads = slices.DeleteFunc(uploads, func(u registry.Upload) bool {
		return u.Source.Kind != registry.SourceObject || u.Source.Object != name
	})
	slices.SortFunc(uploads, func(a, b registry.Upload) int {
		return cmp.Or(a.SourceTime.Compare(b.SourceTime), cmp.Compare(a.Source.Generation, b.Source.Generation))
	})
	ingested := false
	for _, in := range uploads {
		g := objectGeneration{Generation: in.Source.Generation, Current: exists && in.Source.Generation == current.Generation,
			Status: in.Status, Reason: in.Reason, IngestID: in.ID, Accepted: in.Accepted, Rejected: in.Rejected,
			Duplicate: in.Duplicate, Quarantine: in.Quarantine, StagedAt: &in.StagedAt}
		if in.FirstVersion != 0 {
			g.FirstVersion = &in.FirstVersion
		}
		if in.DuplicateOf != 0 {
			g.DuplicateOf = &in.DuplicateOf
		}
		ingested = ingested || g.Current
		h.Generations = append(h.Generations, g)
	}
	if exists && !ingested {
		h.Generations = append(h.Generations, objectGeneration{Generation: current.Generation, Current: true, Status: registry.UploadPending})
	}
	if len(h.Generations) == 0 {
		return h, errorf(http.StatusNotFound, "no upload %q in dataset %q", name, ds)
	}
	return h, nil
}
