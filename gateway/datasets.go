package gateway

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
)

// dataset resolves {dataset} or answers 404.
func (s *Server) dataset(w http.ResponseWriter, r *http.Request) (*dataset.Definition, bool) {
	d, ok := s.datasets.Get(r.PathValue("dataset"))
	if !ok {
		s.fail(w, r, s.unknownDataset(r.PathValue("dataset")))
	}
	return d, ok
}

type correctionRequest struct {
	Instance     correctionInstance `json:"instance"`
	Label        any                `json:"label"`
	PredictionID string             `json:"prediction_id,omitempty"`
}

// correctionInstance is a correction's instance (nil values: none sent),
// with the keys whose strings encoding/json had to repair (invalid UTF-8
// or an unpaired surrogate, made U+FFFD): a text column refuses them, as
// the predict decoder does.
type correctionInstance struct {
	values   map[string]any
	repaired []string
}

func (c *correctionInstance) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&c.values); err != nil {
		return err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	for k, v := range raw {
		if len(v) == 0 || v[0] != '"' {
			continue
		}
		var s jsonScanner
		s.reset(v)
		tok, plain, err := s.str()
		if err != nil || plain {
			continue
		}
		if _, valid := appendUnquoted(nil, tok); !valid {
			c.repaired = append(c.repaired, k)
		}
	}
	return nil
}

// handleCorrection stores a correction durably, then announces it. The
// instance is validated exactly like a CSV row.
func (s *Server) handleCorrection() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := s.dataset(w, r)
		if !ok {
			return
		}
		status, err := s.correct(w, r, d)
		s.metrics.corrections.WithLabelValues(d.Name, statusClass(status)).Inc()
		if err != nil {
			s.fail(w, r, err)
		}
	})
}

func (s *Server) correct(w http.ResponseWriter, r *http.Request, d *dataset.Definition) (int, error) {
	var req correctionRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		status, _ := toStatus(err)
		return status, err
	}
	if err := checkInstance(d, req.Instance.values); err != nil {
		return http.StatusBadRequest, err
	}
	for _, name := range req.Instance.repaired {
		if c, ok := d.Lookup(name); ok && c.Type == dataset.TypeText {
			return http.StatusBadRequest, badRequest(name, "instance.%s: not valid UTF-8 (an invalid byte, or an unpaired \\uD800-\\uDFFF escape)", name)
		}
	}
	fields, err := s.correctionFields(d.Name, req)
	if err != nil {
		status, _ := toStatus(err)
		return status, err
	}
	want := "a number"
	if classes := d.Classes(); len(classes) > 0 {
		want = "one of " + strings.Join(classes, ", ")
	}
	if req.Label == nil {
		return http.StatusBadRequest, badRequest("label", "label: required (the right %s: %s)", d.Target.Name, want)
	}
	if b, ok := req.Label.(bool); ok {
		return http.StatusBadRequest, badRequest("label", "label: %t is a boolean; want %s (the right %s)", b, want, d.Target.Name)
	}
	labels, err := instanceValues(map[string]any{d.Target.Name: req.Label})
	if err != nil {
		return http.StatusBadRequest, badRequest("label", "label: want %s (the right %s)", want, d.Target.Name)
	}
	if _, err := d.RowFromFields(fields, labels[d.Target.Name]); err != nil {
		var fe *dataset.FieldError
		if errors.As(err, &fe) && fe.Field == d.Target.Name {
			return http.StatusBadRequest, badRequest("label", "label: %s", fe.Reason)
		}
		return http.StatusBadRequest, err
	}
	c := registry.Correction{ID: uuid.NewString(), Dataset: d.Name, Fields: fields, Label: labels[d.Target.Name],
		PredictionID: req.PredictionID, ReceivedAt: time.Now().UTC()}
	if err := s.reg.AddCorrection(r.Context(), c); err != nil {
		return http.StatusInternalServerError, err
	}
	// Stored: from here on the correction is safe. A lost event only delays
	// it until the next reconcile pass.
	err = s.pub.Publish(r.Context(), &events.CorrectionSubmitted{
		Meta:         events.Meta{ID: "correction/" + c.ID, Dataset: d.Name, Time: c.ReceivedAt, CorrelationID: "correction/" + c.ID},
		CorrectionID: c.ID,
	})
	if err != nil {
		s.log.Warn("correction stored but not announced; reconcile will pick it up", "correction", c.ID, "err", err)
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": c.ID})
	return http.StatusAccepted, nil
}

// checkInstance refuses what a correction's instance must not carry before
// its values are read as text: the target (it goes in "label") and a
// boolean for a column that is not a bool.
func checkInstance(d *dataset.Definition, inst map[string]any) error {
	if _, ok := inst[d.Target.Name]; ok {
		return badRequest("instance."+d.Target.Name, "instance.%s: the target goes in \"label\", not in the instance: {\"instance\":{...},\"label\":...}", d.Target.Name)
	}
	if err := checkBooleans(d, inst); err != nil {
		var fe *dataset.FieldError
		if errors.As(err, &fe) {
			return badRequest("instance."+fe.Field, "instance.%s", fe.Error())
		}
		return err
	}
	return nil
}

