// Package gateway is Refit's HTTP API: predictions from the promoted model
// of each dataset, corrections, uploads, and what the pipeline has done.
package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers/promote"
	"github.com/refit-ml/refit/workers/train"
)

// Datasets finds a dataset's definition.
type Datasets interface {
	Get(name string) (*dataset.Definition, bool)
	Names() []string
}

// Publisher sends events.
type Publisher interface {
	Publish(ctx context.Context, e events.Event) error
}

// Config tunes the API.
type Config struct {
	MaxBodyBytes   int64         // JSON bodies (default 1 MiB)
	MaxUploadBytes int64         // CSV uploads (default 1 GiB)
	MaxInstances   int           // per predict request (default 1000)
	Timeout        time.Duration // per request, uploads excepted (default 30 s)
	// BodyTimeout bounds sending a request body, uploads excepted, and
	// any body a handler answers without reading (default 10 s).
	BodyTimeout time.Duration
	// An upload must average MinUploadRate bytes/s (default 32 KiB/s) and
	// never pause longer than UploadStall (default 30 s).
	MinUploadRate int64
	UploadStall   time.Duration
	UploadTimeout time.Duration // reproduce and the quarantine stream (default 10 min)
	// NotifyUploads publishes object.finalized for uploads itself: for a
	// bucket that sends no notifications of its own (the local folder).
	NotifyUploads bool
	// AdminToken, when set, must come as "Authorization: Bearer <token>"
	// with every admin call (promote, rollback, uploads, reproduce, the
	// webhook delivery log). Unset, admin calls are open: the embedded
	// laptop mode.
	AdminToken string
	// ProtectPredict and ProtectCorrections put predictions and
	// corrections behind the admin token too.
	ProtectPredict     bool
	ProtectCorrections bool
	// Heartbeat is how often the event stream sends a comment line to keep
	// proxies from closing it (default 15 s).
	Heartbeat time.Duration
}

