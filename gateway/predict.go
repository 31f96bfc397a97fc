package gateway

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/workers/serve"
)

type predictResponse struct {
	Predictions []float64 `json:"predictions"`
	// PredictionIDs name each prediction, for a correction (predictions.go).
	PredictionIDs []string   `json:"prediction_ids"`
	Model         serve.Info `json:"model"`
}

// classifyResponse is a classifier's answer: the class of each instance
// and each class's probability.
type classifyResponse struct {
	Predictions   []string             `json:"predictions"`
	Probabilities []map[string]float64 `json:"probabilities"`
	// PredictionIDs name each prediction, for a correction (predictions.go).
	PredictionIDs []string   `json:"prediction_ids"`
	Model         serve.Info `json:"model"`
}

// predictTarget is what the predict path needs per dataset, resolved once:
// the instance schema and the metric children (WithLabelValues hashes its
// labels on every call).
type predictTarget struct {
	schema  *instanceSchema
	ok      prometheus.Counter
	latency prometheus.Observer
	// Instances answered: per class of a classifier, else one counter.
	byClass []prometheus.Counter
	values  prometheus.Counter
}

// predictionValue labels the instances a regression model answered.
const predictionValue = "value"

func (s *Server) newPredictTarget(d *dataset.Definition) *predictTarget {
	t := &predictTarget{schema: newInstanceSchema(d),
		ok:      s.metrics.predictions.WithLabelValues(d.Name, statusClass(http.StatusOK)),
		latency: s.metrics.latency.WithLabelValues(d.Name)}
	for _, c := range t.schema.classes {
		t.byClass = append(t.byClass, s.metrics.instances.WithLabelValues(d.Name, c))
	}
	if len(t.byClass) == 0 {
		t.values = s.metrics.instances.WithLabelValues(d.Name, predictionValue)
	}
	return t
}

// count adds the answered instances to refit_predictions_total.
func (t *predictTarget) count(serving *serve.Serving, preds []float64) {
	if serving.Classifier == nil || len(t.byClass) == 0 {
		t.values.Add(float64(len(preds)))
		return
	}
	for _, k := range preds {
		t.byClass[int(k)].Inc()
	}
}

// predictTarget returns the dataset's target, made on the spot for a
// definition the server did not start with.
func (s *Server) predictTarget(d *dataset.Definition) *predictTarget {
	if t, ok := s.targets[d.Name]; ok && t.schema.def == d {
		return t
	}
	return s.newPredictTarget(d)
}

// handleModel serves POST /v1/models/{name}:predict. Go's mux cannot match
// a suffix inside a segment, so the verb is split off here.
func (s *Server) handleModel() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		t := s.predictTarget(d)
		status := s.predict(w, r, t)
		if status == http.StatusOK {
			t.ok.Inc()
		} else {
			s.metrics.predictions.WithLabelValues(d.Name, statusClass(status)).Inc()
		}
		t.latency.Observe(time.Since(start).Seconds())
		s.metrics.lastPrediction.SetToCurrentTime()
	})
}

func (s *Server) predict(w http.ResponseWriter, r *http.Request, t *predictTarget) int {
	d := t.schema.def
	serving := s.models.Current(d.Name)
	if serving == nil {
		err := errorf(http.StatusServiceUnavailable, "no model promoted for %q yet: upload data and wait for the first promotion", d.Name)
		s.fail(w, r, err)
		return http.StatusServiceUnavailable
	}
	p := s.decoders.Get().(*predictDecoder)
	defer s.decoders.Put(p)
	if err := s.answer(w, r, t, serving, p); err != nil {
		status, _ := toStatus(err)
		s.fail(w, r, err)
		return status
	}
	return http.StatusOK
}

// answer predicts the request's instances with serving and writes the
// answer, or returns the error to answer instead.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, t *predictTarget, serving *serve.Serving, p *predictDecoder) error {
	if err := p.readBody(w, r, s.cfg.MaxBodyBytes); err != nil {
		return err
	}
	if err := p.decode(t.schema, s.cfg.MaxInstances); err != nil {
		return err
	}
	text, stored, err := p.rows(serving.Required(t.schema.def), serving)
	if err != nil {
		return err
	}
	if err := checkFinite(p.preds); err != nil {
		return err
	}
	if serving.Classifier != nil {
		if err := checkClasses(p.preds, p.probs, len(t.schema.classes)); err != nil {
			return err
		}
	}
	p.ids = s.preds.add(t.schema, text, stored, p.ends, p.preds, p.ids[:0])
	if serving.Classifier != nil {
		p.out = appendClassifyResponse(p.out[:0], t.schema, p.preds, p.probs, p.ids, serving.InfoJSON())
	} else {
		p.out = appendPredictResponse(p.out[:0], p.preds, p.ids, serving.InfoJSON())
	}
	t.count(serving, p.preds)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(p.out)
	return nil
}

// checkFinite refuses to answer what JSON cannot carry. encoding/json used
// to fail on it after the status was sent, leaving an empty 200.
func checkFinite(preds []float64) error {
	for i, v := range preds {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errorf(http.StatusInternalServerError, "instance %d: the model's prediction is %v, which JSON cannot carry", i, v)
		}
	}
	return nil
}

// checkClasses refuses a classifier's answer that names no class of the
// dataset, or a probability JSON cannot carry.
func checkClasses(preds, probs []float64, classes int) error {
	for i, k := range preds {
		if k < 0 || int(k) >= classes {
			return errorf(http.StatusInternalServerError, "instance %d: the model predicted class %v of %d", i, k, classes)
		}
	}
	if err := checkFinite(probs); err != nil {
		return errorf(http.StatusInternalServerError, "a probability the model gave is not a number")
	}
	return nil
}

// appendClassifyResponse writes what encoding/json writes for a
// classifyResponse, byte for byte: sch's classes as JSON strings, each
// instance's probabilities in their sorted order (a map's).
func appendClassifyResponse(b []byte, sch *instanceSchema, preds, probs []float64, ids []predictionID, model []byte) []byte {
	classes := sch.classJSON
	b = append(b, `{"predictions":[`...)
	for i, k := range preds {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, classes[int(k)]...)
	}
	b = append(b, `],"probabilities":[`...)
	n := len(classes)
	for i := range preds {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		for j, c := range sch.classOrder {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(append(b, classes[c]...), ':')
			b = appendJSONFloat(b, probs[i*n+c])
		}
		b = append(b, '}')
	}
	b = append(b, `],"prediction_ids":[`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(id.appendText(append(b, '"')), '"')
	}
	b = append(b, `],"model":`...)
	b = append(b, model...)
	return append(b, "}\n"...)
}

// appendPredictResponse writes what encoding/json wrote for a
// predictResponse, byte for byte, without reflection.
func appendPredictResponse(b []byte, preds []float64, ids []predictionID, model []byte) []byte {
	b = append(b, `{"predictions":[`...)
	for i, v := range preds {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONFloat(b, v)
	}
	b = append(b, `],"prediction_ids":[`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(id.appendText(append(b, '"')), '"')
	}
	b = append(b, `],"model":`...)
	b = append(b, model...)
	return append(b, "}\n"...)
}

// appendJSONFloat formats a finite float64 as encoding/json does.
func appendJSONFloat(b []byte, v float64) []byte {
	format := byte('f')
	if abs := math.Abs(v); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, v, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9, as in encoding/json.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
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