var uploadName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

// handleUpload streams a CSV body into incoming/<dataset>/<name>.
func (s *Server) handleUpload() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := s.dataset(w, r)
		if !ok {
			return
		}
		status, err := s.upload(w, r, d)
		s.metrics.uploads.WithLabelValues(d.Name, uploadClass(status)).Inc()
		var cge *errClientGone
		var bte *errBodyTimeout
		switch {
		case err == nil:
		case errors.As(err, &cge), errors.As(err, &bte):
			// The client's doing: neither a server error nor worth an alert.
			s.log.Warn("upload cut short by the client", "dataset", d.Name, "status", status, "err", err)
			writeJSON(w, status, errorBody{Error: err.Error()})
		default:
			s.fail(w, r, err)
		}
	})
}

// uploadClass is the metric's status label: a client that went away is
// counted apart, never as a server error.
func uploadClass(status int) string {
	if status == statusClientClosed {
		return "client_closed"
	}
	return statusClass(status)
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request, d *dataset.Definition) (int, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "text/csv" && mt != "application/octet-stream") {
		return http.StatusUnsupportedMediaType, errorf(http.StatusUnsupportedMediaType, "Content-Type %q: want text/csv", r.Header.Get("Content-Type"))
	}
	if r.ContentLength > s.cfg.MaxUploadBytes {
		// Refused before a byte is read; guard closes the connection.
		return http.StatusRequestEntityTooLarge, errorf(http.StatusRequestEntityTooLarge,
			"upload of %d bytes is larger than the limit of %d bytes", r.ContentLength, s.cfg.MaxUploadBytes)
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		name = time.Now().UTC().Format("20060102T150405Z") + "-" + uuid.NewString()[:8]
	}
	if !strings.HasSuffix(name, ".csv") {
		name += ".csv"
	}
	if !uploadName.MatchString(name) {
		return http.StatusBadRequest, badRequest("name", "name %q: use letters, digits, '.', '_' or '-' (at most 200)", name)
	}
	s.paceUpload(r)
	object := events.IncomingPrefix + d.Name + "/" + name
	body := &uploadBody{r: http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes)}
	obj, err := s.bucket.Write(r.Context(), object, blob.Overwrite, func(out io.Writer) error {
		if _, err := io.Copy(out, body); err != nil {
			return err
		}
		return body.check()
	})
	if err != nil {
		var mbe *http.MaxBytesError
		var ae *apiError
		switch {
		case errors.As(err, &mbe):
			return http.StatusRequestEntityTooLarge, err
		case errors.As(err, &ae):
			return ae.status, ae
		case body.err != nil:
			// Reading failed, not the bucket: the client stopped sending.
			status, _ := toStatus(body.err)
			if status == http.StatusInternalServerError {
				status = statusClientClosed
				return status, &errClientGone{body.err}
			}
			return status, body.err
		case r.Context().Err() != nil:
			return statusClientClosed, &errClientGone{r.Context().Err()}
		}
		return http.StatusInternalServerError, fmt.Errorf("upload %s: %w", object, err)
	}
	if s.cfg.NotifyUploads {
		e := events.NewObjectFinalized(obj.Bucket, obj.Name, obj.Generation, obj.Size, obj.Updated)
		if err := s.pub.Publish(r.Context(), e); err != nil {
			s.log.Warn("upload stored but not announced; the watcher or reconcile will pick it up", "object", object, "err", err)
		}
	}
	writeJSON(w, http.StatusCreated, map[string]any{"object": object, "bucket": obj.Bucket, "generation": obj.Generation, "size": obj.Size})
	return http.StatusCreated, nil
}

// uploadBody reads an upload, keeping its read error apart from the
// bucket's, and sees whether it holds a row after the header.
type uploadBody struct {
	r     io.Reader
	err   error
	n     int64
	lines int  // line ends seen, up to 2
	last  byte // the last byte read
}

func (u *uploadBody) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	u.n += int64(n)
	for i := 0; i < n && u.lines < 2; i++ {
		if p[i] == '\n' {
			u.lines++
		}
	}
	if n > 0 {
		u.last = p[n-1]
	}
	if err != nil && err != io.EOF {
		u.err = err
	}
	return n, err
}

// check refuses an empty file and one that is a header alone: the ingest
// would find no row, and say nothing more useful than this.
func (u *uploadBody) check() error {
	rows := u.lines
	if u.n > 0 && u.last != '\n' {
		rows++ // a last line without its newline
	}
	switch {
	case u.n == 0:
		return badRequest("", "the upload is empty: send a CSV file with a header line and at least one row")
	case rows < 2:
		return badRequest("", "the upload holds only a header line and no rows: send at least one row after the header")
	}
	return nil
}

