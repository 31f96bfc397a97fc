package deploy_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/gateway"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/promapi"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/scaler"
	"github.com/refit-ml/refit/schemas"
	"github.com/refit-ml/refit/workers"
	"github.com/refit-ml/refit/workers/preprocess"
	"github.com/refit-ml/refit/workers/promote"
	"github.com/refit-ml/refit/workers/serve"
	"github.com/refit-ml/refit/workers/train"
	"github.com/refit-ml/refit/workers/version"
)

// recorder registers collectors and remembers them, so vectors that have
// seen no observation yet can still be described.
type recorder struct {
	*prometheus.Registry
	collectors []prometheus.Collector
}

func (r *recorder) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return r.Registry.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, events.Event) error { return nil }

// metricInfo: a series name Refit exports and the labels it carries.
type metricInfo struct{ labels []string }

var descRE = regexp.MustCompile(`^Desc\{fqName: "([^"]+)", .*variableLabels: \{([^}]*)\}\}$`)

// refitMetrics builds the gateway, the bus metrics and every worker the way
// `refit serve` wires them (cmd/refit/serve.go), on real in-memory
// dependencies, and returns every series name they export.
func refitMetrics(t *testing.T) map[string]metricInfo {
	t.Helper()
	catalog, err := dataset.LoadCatalog(schemas.Files, "datasets", "")
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := local.New(t.TempDir(), "metrics-test")
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(memory.New())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := &recorder{Registry: prometheus.NewRegistry()}

	bus.NewMetrics(rec)
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	deps := workers.Deps{Datasets: catalog, Bucket: bucket, Registry: reg, Publisher: nopPublisher{}, Logger: logger, Metrics: rec}
	must(preprocess.New(preprocess.Config{Deps: deps}))
	must(version.New(deps))
	must(train.New(train.Config{Deps: deps}))
	must(promote.New(deps))
	models := serve.NewModels(catalog, bucket, reg, logger, rec)
	prom, err := promapi.New(promapi.Config{URL: "http://127.0.0.1:1"})
	must(prom, err)
	must(scaler.New(scaler.Config{Prometheus: prom, Logger: logger, Metrics: rec}))

	out := map[string]metricInfo{}
	for _, c := range rec.collectors {
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			m := descRE.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read descriptor %s", d)
			}
			var labels []string
			if m[2] != "" {
				labels = strings.Split(m[2], ",")
			}
			addSeries(out, m[1], labels, kindOf(c))
		}
	}

	// The HTTP server registers its metrics on a *prometheus.Registry of
	// its own: make one request of each kind so each vector has a child.
	srvReg := prometheus.NewRegistry()
	srv, err := gateway.NewServer(gateway.Config{}, gateway.Deps{Datasets: catalog, Registry: reg, Bucket: bucket, Publisher: nopPublisher{},
		Models: models, Logger: logger, Metrics: srvReg})
	if err != nil {
		t.Fatal(err)
	}
	ds := catalog.Names()[0]
	for _, path := range []string{"/v1/models/" + ds + ":predict", "/v1/datasets/" + ds + "/corrections", "/v1/datasets/" + ds + "/uploads"} {
		srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, path, strings.NewReader("{}")))
	}
	families, err := srvReg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		var labels []string
		for _, lp := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, lp.GetName())
		}
		addSeries(out, f.GetName(), labels, f.GetType())
	}
	return out
}

func kindOf(c prometheus.Collector) dto.MetricType {
	switch c := c.(type) {
	case *prometheus.HistogramVec:
		return dto.MetricType_HISTOGRAM
	case *prometheus.SummaryVec:
		return dto.MetricType_SUMMARY
	case prometheus.Metric:
		// prometheus.Histogram and prometheus.Summary have the same method
		// set, so a type switch cannot tell them apart: ask the metric.
		var m dto.Metric
		if c.Write(&m) == nil {
			switch {
			case m.Histogram != nil:
				return dto.MetricType_HISTOGRAM
			case m.Summary != nil:
				return dto.MetricType_SUMMARY
			}
		}
	}
	return dto.MetricType_UNTYPED
}

func addSeries(out map[string]metricInfo, name string, labels []string, kind dto.MetricType) {
	out[name] = metricInfo{labels}
	switch kind {
	case dto.MetricType_HISTOGRAM:
		out[name+"_bucket"] = metricInfo{append(slices.Clone(labels), "le")}
		out[name+"_sum"] = metricInfo{labels}
		out[name+"_count"] = metricInfo{labels}
		delete(out, name)
	case dto.MetricType_SUMMARY:
		out[name+"_sum"] = metricInfo{labels}
		out[name+"_count"] = metricInfo{labels}
	}
}

// targetLabels are added by the scrape (job, instance, target) or by
// Google Managed Prometheus (project_id, location, cluster, namespace, pod,
// container).
var targetLabels = []string{"job", "instance", "target", "namespace", "pod", "container", "project_id", "location", "cluster", "__name__"}

// foreign are series Refit does not export but may query.
func foreign(name string) bool {
	return strings.HasPrefix(name, "pubsub_googleapis_com:") || name == "up" ||
		strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") ||
		strings.HasPrefix(name, "kube_") // kube-state-metrics: the gateway's replicas
}

