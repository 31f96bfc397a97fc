package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func TestScalerSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, target string
		env          map[string]string
		wantErr      string
	}{
		{"no Prometheus URL", "scaler", nil, "REFIT_PROMETHEUS_URL"},
		{"bad Prometheus URL", "scaler", map[string]string{"REFIT_PROMETHEUS_URL": "prometheus:9090"}, "REFIT_PROMETHEUS_URL"},
		{"not with other targets", "scaler,gateway", map[string]string{"REFIT_PROMETHEUS_URL": "http://p:9090"}, "scaler runs alone"},
		{"bad address", "scaler", map[string]string{"REFIT_PROMETHEUS_URL": "http://p:9090", "REFIT_SCALER_ADDR": "9090"}, "REFIT_SCALER_ADDR"},
		{"bad stale bound", "scaler", map[string]string{"REFIT_PROMETHEUS_URL": "http://p:9090", "REFIT_SCALER_STALE_FOR": "-1m"}, "REFIT_SCALER_STALE_FOR"},
		{"ok", "scaler", map[string]string{"REFIT_PROMETHEUS_URL": "http://p:9090"}, ""},
		{"all does not include the scaler and needs no Prometheus", "all", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(func(k string) string { return tt.env[k] }, "", tt.target)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tt.target == "all" && c.has(targetScaler) {
					t.Fatal("all includes the scaler")
				}
				if tt.target == "scaler" && (c.Scaler.Addr != ":9090" || c.Scaler.StaleFor <= 0) {
					t.Fatalf("defaults %+v", c.Scaler)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}

// refit serve --target=scaler, for real, against a stand-in Prometheus.
func TestServeScaler(t *testing.T) {
	t.Parallel()
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query_range" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"3"],[1700000060,"7"]]}]}}`)
	}))
	defer prom.Close()
	env := map[string]string{"REFIT_PROMETHEUS_URL": prom.URL, "REFIT_SCALER_ADDR": "127.0.0.1:0", "REFIT_HTTP_ADDR": "127.0.0.1:0"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--target=scaler"}, func(k string) string { return env[k] }, pw, io.Discard)
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	m := regexp.MustCompile(`grpc (\S+) and (http://\S+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("startup line %q", line)
	}
	conn, err := grpc.NewClient(m[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := externalscaler.NewExternalScalerClient(conn)
	md := map[string]string{"query": "sum(rate(x[1m]))", "horizon": "30s", "history": "1h", "step": "1m", "target": "5"}
	res, err := c.GetMetrics(ctx, &externalscaler.GetMetricsRequest{ScaledObjectRef: &externalscaler.ScaledObjectRef{Name: "g", ScalerMetadata: md}})
	if err != nil {
		t.Fatal(err)
	}
	// Two points, no season yet: the current value.
	if v := res.GetMetricValues()[0].GetMetricValueFloat(); v != 7 {
		t.Fatalf("value %v, want 7", v)
	}
	delete(md, "target")
	if _, err := c.GetMetrics(ctx, &externalscaler.GetMetricsRequest{ScaledObjectRef: &externalscaler.ScaledObjectRef{Name: "g", ScalerMetadata: md}}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "target") {
		t.Fatalf("without target: %v", err)
	}
	r, err := http.Get(m[2] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(body), `refit_scaler_forecast{scaledobject="/g"} 7`) {
		t.Fatalf("metrics lack the forecast:\n%.2000s", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
