package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/refit-ml/refit/internal/promapi"
	"github.com/refit-ml/refit/scaler"
)

// targetScaler is the predictive KEDA external scaler. It needs none of the
// stack (no bucket, documents or bus), only Prometheus, so it runs alone and
// is not part of "all".
const targetScaler = "scaler"

// ScalerConfig is the scaler target's settings.
type ScalerConfig struct {
	Addr              string        // gRPC, for KEDA (REFIT_SCALER_ADDR)
	PrometheusURL     string        // REFIT_PROMETHEUS_URL
	PrometheusTimeout time.Duration // REFIT_PROMETHEUS_TIMEOUT
	StaleFor          time.Duration // REFIT_SCALER_STALE_FOR: last good forecast while Prometheus is down
	Refresh           time.Duration // REFIT_SCALER_REFRESH: reuse a fit this young
	StreamInterval    time.Duration // REFIT_SCALER_STREAM_INTERVAL: StreamIsActive period
}

func loadScalerConfig(getenv func(string) string, targets []string) (ScalerConfig, error) {
	c := ScalerConfig{Addr: strings.TrimSpace(getenv("REFIT_SCALER_ADDR")), PrometheusURL: strings.TrimSpace(getenv("REFIT_PROMETHEUS_URL"))}
	if !contains(targets, targetScaler) {
		return c, nil
	}
	if len(targets) > 1 {
		return c, &settingError{"--target", "scaler runs alone (it needs only Prometheus): --target=scaler"}
	}
	if c.Addr == "" {
		c.Addr = ":9090"
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return c, &settingError{"REFIT_SCALER_ADDR", fmt.Sprintf("%q: want host:port or :port", c.Addr)}
	}
	if c.PrometheusURL == "" {
		return c, &settingError{"REFIT_PROMETHEUS_URL", "required with --target=scaler (e.g. http://prometheus:9090)"}
	}
	if _, err := promapi.New(promapi.Config{URL: c.PrometheusURL}); err != nil {
		return c, &settingError{"REFIT_PROMETHEUS_URL", err.Error()}
	}
	for _, d := range []struct {
		name string
		def  time.Duration
		dst  *time.Duration
	}{
		{"REFIT_PROMETHEUS_TIMEOUT", promapi.DefaultTimeout, &c.PrometheusTimeout},
		{"REFIT_SCALER_STALE_FOR", scaler.DefaultStaleFor, &c.StaleFor},
		{"REFIT_SCALER_REFRESH", scaler.DefaultRefresh, &c.Refresh},
		{"REFIT_SCALER_STREAM_INTERVAL", scaler.DefaultStreamInterval, &c.StreamInterval},
	} {
		*d.dst = d.def
		if v := getenv(d.name); v != "" {
			var err error
			if *d.dst, err = time.ParseDuration(v); err != nil || *d.dst <= 0 {
				return c, &settingError{d.name, fmt.Sprintf("%q is not a positive duration (e.g. 30s)", v)}
			}
		}
	}
	return c, nil
}

// serveScaler runs the external scaler's gRPC server and an HTTP server for
// /metrics and the probes, in one errgroup.
func serveScaler(ctx context.Context, cfg Config, logger *slog.Logger, stdout io.Writer) error {
	sc := cfg.Scaler
	prom, err := promapi.New(promapi.Config{URL: sc.PrometheusURL, Timeout: sc.PrometheusTimeout})
	if err != nil {
		return err
	}
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := scaler.New(scaler.Config{Prometheus: prom, Logger: logger, Metrics: metrics, StaleFor: sc.StaleFor, Refresh: sc.Refresh, StreamInterval: sc.StreamInterval})
	if err != nil {
		return err
	}
	grpcLn, err := net.Listen("tcp", sc.Addr)
	if err != nil {
		return fmt.Errorf("REFIT_SCALER_ADDR %s: %w", sc.Addr, err)
	}
	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		grpcLn.Close()
		return fmt.Errorf("REFIT_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, `{"status":"ok"}`) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, `{"status":"ready"}`) })
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	httpServer := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return g.Serve(grpcLn) })
	eg.Go(func() error {
		if err := httpServer.Serve(httpLn); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	eg.Go(func() error {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = httpServer.Shutdown(shutdownCtx)
		g.GracefulStop()
		return nil
	})
	logger.Info("refit scaler started", "grpc", grpcLn.Addr().String(), "http", httpLn.Addr().String(), "prometheus", sc.PrometheusURL)
	fmt.Fprintf(stdout, "refit scaler listening on grpc %s and http://%s (prometheus %s)\n", grpcLn.Addr(), httpLn.Addr(), sc.PrometheusURL)
	return eg.Wait()
}
