package deploy_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

func loadCompose(t *testing.T, env ...string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root(t), "docker-compose.yaml")},
		cli.WithWorkingDirectory(root(t)), cli.WithEnv(env), cli.WithName("refit"))
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

// TestCompose loads docker-compose.yaml as `docker compose` does (the
// Compose specification's schema, interpolation, merge keys) and checks the
// production shape: every refit service runs a target that exists, starts
// after setup, and takes its secret from the environment.
func TestCompose(t *testing.T) {
	const token = "test-token-from-env"
	p, err := loadCompose(t, "REFIT_ADMIN_TOKEN="+token)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ // service -> command
		"setup": "setup", "gateway": "serve --target=gateway", "preprocess": "serve --target=preprocess",
		"version": "serve --target=version", "train": "serve --target=train", "promote": "serve --target=promote",
	}
	for _, name := range []string{"pubsub", "fake-gcs", "mongo", "prometheus", "grafana"} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	refitServices := map[string]bool{}
	for name, s := range p.Services {
		if s.Image == "" || strings.HasSuffix(s.Image, ":latest") || !strings.Contains(s.Image[strings.LastIndex(s.Image, "/")+1:], ":") {
			t.Errorf("%s: image %q must carry a tag other than latest", name, s.Image)
		}
		if s.Image != "refit:dev" {
			continue
		}
		refitServices[name] = true
		if s.Build == nil || s.Build.Dockerfile != "deploy/Dockerfile" {
			t.Errorf("%s: must build deploy/Dockerfile", name)
		}
		cmd := strings.Join(s.Command, " ")
		if len(s.Entrypoint) > 0 {
			t.Errorf("%s overrides the entrypoint", name)
		}
		if want[name] != cmd {
			t.Errorf("%s: command %q, want %q", name, cmd, want[name])
		}
		if len(s.Command) == 2 && s.Command[0] == "serve" && !slices.Contains(targets, strings.TrimPrefix(s.Command[1], "--target=")) {
			t.Errorf("%s: unknown target in %q", name, cmd)
		}
		env := s.Environment
		for k, v := range map[string]string{"REFIT_PROFILE": "gcp", "REFIT_HTTP_ADDR": ":8080", "PUBSUB_EMULATOR_HOST": "pubsub:8085",
			"STORAGE_EMULATOR_HOST": "fake-gcs:4443", "REFIT_TOPIC_PREFIX": "refit"} {
			if env[k] == nil || *env[k] != v {
				t.Errorf("%s: %s must be %q", name, k, v)
			}
		}
		for _, k := range []string{"REFIT_GCP_PROJECT", "REFIT_BUCKET", "REFIT_MONGODB_URI", "REFIT_MONGODB_DATABASE"} {
			if env[k] == nil || *env[k] == "" {
				t.Errorf("%s: %s missing", name, k)
			}
		}
		for k := range env {
			if !slices.Contains(knownSettings, k) && !slices.Contains(secretSettings, k) {
				t.Errorf("%s: %s is not a setting the binary reads", name, k)
			}
		}
		if env["REFIT_ADMIN_TOKEN"] == nil || *env["REFIT_ADMIN_TOKEN"] != token {
			t.Errorf("%s: REFIT_ADMIN_TOKEN must come from the environment", name)
		}
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || len(s.Tmpfs) == 0 {
			t.Errorf("%s: want read_only, cap_drop ALL and a tmpfs /tmp", name)
		}
		if name == "setup" {
			for _, dep := range []string{"pubsub", "fake-gcs", "mongo"} {
				if d, ok := s.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
					t.Errorf("setup must wait for %s to be healthy", dep)
				}
				if hc := p.Services[dep].HealthCheck; hc == nil || len(hc.Test) == 0 {
					t.Errorf("%s needs a healthcheck (setup waits on it)", dep)
				}
			}
			if s.Restart != "no" {
				t.Errorf("setup is one-shot: restart %q", s.Restart)
			}
		} else if d, ok := s.DependsOn["setup"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s must start after setup completed successfully", name)
		}
	}
	for name := range want {
		if !refitServices[name] {
			t.Errorf("no refit service %s", name)
		}
	}
	if tr := p.Services["train"]; tr.Deploy == nil || tr.Deploy.Replicas == nil || *tr.Deploy.Replicas != 2 {
		t.Errorf("train: want two replicas")
	}
	gw := p.Services["gateway"]
	if len(gw.Ports) != 1 || gw.Ports[0].Target != 8080 || gw.Ports[0].Published != "8080" {
		t.Errorf("gateway: publish 8080, have %+v", gw.Ports)
	}

	// The admin token is never a value in the repository.
	raw, err := os.ReadFile(filepath.Join(root(t), "docker-compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "REFIT_ADMIN_TOKEN: ${REFIT_ADMIN_TOKEN:?") {
		t.Error("REFIT_ADMIN_TOKEN must be interpolated from the environment with :? (required)")
	}
	if _, err := loadCompose(t); err == nil || !strings.Contains(err.Error(), "REFIT_ADMIN_TOKEN") {
		t.Errorf("loading without REFIT_ADMIN_TOKEN must fail naming it, got %v", err)
	}

	// Prometheus scrapes exactly the long-running refit services.
	var prom struct {
		ScrapeConfigs []struct {
			JobName      string `json:"job_name"`
			DNSSDConfigs []struct {
				Names []string `json:"names"`
				Port  int      `json:"port"`
			} `json:"dns_sd_configs"`
		} `json:"scrape_configs"`
	}
	b, err := os.ReadFile(filepath.Join(root(t), "deploy/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &prom); err != nil {
		t.Fatal(err)
	}
	var scraped []string
	for _, sc := range prom.ScrapeConfigs {
		if sc.JobName != "refit" {
			continue
		}
		for _, d := range sc.DNSSDConfigs {
			if d.Port != 8080 {
				t.Errorf("scrape port %d, want 8080", d.Port)
			}
			scraped = append(scraped, d.Names...)
		}
	}
	var long []string
	for name := range refitServices {
		if name != "setup" {
			long = append(long, name)
		}
	}
	slices.Sort(scraped)
	slices.Sort(long)
	if !slices.Equal(scraped, long) {
		t.Errorf("prometheus.yml scrapes %v, compose runs %v", scraped, long)
	}
}
