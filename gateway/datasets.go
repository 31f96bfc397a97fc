package gateway

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
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
	Instance     map[string]any `json:"instance"`
	Label        any            `json:"label"`
	PredictionID string         `json:"prediction_id,omitempty"`
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
	fields, err := s.correctionFields(d.Name, req)
	if err != nil {
		status, _ := toStatus(err)
		return status, err
	}
	if req.Label == nil {
		return http.StatusBadRequest, badRequest("label", "label: required (the right %s)", d.Target.Name)
	}
	labels, err := instanceValues(map[string]any{d.Target.Name: req.Label})
	if err != nil {
		return http.StatusBadRequest, badRequest("label", "label: want a number")
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

var uploadName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

// handleUpload streams a CSV body into incoming/<dataset>/<name>.
func (s *Server) handleUpload() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := s.dataset(w, r)
		if !ok {
			return
		}
		status, err := s.upload(w, r, d)
		s.metrics.uploads.WithLabelValues(d.Name, statusClass(status)).Inc()
		if err != nil {
			s.fail(w, r, err)
		}
	})
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request, d *dataset.Definition) (int, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "text/csv" && mt != "application/octet-stream") {
		return http.StatusUnsupportedMediaType, errorf(http.StatusUnsupportedMediaType, "Content-Type %q: want text/csv", r.Header.Get("Content-Type"))
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
	object := events.IncomingPrefix + d.Name + "/" + name
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes)
	obj, err := s.bucket.Write(r.Context(), object, blob.Overwrite, func(out io.Writer) error {
		_, err := io.Copy(out, body)
		return err
	})
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return http.StatusRequestEntityTooLarge, err
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
	Uploads      []Upload            `json:"ingests"`
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
		st, err := Status(r.Context(), s.reg, d)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
}

func (s *Server) handleModelStatus() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := s.datasets.Get(r.PathValue("name"))
		if !ok {
			s.fail(w, r, s.unknownDataset(r.PathValue("name")))
			return
		}
		out := map[string]any{"name": d.Name, "ready": false, "model": nil}
		if cur := s.models.Current(d.Name); cur != nil {
			out["ready"], out["model"] = true, cur.Info()
		}
		writeJSON(w, http.StatusOK, out)
	})
}
