package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestPromtool(t *testing.T) {
	// promtool stays a non-Go program: as a go tool, prometheus/cmd/promtool
	// would upgrade client_golang, otel and ~40 more modules Refit builds with.
	promtool := need(t, "promtool", requirePromtool)
	dir := filepath.Join(root(t), "deploy/prometheus")
	t.Run("check rules", func(t *testing.T) { run(t, dir, nil, promtool, "check", "rules", "alerts.yml") })
	t.Run("test rules", func(t *testing.T) { run(t, dir, nil, promtool, "test", "rules", "alerts_test.yml") })
	t.Run("check config", func(t *testing.T) {
		// prometheus.yml names the rule file where compose mounts it.
		b, err := os.ReadFile(filepath.Join(dir, "prometheus.yml"))
		if err != nil {
			t.Fatal(err)
		}
		const mounted = "/etc/prometheus/alerts.yml"
		if !strings.Contains(string(b), mounted) {
			t.Fatalf("prometheus.yml must load %s", mounted)
		}
		tmp := t.TempDir()
		cfg := strings.ReplaceAll(string(b), mounted, filepath.Join(dir, "alerts.yml"))
		if err := os.WriteFile(filepath.Join(tmp, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, tmp, nil, promtool, "check", "config", "prometheus.yml")
	})
	t.Run("dashboard and KEDA queries parse", func(t *testing.T) {
		// promtool has no expression checker: each query becomes a
		// recording rule.
		var rules strings.Builder
		rules.WriteString("groups:\n  - name: queries\n    rules:\n")
		for i, q := range append(dashboardQueries(t), kedaQueries(t)...) {
			fmt.Fprintf(&rules, "      - record: query:%d\n        expr: %s\n", i, quote(q.expr))
		}
		path := filepath.Join(t.TempDir(), "queries.yml")
		if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "", nil, promtool, "check", "rules", path)
	})
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

type query struct{ where, expr string }

// grafanaVars turns a dashboard query into plain PromQL.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", `"$dataset"`, `".*"`)

func dashboard(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "deploy/grafana/refit.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("refit.json: %v", err)
	}
	return d
}

// dashboardQueries collects every PromQL expression of the dashboard:
// panel targets, annotations, and the variables' label_values metric.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	d := dashboard(t)
	var out []query
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "definition") {
					if m := regexp.MustCompile(`^label_values\(([^,]+),\s*\w+\)$`).FindStringSubmatch(s); m != nil {
						s = m[1]
					}
					if strings.Contains(s, "$") && !strings.Contains(grafanaVars.Replace(s), "$") {
						s = grafanaVars.Replace(s)
					}
					out = append(out, query{path + "." + k, s})
					continue
				}
				walk(path+"."+k, x)
			}
		case []any:
			for i, x := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), x)
			}
		}
	}
	walk("refit.json", d)
	for _, q := range out {
		if strings.Contains(q.expr, "$") {
			t.Errorf("%s: unknown Grafana variable in %q", q.where, q.expr)
		}
	}
	if len(out) < 20 {
		t.Fatalf("found only %d queries in the dashboard", len(out))
	}
	return out
}

func kedaQueries(t *testing.T) []query {
	var out []query
	for _, o := range render(t, "gke") {
		if o.Kind == "ScaledObject" || o.Kind == "ScaledJob" {
			for _, tr := range kedaSpec(t, o).Triggers {
				out = append(out, query{o.id(), tr.Metadata["query"]})
			}
		}
	}
	return out
}

// alertRules reads deploy/prometheus/alerts.yml, the source of truth.
func alertRules(t *testing.T) []any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "deploy/prometheus/alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []any `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.Groups
}

func alertQueries(t *testing.T) []query {
	var out []query
	for _, g := range alertRules(t) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			r := r.(map[string]any)
			out = append(out, query{fmt.Sprint("alerts.yml ", r["alert"]), r["expr"].(string)})
		}
	}
	return out
}

// TestAlertRulesAgree: the PrometheusRule and the GlobalRules carry
// alerts.yml's groups. REFIT_UPDATE_RULES=1 rewrites them from it.
func TestAlertRulesAgree(t *testing.T) {
	groups := alertRules(t)
	files := []struct{ path, apiVersion, kind, namespace string }{
		{"deploy/k8s/components/kube-prometheus/prometheusrule.yaml", "monitoring.coreos.com/v1", "PrometheusRule", "refit-ml"},
		{"deploy/k8s/components/gmp/globalrules.yaml", "monitoring.googleapis.com/v1", "GlobalRules", ""},
	}
	for _, f := range files {
		path := filepath.Join(root(t), f.path)
		if os.Getenv("REFIT_UPDATE_RULES") == "1" {
			md := map[string]any{"name": "refit", "labels": map[string]string{"app.kubernetes.io/part-of": "refit"}}
			if f.namespace != "" {
				md["namespace"] = f.namespace
			}
			b, err := yaml.Marshal(map[string]any{"apiVersion": f.apiVersion, "kind": f.kind, "metadata": md, "spec": map[string]any{"groups": groups}})
			if err != nil {
				t.Fatal(err)
			}
			head := "# Generated from deploy/prometheus/alerts.yml by\n# REFIT_UPDATE_RULES=1 go test ./deploy/ -run TestAlertRulesAgree: edit that file, not this one.\n"
			if err := os.WriteFile(path, append([]byte(head), b...), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var obj struct {
			Spec struct {
				Groups []any `json:"groups"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(b, &obj); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(obj.Spec.Groups, groups) {
			t.Errorf("%s differs from deploy/prometheus/alerts.yml: run REFIT_UPDATE_RULES=1 go test ./deploy/ -run TestAlertRulesAgree", f.path)
		}
	}
}

func TestDashboard(t *testing.T) {
	d := dashboard(t)
	if d["uid"] != "refit" || d["title"] == "" {
		t.Errorf("dashboard needs uid refit and a title")
	}
	// Every panel's datasource is the provisioned one.
	prov, err := os.ReadFile(filepath.Join(root(t), "deploy/grafana/provisioning/datasources/prometheus.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ds struct {
		Datasources []struct {
			UID  string `json:"uid"`
			Type string `json:"type"`
			URL  string `json:"url"`
		} `json:"datasources"`
	}
	if err := yaml.Unmarshal(prov, &ds); err != nil || len(ds.Datasources) != 1 {
		t.Fatalf("datasource provisioning: %v", err)
	}
	uids := regexp.MustCompile(`"uid":\s*"([^"]+)"`).FindAllStringSubmatch(mustJSON(t, d["panels"]), -1)
	if len(uids) == 0 {
		t.Fatal("panels name no datasource")
	}
	for _, m := range uids {
		if m[1] != ds.Datasources[0].UID {
			t.Errorf("a panel uses datasource %q, provisioned is %q", m[1], ds.Datasources[0].UID)
		}
	}
	// The provider's folder is where compose mounts the dashboard.
	compose, err := os.ReadFile(filepath.Join(root(t), "docker-compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	provider, err := os.ReadFile(filepath.Join(root(t), "deploy/grafana/provisioning/dashboards/refit.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`path:\s*(\S+)`).FindStringSubmatch(string(provider))
	if m == nil || !strings.Contains(string(compose), "./deploy/grafana/refit.json:"+m[1]+"/refit.json") {
		t.Errorf("compose must mount deploy/grafana/refit.json into the provider's path %v", m)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