func (c *Config) setDefaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = 1 << 30
	}
	if c.MaxInstances == 0 {
		c.MaxInstances = 1000
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.BodyTimeout == 0 {
		c.BodyTimeout = 10 * time.Second
	}
	if c.MinUploadRate == 0 {
		c.MinUploadRate = 32 << 10
	}
	if c.UploadStall == 0 {
		c.UploadStall = 30 * time.Second
	}
	if c.UploadTimeout == 0 {
		c.UploadTimeout = 10 * time.Minute
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = 15 * time.Second
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if (c.ProtectPredict || c.ProtectCorrections) && c.AdminToken == "" {
		return errors.New("gateway: protecting predictions or corrections needs an admin token")
	}
	return nil
}

// Promoter promotes by hand (workers/promote.Manual).
type Promoter interface {
	Promote(ctx context.Context, ds, runID, actor, reason string) (registry.Promotion, error)
	Rollback(ctx context.Context, ds, actor, reason string) (registry.Promotion, error)
}

// Deps are the server's collaborators.
type Deps struct {
	Datasets  Datasets
	Registry  *registry.Registry
	Bucket    blob.Bucket
	Publisher Publisher
	Models    Models
	Logger    *slog.Logger
	Metrics   *prometheus.Registry
	// Ready reports whether the process can serve (all its parts started).
	Ready func() bool
	// Promoter promotes by hand; default: promote.NewManual on Registry
	// and Publisher.
	Promoter Promoter
	// Reproducer refits runs; default: train.NewReproducer on Datasets,
	// Registry and Bucket.
	Reproducer Reproducer
	// Events feeds GET /v1/events; default: an empty hub (nothing feeds
	// it, so the stream only sends heartbeats).
	Events *Hub
}

// check reports the first missing dependency by name.
func (d Deps) check() error {
	missing := ""
	switch {
	case d.Datasets == nil:
		missing = "Datasets"
	case d.Registry == nil:
		missing = "Registry"
	case d.Bucket == nil:
		missing = "Bucket"
	case d.Publisher == nil:
		missing = "Publisher"
	case d.Models == nil:
		missing = "Models"
	case d.Logger == nil:
		missing = "Logger"
	case d.Metrics == nil:
		missing = "Metrics"
	}
	if missing != "" {
		return fmt.Errorf("gateway: Deps.%s is nil", missing)
	}
	return nil
}

// Server is the HTTP API.
type Server struct {
	cfg      Config
	datasets Datasets
	reg      *registry.Registry
	bucket   blob.Bucket
	pub      Publisher
	models   Models
	log      *slog.Logger
	gatherer prometheus.Gatherer
	ready    func() bool
	promoter Promoter
	repro    Reproducer
	hub      *Hub
	preds    *predictionStore          // instances by prediction ID, for corrections
	targets  map[string]*predictTarget // per dataset, read-only after NewServer
	// decoders are *predictDecoder: the predict path's buffers, reused
	// across requests rather than allocated per request.
	decoders sync.Pool
	pages    *template.Template // the web console (console.go)
	metrics  *serverMetrics
	mux      *http.ServeMux
}

// NewServer builds the API handler.
func NewServer(cfg Config, deps Deps) (*Server, error) {
	if err := deps.check(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, datasets: deps.Datasets, reg: deps.Registry, bucket: deps.Bucket, pub: deps.Publisher,
		models: deps.Models, log: deps.Logger.With("component", "gateway"), gatherer: deps.Metrics, ready: deps.Ready,
		promoter: deps.Promoter, repro: deps.Reproducer, hub: deps.Events, metrics: newServerMetrics(deps.Metrics), mux: http.NewServeMux(),
		preds: newPredictionStore(defaultPredictionCap, defaultPredictionTTL, nil),
	}
	s.decoders.New = func() any { return new(predictDecoder) }
	s.targets = map[string]*predictTarget{}
	for _, name := range deps.Datasets.Names() {
		if d, ok := deps.Datasets.Get(name); ok {
			s.targets[name] = s.newPredictTarget(d)
		}
	}
	if s.ready == nil {
		s.ready = func() bool { return true }
	}
	if s.promoter == nil {
		s.promoter = promote.NewManual(deps.Registry, deps.Bucket, deps.Publisher, deps.Logger, nil)
	}
	if s.repro == nil {
		s.repro = train.NewReproducer(deps.Datasets, deps.Registry, deps.Bucket, deps.Logger)
	}
	if s.hub == nil {
		s.hub = NewHub()
	}
	if cfg.AdminToken == "" {
		s.log.Warn("REFIT_ADMIN_TOKEN is not set: admin calls (promote, rollback, uploads, reproduce) are open to anyone who can reach this address")
	}
	s.routes()
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.guard(w, r) }

func (s *Server) routes() {
	api := func(h http.Handler) http.Handler {
		return s.bodyFirst(http.TimeoutHandler(h, s.cfg.Timeout, `{"error":"request timed out"}`))
	}
	s.mux.Handle("GET /healthz", health())
	s.mux.Handle("GET /readyz", s.readiness())
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	s.mux.Handle("GET /v1/datasets", api(s.handleDatasets()))
	s.mux.Handle("GET /v1/datasets/{dataset}", api(s.handleDataset()))
	long := func(h http.Handler, what string) http.Handler {
		return s.longWrite(http.TimeoutHandler(h, s.cfg.UploadTimeout, `{"error":"`+what+` timed out"}`))
	}
	predictAuth, correctionAuth := open, open
	if s.cfg.ProtectPredict {
		predictAuth = s.admin
	}
	if s.cfg.ProtectCorrections {
		correctionAuth = s.admin
	}
	s.mux.Handle("GET /v1/datasets/{dataset}/runs", api(s.handleRuns()))
	s.mux.Handle("GET /v1/datasets/{dataset}/promotions", api(s.handlePromotions()))
	s.mux.Handle("POST /v1/datasets/{dataset}/promotions", s.admin(api(s.handlePromote())))
	s.mux.Handle("GET /v1/datasets/{dataset}/versions/{version}/lineage", api(s.handleVersionLineage()))
	s.mux.Handle("GET /v1/datasets/{dataset}/objects/{name...}", api(s.handleObject()))
	s.mux.Handle("POST /v1/datasets/{dataset}/corrections", correctionAuth(api(s.handleCorrection())))
	// No TimeoutHandler: an upload is bounded by its minimum transfer rate
	// (deadlines.go), however large it is.
	s.mux.Handle("POST /v1/datasets/{dataset}/uploads", s.admin(s.handleUpload()))
	s.mux.Handle("GET /v1/runs/{id}", api(s.handleRun()))
	s.mux.Handle("GET /v1/runs/{id}/lineage", api(s.handleRunLineage()))
	s.mux.Handle("POST /v1/runs/{id}/reproduce", s.admin(long(s.handleReproduce(), "reproduce")))
	s.mux.Handle("GET /v1/events", s.handleEvents()) // a stream: no timeout
	s.mux.Handle("GET /v1/webhooks/deliveries", s.admin(api(s.handleDeliveries())))
	s.deadLetterRoutes() // GET /v1/deadletters, POST /v1/deadletters/{id}/replay (deadletters.go)
	s.mux.Handle("GET /v1/models/{name}", api(s.handleModelStatus()))
	// No TimeoutHandler here: a prediction never waits on I/O past reading
	// its bounded body (MaxBodyBytes; the server's ReadTimeout covers slow
	// clients), and the handler's extra goroutine and buffered copy of every
	// response cost about a tenth of the predict path (BENCHMARKS.md).
	s.mux.Handle("POST /v1/models/{name}", predictAuth(s.handleModel()))
	s.consoleRoutes()
	s.mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)})
	}))
}