// TestQueriesUseRefitMetrics: every metric the dashboard, the alerts and
// the autoscalers query is one Refit exports, with labels it carries.
func TestQueriesUseRefitMetrics(t *testing.T) {
	metrics := refitMetrics(t)
	if len(metrics) < 15 {
		t.Fatalf("found only %d metrics: %v", len(metrics), metrics)
	}
	queries := append(append(dashboardQueries(t), alertQueries(t)...), kedaQueries(t)...)
	used := map[string]bool{}
	for _, q := range queries {
		sels := selectors(q.expr)
		if len(sels) == 0 {
			t.Errorf("%s: %q selects no metric", q.where, q.expr)
		}
		for _, s := range sels {
			used[s.name] = true
			if foreign(s.name) {
				continue
			}
			m, ok := metrics[s.name]
			if !ok {
				t.Errorf("%s: %s is not a metric Refit exports", q.where, s.name)
				continue
			}
			for _, l := range s.labels {
				if !slices.Contains(m.labels, l) && !slices.Contains(targetLabels, l) {
					t.Errorf("%s: %s has no label %q (has %v)", q.where, s.name, l, m.labels)
				}
			}
		}
	}
	// What the dashboard must show (issue 5).
	for _, name := range []string{
		"refit_events_handled_total", "pubsub_googleapis_com:subscription_num_undelivered_messages", "refit_events_dead_lettered_total",
		"refit_rows_accepted_total", "refit_rows_rejected_total", "refit_rows_duplicate_total", "refit_dataset_versions_total",
		"refit_dataset_latest_version", "refit_staged_rows_waiting", "refit_training_duration_seconds_bucket", "refit_promotions_total",
		"refit_challengers_rejected_total", "refit_champion_metric", "prediction_requests_total", "prediction_latency_seconds_bucket",
		"refit_serving_promotion_sequence", "model_load_time_seconds",
	} {
		found := false
		for _, q := range dashboardQueries(t) {
			for _, s := range selectors(q.expr) {
				found = found || s.name == name
			}
		}
		if !found {
			t.Errorf("the dashboard shows no %s", name)
		}
	}
}

type selector struct {
	name   string
	labels []string
}

var (
	aggregations = []string{"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
	keywords     = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "atan2", "inf", "nan"}
	identRE      = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*`)
	matcherRE    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
)

// selectors lists the metric selectors of a PromQL expression: a small
// lexer, enough for the expressions here (strings, label matchers, ranges,
// grouping lists, functions, aggregations).
func selectors(expr string) []selector {
	var out []selector
	s := expr
	last := -1 // index in out of the selector a {...} belongs to
	for len(s) > 0 {
		c := s[0]
		switch {
		case c == '"' || c == '\'' || c == '`':
			end := strings.IndexByte(s[1:], c)
			if end < 0 {
				return out
			}
			s = s[end+2:]
			last = -1
		case c == '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return out
			}
			s = s[end+1:]
		case c == '{':
			end := strings.IndexByte(s, '}')
			if end < 0 {
				return out
			}
			body := regexp.MustCompile(`"(\\.|[^"\\])*"`).ReplaceAllString(s[1:end], `""`)
			if last >= 0 {
				for _, m := range matcherRE.FindAllStringSubmatch(body, -1) {
					out[last].labels = append(out[last].labels, m[1])
				}
			}
			s = s[end+1:]
			last = -1
		case c >= '0' && c <= '9' || c == '.':
			n := regexp.MustCompile(`^[0-9.eE+-]+[a-z]*`).FindString(s)
			s = s[max(len(n), 1):]
			last = -1
		case identRE.MatchString(s):
			id := identRE.FindString(s)
			s = s[len(id):]
			rest := strings.TrimLeft(s, " \t\n")
			last = -1
			switch {
			case slices.Contains([]string{"by", "without", "on", "ignoring", "group_left", "group_right"}, id) && strings.HasPrefix(rest, "("):
				s = rest[strings.IndexByte(rest, ')')+1:]
			case slices.Contains(aggregations, id) || slices.Contains(keywords, id) || strings.HasPrefix(rest, "("):
			default:
				out = append(out, selector{name: id})
				last = len(out) - 1
			}
		default:
			s = s[1:]
			if c != ' ' && c != '\n' && c != '\t' {
				last = -1
			}
		}
	}
	return out
}

func TestSelectors(t *testing.T) {
	got := selectors(`histogram_quantile(0.99, sum by (dataset, le) (rate(prediction_latency_seconds_bucket{dataset=~"a|b", status!="x"}[5m]))) / on (dataset) group_left up offset 5m > 0.25 unless foo:bar{x="}"}`)
	want := []selector{{"prediction_latency_seconds_bucket", []string{"dataset", "status"}}, {"up", nil}, {"foo:bar", []string{"x"}}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].name != want[i].name || !slices.Equal(got[i].labels, want[i].labels) {
			t.Errorf("got %v, want %v", got[i], want[i])
		}
	}
}