func (s *Server) handleDatasets() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"datasets": s.datasets.Names()})
	})
}

type versionSummary struct {
	Number    int       `json:"number"`
	Rows      int       `json:"rows"`
	NewRows   int       `json:"new_rows"`
	TrainRows int       `json:"train_rows"`
	TestRows  int       `json:"test_rows"`
	Hash      string    `json:"hash"`
	Sources   int       `json:"sources"`
	CreatedAt time.Time `json:"created_at"`
}

type DatasetStatus struct {
	Name         string              `json:"name"`
	Description  string              `json:"description,omitempty"`
	Target       string              `json:"target"`
	BatchSize    int                 `json:"batch_size"`
	TestFraction float64             `json:"test_fraction"`
	Models       []string            `json:"models"`
	Versions     []versionSummary    `json:"versions"`
	StagedRows   int                 `json:"staged_rows_waiting"`
	Champion     *registry.Promotion `json:"champion"`
	Rows         rowCounts           `json:"rows"`
	// Uploads is one page of the ingests, newest first (GET
	// /v1/datasets/{d}?limit=N&cursor=C); IngestsNext is the cursor of the
	// next page, empty on the last. Rows counts them all.
	Uploads     []Upload `json:"ingests"`
	IngestsNext string   `json:"ingests_next,omitempty"`
	// Columns a CSV may hold, so a client can check a header before sending.
	Columns []columnInfo `json:"columns"`
}

type rowCounts struct {
	Accepted  int `json:"accepted"`
	Rejected  int `json:"rejected"`
	Duplicate int `json:"duplicate"`
	Sources   int `json:"sources"`
}

// handleDataset summarises a dataset: versions, rows waiting, champion,
// and what became of every source.
func (s *Server) handleDataset() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := s.dataset(w, r)
		if !ok {
			return
		}
		limit, cursor, err := ingestPaging(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		st, err := Status(r.Context(), s.reg, d)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if st.Uploads, st.IngestsNext, err = pageIngests(st.Uploads, limit, cursor); err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
}

// Ingest pages: the console polls the dataset, and 1,000 corrections
// made an unpaged answer 361 KB.
const (
	defaultIngestPage = 50
	maxIngestPage     = 1000
)

func ingestPaging(r *http.Request) (limit int, cursor string, err error) {
	q := r.URL.Query()
	limit = defaultIngestPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxIngestPage {
			return 0, "", badRequest("limit", "limit %q: want a whole number from 1 to %d", v, maxIngestPage)
		}
		limit = n
	}
	return limit, q.Get("cursor"), nil
}

// pageIngests sorts ingests newest first (ties by ID) and returns the
// page after cursor. The cursor names the last ingest shown, not an
// offset, so ingests arriving between two pages shift nothing.
func pageIngests(all []Upload, limit int, cursor string) ([]Upload, string, error) {
	after := func(a, b Upload) int { // a before b when negative
		return cmp.Or(b.StagedAt.Compare(a.StagedAt), cmp.Compare(b.ID, a.ID))
	}
	slices.SortFunc(all, after)
	start := 0
	if cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		nanos, id, ok := strings.Cut(string(raw), "/")
		n, perr := strconv.ParseInt(nanos, 10, 64)
		if err != nil || !ok || perr != nil {
			return nil, "", badRequest("cursor", "cursor %q: not one this API gave (use ingests_next as it came)", cursor)
		}
		last := Upload{}
		last.StagedAt, last.ID = time.Unix(0, n).UTC(), id
		start = sort.Search(len(all), func(i int) bool { return after(all[i], last) > 0 })
	}
	end := min(start+limit, len(all))
	page := slices.Clone(all[start:end])
	if page == nil {
		page = []Upload{}
	}
	next := ""
	if end < len(all) {
		last := all[end-1]
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(last.StagedAt.UnixNano(), 10) + "/" + last.ID))
	}
	return page, next, nil
}

func (s *Server) handleModelStatus() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, verb, hasVerb := strings.Cut(r.PathValue("name"), ":")
		if hasVerb {
			if verb == "predict" {
				w.Header().Set("Allow", http.MethodPost)
				s.fail(w, r, errorf(http.StatusMethodNotAllowed, "%s %s: predictions are POST /v1/models/%s:predict with {\"instances\":[...]}", r.Method, r.URL.Path, name))
				return
			}
			s.fail(w, r, errorf(http.StatusNotFound, "unknown method %q: GET /v1/models/{dataset} or POST /v1/models/{dataset}:predict", verb))
			return
		}
		d, ok := s.datasets.Get(name)
		if !ok {
			s.fail(w, r, s.unknownDataset(name))
			return
		}
		out := map[string]any{"name": d.Name, "ready": false, "model": nil}
		if cur := s.models.Current(d.Name); cur != nil {
			out["ready"], out["model"] = true, cur.Info()
		}
		writeJSON(w, http.StatusOK, out)
	})
}