// bodyFirst reads a JSON body into memory before h runs. A body that
// misses its deadline cancels the request's context, which a
// TimeoutHandler would answer with a bare 503; read first, the client gets
// a 408 that says why. At most MaxBodyBytes+1 bytes are read: the handler
// still refuses a larger body.
func (s *Server) bodyFirst(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 && r.ContentLength <= s.cfg.MaxBodyBytes {
			b, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
			if err != nil {
				var bte *errBodyTimeout
				var cge *errClientGone
				if !errors.As(err, &bte) && !errors.As(err, &cge) {
					err = badRequest("", "reading the body: %v", err)
				}
				s.fail(w, r, err)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		h.ServeHTTP(w, r)
	})
}

// longWrite gives a long handler's answer the time its TimeoutHandler
// allows, past guard's default write deadline.
func (s *Server) longWrite(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.UploadTimeout + s.cfg.BodyTimeout))
		h.ServeHTTP(w, r)
	})
}

func health() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

func (s *Server) unknownDataset(name string) error {
	return errorf(http.StatusNotFound, "unknown dataset %q (known: %v)", name, s.datasets.Names())
}

type serverMetrics struct {
	predictions    *prometheus.CounterVec
	instances      *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	lastPrediction prometheus.Gauge
	corrections    *prometheus.CounterVec
	uploads        *prometheus.CounterVec
	streamClients  prometheus.Gauge
}

func newServerMetrics(reg prometheus.Registerer) *serverMetrics {
	m := &serverMetrics{
		predictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prediction_requests_total", Help: "Prediction requests, by dataset and status class.",
		}, []string{"dataset", "status"}),
		instances: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refit_predictions_total",
			Help: `Instances answered, by dataset and predicted class ("value" for a regression model).`,
		}, []string{"dataset", "prediction"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "prediction_latency_seconds", Help: "Prediction request latency.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"dataset"}),
		lastPrediction: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "last_prediction_timestamp", Help: "Unix time of the last prediction request.",
		}),
		corrections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "correction_requests_total", Help: "Correction requests, by dataset and status class.",
		}, []string{"dataset", "status"}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refit_upload_requests_total", Help: "Upload requests, by dataset and status class.",
		}, []string{"dataset", "status"}),
		streamClients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "refit_event_stream_clients", Help: "Clients connected to GET /v1/events.",
		}),
	}
	reg.MustRegister(m.predictions, m.instances, m.latency, m.lastPrediction, m.corrections, m.uploads, m.streamClients)
	return m
}
