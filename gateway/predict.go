package gateway

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/refit-ml/refit/internal/dataset"
)

type predictRequest struct {
	Instances []map[string]any `json:"instances"`
}

type modelInfo struct {
	ID             string    `json:"id"`
	Spec           string    `json:"spec"`
	DatasetVersion int       `json:"dataset_version"`
	DatasetHash    string    `json:"dataset_hash"`
	Sequence       int64     `json:"sequence"`
	PromotedAt     time.Time `json:"promoted_at"`
	Checksum       string    `json:"checksum"`
}

type predictResponse struct {
	Predictions []float64 `json:"predictions"`
	// PredictionIDs name each prediction, for a correction (predictions.go).
	PredictionIDs []string  `json:"prediction_ids"`
	Model         modelInfo `json:"model"`
}

func infoOf(s *Serving) modelInfo {
	p := s.Promotion
	return modelInfo{ID: p.RunID, Spec: p.Spec, DatasetVersion: p.Version, DatasetHash: p.VersionHash,
		Sequence: p.Sequence, PromotedAt: p.PromotedAt, Checksum: p.Checksum}
}

// handleModel serves POST /v1/models/{name}:predict. Go's mux cannot match
// a suffix inside a segment, so the verb is split off here.
func (s *Server) handleModel() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A slow client cannot hold the connection: the body must arrive
		// within the request timeout (not every ResponseWriter supports it).
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.Timeout))
		name, verb, _ := strings.Cut(r.PathValue("name"), ":")
		if verb != "predict" {
			s.fail(w, r, errorf(http.StatusNotFound, "unknown method %q: POST /v1/models/{dataset}:predict", verb))
			return
		}
		d, ok := s.datasets.Get(name)
		if !ok {
			s.fail(w, r, s.unknownDataset(name))
			return
		}
		start := time.Now()
		status := s.predict(w, r, d)
		s.metrics.predictions.WithLabelValues(d.Name, statusClass(status)).Inc()
		s.metrics.latency.WithLabelValues(d.Name).Observe(time.Since(start).Seconds())
		s.metrics.lastPrediction.SetToCurrentTime()
	})
}

func (s *Server) predict(w http.ResponseWriter, r *http.Request, d *dataset.Definition) int {
	serving := s.models.Current(d.Name)
	if serving == nil {
		err := errorf(http.StatusServiceUnavailable, "no model promoted for %q yet: upload data and wait for the first promotion", d.Name)
		s.fail(w, r, err)
		return http.StatusServiceUnavailable
	}
	var req predictRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		status, _ := toStatus(err)
		s.fail(w, r, err)
		return status
	}
	if len(req.Instances) == 0 {
		s.fail(w, r, badRequest("instances", "instances: want at least one instance"))
		return http.StatusBadRequest
	}
	if len(req.Instances) > s.cfg.MaxInstances {
		s.fail(w, r, badRequest("instances", "instances: at most %d per request, got %d", s.cfg.MaxInstances, len(req.Instances)))
		return http.StatusBadRequest
	}
	needed := serving.Predictor.Columns()
	out := predictResponse{Predictions: make([]float64, len(req.Instances)), Model: infoOf(serving)}
	row := dataset.Row{Fields: make([]dataset.Field, len(d.Kept()))}
	for i, inst := range req.Instances {
		if err := s.instanceRow(d, inst, needed, &row); err != nil {
			status, body := toStatus(err)
			body.Error = "instance " + strconv.Itoa(i) + ": " + body.Error
			writeJSON(w, status, body)
			return status
		}
		out.Predictions[i] = serving.Predictor.Predict(row)
	}
	out.PredictionIDs = s.keepPredictions(d.Name, req.Instances, out.Predictions)
	writeJSON(w, http.StatusOK, out)
	return http.StatusOK
}

// instanceRow validates an instance like a CSV row: known columns only,
// every column the model reads present and valid.
func (s *Server) instanceRow(d *dataset.Definition, inst map[string]any, needed []string, row *dataset.Row) error {
	values, err := instanceValues(inst)
	if err != nil {
		return err
	}
	for name := range values {
		if _, ok := d.Lookup(name); !ok {
			return badRequest(name, "unknown field %q", name)
		}
	}
	clear(row.Fields)
	for i, c := range d.Kept() {
		raw, present := values[c.Name]
		if !present {
			if slices.Contains(needed, c.Name) && !c.Optional {
				return badRequest(c.Name, "missing field %q", c.Name)
			}
			continue
		}
		f, err := d.ParseValue(c, raw)
		if err != nil {
			return err
		}
		row.Fields[i] = f
	}
	return nil
}

func statusClass(status int) string {
	switch {
	case status >= 500:
		return "5xx"
	case status >= 400:
		return "4xx"
	default:
		return "2xx"
	}
}
