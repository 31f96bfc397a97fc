package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	monv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/santhosh-tekuri/jsonschema/v6"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/bus"
)

// object is one rendered Kubernetes object.
type object struct {
	APIVersion, Kind, Name, Namespace string
	Labels, Annotations               map[string]string
	YAML                              []byte
	// Typed is the object decoded strictly into its API type (nil for the
	// custom resources checked against a schema).
	Typed any
}

func (o object) id() string { return fmt.Sprintf("%s %s/%s", o.Kind, o.Namespace, o.Name) }

var (
	renderMu    sync.Mutex
	renderCache = map[string][]object{}
)

// overlays lists deploy/k8s/overlays/*: every one is rendered and checked.
func overlays(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root(t), "deploy/k8s/overlays"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	if len(out) < 2 {
		t.Fatalf("want the gke and local overlays at least, have %v", out)
	}
	return out
}

// render builds an overlay as `kustomize build` does, with krusty, the
// library that command runs (the version go.mod's kustomize tool pins), and
// decodes every object strictly into its type: an unknown or misplaced
// field fails. In the test process, not through `go tool kustomize`: that
// compiled kustomize's command line a second time, without -race, which
// measured alone cost 62 CPU-seconds against 36 here (no gain showed in
// a whole cold `make test`, whose run-to-run drift is larger).
func render(t *testing.T, overlay string) []object {
	t.Helper()
	renderMu.Lock()
	defer renderMu.Unlock()
	if objs, ok := renderCache[overlay]; ok {
		return objs
	}
	out := kustomizeBuild(t, filepath.Join(root(t), "deploy/k8s/overlays", overlay))
	var objs []object
	for _, doc := range splitYAML(out) {
		o, err := decodeObject(t, doc)
		if err != nil {
			t.Fatalf("overlay %s: %v\n%s", overlay, err, doc)
		}
		objs = append(objs, o)
	}
	if len(objs) == 0 {
		t.Fatalf("overlay %s rendered nothing", overlay)
	}
	renderCache[overlay] = objs
	return objs
}

// kustomizeBuild is `kustomize build dir` with the command's defaults: the
// kustomization's sortOptions, else the legacy order (namespaces first).
func kustomizeBuild(t *testing.T, dir string) string {
	t.Helper()
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionUnspecified
	m, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	y, err := m.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return string(y)
}

func splitYAML(s string) []string {
	var docs []string
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(s, -1) {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}

// builtin maps apiVersion/kind to the Go type the object must decode into.
func builtin(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1/Service":
		return &corev1.Service{}
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "batch/v1/Job":
		return &batchv1.Job{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "networking.k8s.io/v1/Ingress":
		return &networkingv1.Ingress{}
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monv1.ServiceMonitor{}
	case "monitoring.coreos.com/v1/PrometheusRule":
		return &monv1.PrometheusRule{}
	}
	return nil
}

// crdSchemas are the custom resources checked against
// testdata/crds/<group>_<version>_<kind>.json (KEDA's after KEDA's own CRD,
// keda_crd_test.go).
var crdSchemas = map[string]bool{
	"keda.sh/v1alpha1/ScaledObject":              true,
	"keda.sh/v1alpha1/ScaledJob":                 true,
	"keda.sh/v1alpha1/TriggerAuthentication":     true,
	"monitoring.googleapis.com/v1/PodMonitoring": true,
	"monitoring.googleapis.com/v1/GlobalRules":   true,
}

var (
	schemaMu    sync.Mutex
	schemaCache = map[string]*jsonschema.Schema{}
)

func crdSchema(t *testing.T, apiVersion, kind string) *jsonschema.Schema {
	t.Helper()
	schemaMu.Lock()
	defer schemaMu.Unlock()
	name := strings.ReplaceAll(apiVersion, "/", "_") + "_" + kind + ".json"
	if s, ok := schemaCache[name]; ok {
		return s
	}
	path := filepath.Join(root(t), "deploy/testdata/crds", name)
	c := jsonschema.NewCompiler()
	s, err := c.Compile(path)
	if err != nil {
		t.Fatalf("schema %s: %v", name, err)
	}
	schemaCache[name] = s
	return s
}

// strict decodes YAML as the API server does: field names are
// case-sensitive, unknown and duplicate fields are errors.
// (sigs.k8s.io/yaml's UnmarshalStrict matches names case-insensitively.)
func strict(doc []byte, into any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(js, into, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		return fmt.Errorf("%v", strictErrs)
	}
	return nil
}

func decodeObject(t *testing.T, doc string) (object, error) {
	var head struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
	}
	if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
		return object{}, err
	}
	o := object{APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, Namespace: head.Metadata.Namespace,
		Labels: head.Metadata.Labels, Annotations: head.Metadata.Annotations, YAML: []byte(doc)}
	if errs := validation.IsDNS1123Subdomain(o.Name); len(errs) > 0 {
		return o, fmt.Errorf("%s: name: %v", o.id(), errs)
	}
	for k, v := range o.Labels {
		if errs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(errs) > 0 {
			return o, fmt.Errorf("%s: label %s=%s: %v", o.id(), k, v, errs)
		}
	}
	gvk := o.APIVersion + "/" + o.Kind
	if typed := builtin(o.APIVersion, o.Kind); typed != nil {
		if err := strict([]byte(doc), typed); err != nil {
			return o, fmt.Errorf("%s does not decode strictly into %T: %w", o.id(), typed, err)
		}
		o.Typed = typed
		return o, nil
	}
	if !crdSchemas[gvk] {
		return o, fmt.Errorf("%s: no Go type or schema for %s: add one to the test", o.id(), gvk)
	}
	js, err := yaml.YAMLToJSONStrict([]byte(doc))
	if err != nil {
		return o, err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return o, err
	}
	if strings.HasPrefix(o.APIVersion, "keda.sh/") {
		// Every KEDA object any overlay renders, so one added later is covered.
		s := kedaCRDSchema(t, o.APIVersion, o.Kind)
		if s == nil {
			return o, fmt.Errorf("%s: KEDA %s has no %s", o.id(), kedaModule, gvk)
		}
		if err := s.Validate(inst); err != nil {
			return o, fmt.Errorf("%s does not match KEDA's CRD (strict): %v", o.id(), err)
		}
	}
	if err := crdSchema(t, o.APIVersion, o.Kind).Validate(inst); err != nil {
		return o, fmt.Errorf("%s does not match testdata/crds schema: %v", o.id(), err)
	}
	if o.Kind == "ScaledJob" {
		var sj struct {
			Spec struct {
				JobTargetRef json.RawMessage `json:"jobTargetRef"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(js, &sj); err != nil {
			return o, err
		}
		var spec batchv1.JobSpec
		if err := strict(sj.Spec.JobTargetRef, &spec); err != nil {
			return o, fmt.Errorf("%s: jobTargetRef does not decode strictly into batch/v1 JobSpec: %w", o.id(), err)
		}
		o.Typed = &spec
	}
	return o, nil
}

// scaled decodes the KEDA objects the tests look into.
type scaledSpec struct {
	ScaleTargetRef  struct{ Name string } `json:"scaleTargetRef"`
	MinReplicaCount *int32                `json:"minReplicaCount"`
	MaxReplicaCount *int32                `json:"maxReplicaCount"`
	Triggers        []struct {
		Type              string            `json:"type"`
		Metadata          map[string]string `json:"metadata"`
		AuthenticationRef struct {
			Name string `json:"name"`
			Kind string `json:"kind"`
		} `json:"authenticationRef"`
	} `json:"triggers"`
	PodIdentity struct {
		Provider string `json:"provider"`
	} `json:"podIdentity"`
}

func kedaSpec(t *testing.T, o object) scaledSpec {
	t.Helper()
	var v struct {
		Spec scaledSpec `json:"spec"`
	}
	if err := yaml.Unmarshal(o.YAML, &v); err != nil {
		t.Fatal(err)
	}
	return v.Spec
}

// workload is a pod template and where it came from.
type workload struct {
	obj       object
	template  corev1.PodTemplateSpec
	selector  *metav1.LabelSelector
	longLived bool // serves until stopped: needs probes
}

func workloads(objs []object) []workload {
	var out []workload
	for _, o := range objs {
		switch v := o.Typed.(type) {
		case *appsv1.Deployment:
			out = append(out, workload{o, v.Spec.Template, v.Spec.Selector, true})
		case *batchv1.Job:
			out = append(out, workload{o, v.Spec.Template, v.Spec.Selector, false})
		case *batchv1.JobSpec: // a ScaledJob's: runs serve until idle
			out = append(out, workload{o, v.Template, nil, true})
		}
	}
	return out
}

// isRefit tells Refit's image from third-party ones (emulators).
func isRefit(image string) bool {
	repo := image
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return repo == "refit" || strings.HasSuffix(repo, "/refit")
}

var targets = []string{"gateway", "preprocess", "version", "train", "promote"}

func TestOverlaysRenderAndDecodeStrictly(t *testing.T) {
	for _, ov := range overlays(t) {
		t.Run(ov, func(t *testing.T) {
			objs := render(t, ov)
			seen := map[string]bool{}
			for _, o := range objs {
				if seen[o.id()] {
					t.Errorf("%s twice", o.id())
				}
				seen[o.id()] = true
				if o.Kind == "Secret" {
					t.Errorf("%s: secrets are created by the operator (refit-secrets), never rendered from the repository", o.id())
				}
				if o.Kind != "Namespace" && o.Namespace == "" && o.Kind != "GlobalRules" {
					t.Errorf("%s has no namespace", o.id())
				}
			}
		})
	}
}

func TestWorkloadsAreHardened(t *testing.T) {
	for _, ov := range overlays(t) {
		t.Run(ov, func(t *testing.T) {
			objs := render(t, ov)
			found := map[string]bool{}
			for _, w := range workloads(objs) {
				checkWorkload(t, ov, w, found)
			}
			for _, target := range targets {
				if !found[target] {
					t.Errorf("no workload runs --target=%s", target)
				}
			}
		})
	}
}

func checkWorkload(t *testing.T, overlay string, w workload, found map[string]bool) {
	t.Helper()
	id := w.obj.id()
	pod := w.template.Spec
	errorf := func(format string, args ...any) { t.Errorf(id+": "+format, args...) }
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		if !regexp.MustCompile(`^[^:@]+(:[A-Za-z0-9_][A-Za-z0-9_.-]*)$`).MatchString(c.Image) || strings.HasSuffix(c.Image, ":latest") {
			errorf("container %s: image %q must be pinned to a tag other than latest", c.Name, c.Image)
		}
	}
	refit := false
	for _, c := range pod.Containers {
		refit = refit || isRefit(c.Image)
	}
	if !refit {
		return // third-party (the local emulators): pinned images are what we require
	}
	if w.selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(w.selector)
		if err != nil || !sel.Matches(labels.Set(w.template.Labels)) {
			errorf("selector %v does not match the pod labels %v", w.selector, w.template.Labels)
		}
	}
	for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/part-of"} {
		if w.template.Labels[l] == "" || w.obj.Labels[l] == "" {
			errorf("label %s missing on the object or its pods", l)
		}
	}
	if pod.ServiceAccountName != "refit" {
		errorf("serviceAccountName %q, want refit (Workload Identity)", pod.ServiceAccountName)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		errorf("automountServiceAccountToken must be false: Refit does not call the Kubernetes API")
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		errorf("pod securityContext must set runAsNonRoot, a non-zero runAsUser and seccompProfile RuntimeDefault: %+v", psc)
	}
	tmpVolumes := map[string]bool{}
	for _, v := range pod.Volumes {
		if v.EmptyDir != nil {
			tmpVolumes[v.Name] = true
		}
	}
	if len(pod.Containers) != 1 {
		errorf("want one container, have %d", len(pod.Containers))
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
			!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 ||
			sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || (sc.Privileged != nil && *sc.Privileged) {
			errorf("container %s securityContext must be runAsNonRoot, readOnlyRootFilesystem, allowPrivilegeEscalation false, drop ALL, seccomp RuntimeDefault: %+v", c.Name, sc)
		}
		tmp := false
		for _, m := range c.VolumeMounts {
			tmp = tmp || (m.MountPath == "/tmp" && tmpVolumes[m.Name])
		}
		if !tmp {
			errorf("container %s: /tmp must be an emptyDir (the root filesystem is read-only)", c.Name)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, okReq := c.Resources.Requests[r]
			lim, okLim := c.Resources.Limits[r]
			if !okReq || !okLim || req.IsZero() || lim.Cmp(req) < 0 {
				errorf("container %s: %s request and limit required, limit >= request (have %v / %v)", c.Name, r, c.Resources.Requests, c.Resources.Limits)
			}
		}
		// The command: a target that exists, or setup.
		var target string
		switch {
		case len(c.Args) == 2 && c.Args[0] == "serve" && strings.HasPrefix(c.Args[1], "--target="):
			target = strings.TrimPrefix(c.Args[1], "--target=")
			if !slices.Contains(targets, target) && target != "scaler" {
				errorf("unknown target %q", target)
			}
			found[target] = true
			if want := w.template.Labels["app.kubernetes.io/component"]; want != target {
				errorf("component label %q but runs --target=%s", want, target)
			}
			ns := "refit-ml"
			if target == "gateway" || target == "scaler" {
				ns = "refit-web"
			}
			if w.obj.Namespace != ns {
				errorf("--target=%s belongs in namespace %s", target, ns)
			}
		case slices.Equal(c.Args, []string{"setup"}):
		default:
			errorf("container %s: args %q: want serve --target=<one target> or setup", c.Name, c.Args)
		}
		if len(c.Command) > 0 {
			errorf("container %s overrides the image's entrypoint: %q", c.Name, c.Command)
		}
		if w.longLived {
			checkProbe(t, id, "readiness", c.ReadinessProbe, "/readyz")
			checkProbe(t, id, "liveness", c.LivenessProbe, "/healthz")
		}
		checkEnv(t, id, c, target)
	}
}

func checkProbe(t *testing.T, id, kind string, p *corev1.Probe, path string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path ||
		!(p.HTTPGet.Port.StrVal == "http" || p.HTTPGet.Port.IntVal == 8080) {
		t.Errorf("%s: %s probe must GET %s on port 8080 (http): %+v", id, kind, path, p)
	}
}

// secretSettings never appear as values: they come from refit-secrets.
var secretSettings = []string{"REFIT_MONGODB_URI", "REFIT_ADMIN_TOKEN", "REFIT_WEBHOOK_SECRET"}

func checkEnv(t *testing.T, id string, c corev1.Container, target string) {
	t.Helper()
	if target == "scaler" {
		return // the predictive scaler reads only Prometheus: no stack settings, no secrets
	}
	fromSecret := map[string]bool{}
	configMap := false
	for _, e := range c.EnvFrom {
		if e.SecretRef != nil {
			t.Errorf("%s: envFrom a Secret hands every key to the pod; use secretKeyRef per setting", id)
		}
		configMap = configMap || (e.ConfigMapRef != nil && strings.HasPrefix(e.ConfigMapRef.Name, "refit-config"))
	}
	if !configMap {
		t.Errorf("%s: settings must come from the refit-config ConfigMap", id)
	}
	for _, e := range c.Env {
		if slices.Contains(secretSettings, e.Name) {
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
				e.ValueFrom.SecretKeyRef.Name != "refit-secrets" || e.ValueFrom.SecretKeyRef.Key != e.Name {
				t.Errorf("%s: %s must come from secretKeyRef refit-secrets/%s", id, e.Name, e.Name)
			}
			fromSecret[e.Name] = true
		}
	}
	if !fromSecret["REFIT_MONGODB_URI"] {
		t.Errorf("%s: REFIT_MONGODB_URI must come from refit-secrets", id)
	}
	if (target == "gateway") != fromSecret["REFIT_ADMIN_TOKEN"] {
		t.Errorf("%s: REFIT_ADMIN_TOKEN goes to the gateway, and only to it", id)
	}
}

// knownSettings are the environment variables the refit binary reads
// (cmd/refit/config.go), plus the emulators' standard ones.
var knownSettings = []string{
	"REFIT_PROFILE", "REFIT_GCP_PROJECT", "REFIT_BUCKET", "REFIT_TOPIC_PREFIX", "REFIT_MONGODB_DATABASE",
	"REFIT_HTTP_ADDR", "REFIT_LOG_FORMAT", "REFIT_LOG_LEVEL", "REFIT_RECONCILE_INTERVAL", "REFIT_MODEL_REFRESH",
	"REFIT_DATASETS_DIR", "REFIT_DATA_DIR", "REFIT_WATCH_INTERVAL", "REFIT_PREDICT_AUTH", "REFIT_CORRECTIONS_AUTH",
	"REFIT_WEBHOOKS", "REFIT_EXIT_WHEN_IDLE", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST",
}

func TestConfigAndServiceWiring(t *testing.T) {
	for _, ov := range overlays(t) {
		t.Run(ov, func(t *testing.T) {
			objs := render(t, ov)
			byKind := map[string][]object{}
			for _, o := range objs {
				byKind[o.Kind] = append(byKind[o.Kind], o)
			}
			for _, ns := range []string{"refit-web", "refit-ml"} {
				var cm *corev1.ConfigMap
				sa := false
				for _, o := range objs {
					if o.Namespace != ns {
						continue
					}
					if c, ok := o.Typed.(*corev1.ConfigMap); ok && strings.HasPrefix(o.Name, "refit-config") {
						cm = c
					}
					sa = sa || (o.Kind == "ServiceAccount" && o.Name == "refit")
				}
				if !sa {
					t.Errorf("namespace %s has no ServiceAccount refit", ns)
				}
				if cm == nil {
					t.Errorf("namespace %s has no refit-config ConfigMap", ns)
					continue
				}
				for k := range cm.Data {
					if !slices.Contains(knownSettings, k) {
						t.Errorf("%s/refit-config: %s is not a setting the binary reads (secrets go to refit-secrets)", ns, k)
					}
				}
				for _, k := range []string{"REFIT_PROFILE", "REFIT_GCP_PROJECT", "REFIT_BUCKET", "REFIT_TOPIC_PREFIX", "REFIT_MONGODB_DATABASE"} {
					if cm.Data[k] == "" {
						t.Errorf("%s/refit-config: %s missing", ns, k)
					}
				}
			}
			// Every Deployment of Refit has a PodDisruptionBudget; every
			// Service and PDB selects pods that exist.
			templates := map[string][]corev1.PodTemplateSpec{}
			for _, w := range workloads(objs) {
				templates[w.obj.Namespace] = append(templates[w.obj.Namespace], w.template)
			}
			matches := func(ns string, sel labels.Selector) int {
				n := 0
				for _, tpl := range templates[ns] {
					if sel.Matches(labels.Set(tpl.Labels)) {
						n++
					}
				}
				return n
			}
			for _, o := range byKind["Deployment"] {
				d := o.Typed.(*appsv1.Deployment)
				if !isRefit(d.Spec.Template.Spec.Containers[0].Image) {
					continue
				}
				covered := false
				for _, p := range byKind["PodDisruptionBudget"] {
					pdb := p.Typed.(*policyv1.PodDisruptionBudget)
					sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
					if err != nil {
						t.Fatal(err)
					}
					covered = covered || (p.Namespace == o.Namespace && sel.Matches(labels.Set(d.Spec.Template.Labels)))
				}
				if !covered {
					t.Errorf("%s has no PodDisruptionBudget", o.id())
				}
			}
			for _, p := range byKind["PodDisruptionBudget"] {
				sel, _ := metav1.LabelSelectorAsSelector(p.Typed.(*policyv1.PodDisruptionBudget).Spec.Selector)
				if matches(p.Namespace, sel) == 0 {
					t.Errorf("%s selects no pods", p.id())
				}
			}
			services := map[string]*corev1.Service{}
			for _, o := range byKind["Service"] {
				svc := o.Typed.(*corev1.Service)
				services[o.Namespace+"/"+o.Name] = svc
				if matches(o.Namespace, labels.SelectorFromSet(svc.Spec.Selector)) == 0 && !(ov == "gke" && o.Name == "train") {
					// On GKE train pods exist only while a Job runs.
					t.Errorf("%s selects no pods", o.id())
				}
			}
			for _, o := range byKind["Ingress"] {
				ing := o.Typed.(*networkingv1.Ingress)
				b := ing.Spec.DefaultBackend
				if b == nil || b.Service == nil || services[o.Namespace+"/"+b.Service.Name] == nil {
					t.Errorf("%s: backend must be an existing Service", o.id())
				} else if o.Namespace != "refit-web" || b.Service.Name != "gateway" {
					t.Errorf("%s: only the gateway is exposed", o.id())
				}
			}
			if len(byKind["Ingress"]) != 1 {
				t.Errorf("want one Ingress (the gateway's), have %d", len(byKind["Ingress"]))
			}
			// Emulator addresses point at Services of the overlay.
			for _, o := range byKind["ConfigMap"] {
				for _, k := range []string{"PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"} {
					v, ok := o.Typed.(*corev1.ConfigMap).Data[k]
					if !ok {
						continue
					}
					host, _, _ := strings.Cut(v, ":")
					parts := strings.Split(host, ".")
					if len(parts) < 2 || services[parts[1]+"/"+parts[0]] == nil {
						t.Errorf("%s: %s=%s names no Service of this overlay", o.id(), k, v)
					}
				}
			}
		})
	}
}

func TestNetworkPolicies(t *testing.T) {
	monitoring := []string{"gmp-system", "monitoring"}
	for _, ov := range overlays(t) {
		t.Run(ov, func(t *testing.T) {
			objs := render(t, ov)
			denyAll := map[string]bool{}
			for _, o := range objs {
				np, ok := o.Typed.(*networkingv1.NetworkPolicy)
				if !ok {
					continue
				}
				if len(np.Spec.PodSelector.MatchLabels)+len(np.Spec.PodSelector.MatchExpressions) == 0 && len(np.Spec.Ingress) == 0 &&
					slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
					denyAll[o.Namespace] = true
					continue
				}
				// The predictive scaler admits KEDA's operator on its gRPC port.
				scaler := np.Spec.PodSelector.MatchLabels["app.kubernetes.io/component"] == "scaler"
				for _, rule := range np.Spec.Ingress {
					if len(rule.From) == 0 {
						t.Errorf("%s: a rule without from admits everyone", o.id())
					}
					for _, p := range rule.Ports {
						if p.Port == nil || (p.Port.IntValue() != 8080 && !(scaler && p.Port.IntValue() == 9090)) {
							t.Errorf("%s: only port 8080 may be opened, have %v", o.id(), p.Port)
						}
					}
					for _, peer := range rule.From {
						switch {
						case peer.PodSelector != nil && !(scaler && peer.PodSelector.MatchLabels["app"] == "keda-operator"):
							t.Errorf("%s: admits pods by label: %v", o.id(), peer.PodSelector)
						case peer.NamespaceSelector != nil:
							sel, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
							if err != nil {
								t.Fatal(err)
							}
							allowed := monitoring
							if o.Namespace == "refit-web" {
								allowed = append(slices.Clone(monitoring), "ingress-nginx")
							}
							if scaler {
								allowed = []string{"keda"}
							}
							admitsAllowed := false
							for _, ns := range allowed {
								admitsAllowed = admitsAllowed || sel.Matches(labels.Set{"kubernetes.io/metadata.name": ns})
							}
							if !admitsAllowed {
								t.Errorf("%s: namespace selector %v admits none of %v", o.id(), peer.NamespaceSelector, allowed)
							}
							for _, ns := range []string{"default", "kube-system", "refit-ml", "refit-web", "refit-local", "other"} {
								if sel.Matches(labels.Set{"kubernetes.io/metadata.name": ns}) {
									t.Errorf("%s admits namespace %s", o.id(), ns)
								}
							}
							if sel.Empty() {
								t.Errorf("%s admits every namespace", o.id())
							}
						case peer.IPBlock != nil:
							if o.Namespace != "refit-web" || !slices.Contains([]string{"130.211.0.0/22", "35.191.0.0/16"}, peer.IPBlock.CIDR) {
								t.Errorf("%s admits %s: only Google's load balancer ranges reach the gateway", o.id(), peer.IPBlock.CIDR)
							}
						}
					}
				}
			}
			for _, ns := range []string{"refit-ml", "refit-web"} {
				if !denyAll[ns] {
					t.Errorf("namespace %s has no default-deny ingress policy", ns)
				}
			}
		})
	}
}

// pubsubNames are the subscriptions the refit binary's bus uses.
func pubsubNames(t *testing.T) (subscription func(group, topic string) string, topic func(string) string) {
	t.Helper()
	b, err := bus.NewPubSub(context.Background(), bus.PubSubConfig{Project: "p", Endpoint: "127.0.0.1:1"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return func(group, tp string) string { return b.SubscriptionName(group, b.Topic(tp)) }, b.Topic
}

func TestKEDAScaling(t *testing.T) {
	objs := render(t, "gke")
	sub, _ := pubsubNames(t)
	settings := gkeSettings(t)
	server := "https://monitoring.googleapis.com/v1/projects/" + settings["project"] + "/location/global/prometheus"
	auth := map[string]string{}
	deployments := map[string]*appsv1.Deployment{}
	for _, o := range objs {
		switch o.Kind {
		case "TriggerAuthentication":
			auth[o.Namespace+"/"+o.Name] = kedaSpec(t, o).PodIdentity.Provider
		case "Deployment":
			deployments[o.Namespace+"/"+o.Name] = o.Typed.(*appsv1.Deployment)
		}
	}
	// What each scaler must watch.
	want := map[string][]string{
		"refit-ml/preprocess": {sub("preprocess", events.TopicObjectFinalized), sub("preprocess", events.TopicCorrectionSubmitted)},
		"refit-ml/version":    {sub("version", events.TopicRowsStaged)},
		"refit-ml/promote":    {sub("promote", events.TopicModelTrained)},
		"refit-ml/train":      {sub("train", events.TopicDatasetVersioned), sub("train", events.TopicBlobWritten)},
		"refit-web/gateway":   nil,
	}
	seen := map[string]bool{}
	for _, o := range objs {
		if o.Kind != "ScaledObject" && o.Kind != "ScaledJob" {
			continue
		}
		key := o.Namespace + "/" + o.Name
		seen[key] = true
		spec := kedaSpec(t, o)
		if o.Kind == "ScaledObject" {
			d := deployments[o.Namespace+"/"+spec.ScaleTargetRef.Name]
			if d == nil {
				t.Errorf("%s scales %q: no such Deployment in its namespace", o.id(), spec.ScaleTargetRef.Name)
			} else if d.Spec.Replicas != nil {
				t.Errorf("%s: the Deployment sets replicas, which every apply would reset under KEDA", o.id())
			}
			if spec.MinReplicaCount == nil || *spec.MinReplicaCount < 1 {
				t.Errorf("%s: keep at least one replica (reconcile loop, serving)", o.id())
			}
		} else {
			js := o.Typed.(*batchv1.JobSpec)
			c := js.Template.Spec.Containers[0]
			idle := ""
			for _, e := range c.Env {
				if e.Name == "REFIT_EXIT_WHEN_IDLE" {
					idle = e.Value
				}
			}
			if idle == "" || !slices.Equal(c.Args, []string{"serve", "--target=train"}) {
				t.Errorf("%s: a Job's pod must exit: serve --target=train with REFIT_EXIT_WHEN_IDLE (have %q, %q)", o.id(), c.Args, idle)
			}
			if js.Template.Spec.RestartPolicy != corev1.RestartPolicyNever && js.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
				t.Errorf("%s: restartPolicy %q", o.id(), js.Template.Spec.RestartPolicy)
			}
			if spec.MinReplicaCount == nil || *spec.MinReplicaCount != 0 {
				t.Errorf("%s: training scales to zero when idle", o.id())
			}
		}
		if key == "refit-web/gateway" {
			// The reactive trigger first, then refit-scaler's forecast.
			if n := len(spec.Triggers); n != 2 || spec.Triggers[1].Type != "external" ||
				spec.Triggers[1].Metadata["scalerAddress"] != "refit-scaler.refit-web.svc.cluster.local:9090" ||
				!strings.Contains(spec.Triggers[1].Metadata["query"], "rate(prediction_requests_total") || spec.Triggers[1].Metadata["horizon"] == "" {
				t.Errorf("%s: want the prometheus trigger and the external refit-scaler one, have %+v", o.id(), spec.Triggers)
				continue
			}
			spec.Triggers = spec.Triggers[:1]
		}
		if len(spec.Triggers) != 1 {
			t.Errorf("%s: want one trigger", o.id())
			continue
		}
		tr := spec.Triggers[0]
		if tr.Type != "prometheus" {
			t.Errorf("%s: trigger %q: use the prometheus scaler against Managed Prometheus (gcp-pubsub is deprecated)", o.id(), tr.Type)
		}
		if tr.Metadata["serverAddress"] != server {
			t.Errorf("%s: serverAddress %q, want %q", o.id(), tr.Metadata["serverAddress"], server)
		}
		if p, ok := auth[o.Namespace+"/"+tr.AuthenticationRef.Name]; !ok || p != "gcp" || (tr.AuthenticationRef.Kind != "" && tr.AuthenticationRef.Kind != "TriggerAuthentication") {
			t.Errorf("%s: authenticationRef %q must name a TriggerAuthentication with podIdentity gcp in its namespace", o.id(), tr.AuthenticationRef.Name)
		}
		q := tr.Metadata["query"]
		subs, ok := want[key]
		if !ok {
			t.Errorf("%s: unexpected scaler", o.id())
			continue
		}
		if subs == nil {
			if !strings.Contains(q, "rate(prediction_requests_total") {
				t.Errorf("%s: the gateway scales on rate(prediction_requests_total), query %q", o.id(), q)
			}
			continue
		}
		if !strings.Contains(q, "pubsub_googleapis_com:subscription_num_undelivered_messages") {
			t.Errorf("%s: query %q must read the subscription backlog", o.id(), q)
		}
		all := allSubscriptions(sub)
		match := matchedSubscriptions(t, q)
		if !sameSet(match, subs, all) {
			t.Errorf("%s: query %q watches %v, want exactly %v", o.id(), q, slices.DeleteFunc(slices.Clone(all), func(s string) bool { return !match(s) }), subs)
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("nothing scales %s", k)
		}
	}
}

func allSubscriptions(sub func(group, topic string) string) []string {
	return []string{
		sub("preprocess", events.TopicObjectFinalized), sub("preprocess", events.TopicCorrectionSubmitted),
		sub("version", events.TopicRowsStaged), sub("train", events.TopicDatasetVersioned), sub("train", events.TopicBlobWritten),
		sub("promote", events.TopicModelTrained), sub("dead-letters", events.TopicDeadLetter),
	}
}

// matchedSubscriptions returns the subscription_id matcher of a query as a
// predicate's result over candidates: for = the value, for =~ a regexp.
func matchedSubscriptions(t *testing.T, q string) func(string) bool {
	m := regexp.MustCompile(`subscription_id\s*(=~|=)\s*"([^"]*)"`).FindStringSubmatch(q)
	if m == nil {
		return func(string) bool { return false }
	}
	if m[1] == "=" {
		return func(s string) bool { return s == m[2] }
	}
	re, err := regexp.Compile("^(?:" + m[2] + ")$")
	if err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	return re.MatchString
}

func sameSet(match func(string) bool, want, candidates []string) bool {
	for _, c := range candidates {
		if match(c) != slices.Contains(want, c) {
			return false
		}
	}
	return true
}

func gkeSettings(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "deploy/k8s/overlays/gke/settings.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := strict(b, &cm); err != nil {
		t.Fatal(err)
	}
	return cm.Data
}

func TestGKEOverlayTakesProjectAndBucketFromSettings(t *testing.T) {
	objs := render(t, "gke")
	s := gkeSettings(t)
	if s["project"] == "" || s["bucket"] == "" || s["serviceAccount"] == "" {
		t.Fatalf("settings.yaml needs project, bucket and serviceAccount: %v", s)
	}
	gsa := s["serviceAccount"] + "@" + s["project"] + ".iam.gserviceaccount.com"
	var sas []string
	for _, o := range objs {
		if m := regexp.MustCompile(`\b(PROJECT_ID|BUCKET)\b`).Find(o.YAML); m != nil {
			t.Errorf("%s still holds the placeholder %s", o.id(), m)
		}
		if o.Name == "gke-settings" {
			t.Errorf("%s is local-config: it must not be applied", o.id())
		}
		switch v := o.Typed.(type) {
		case *corev1.ServiceAccount:
			sas = append(sas, o.Namespace)
			if got := v.Annotations["iam.gke.io/gcp-service-account"]; got != gsa {
				t.Errorf("%s: Workload Identity annotation %q, want %q", o.id(), got, gsa)
			}
		case *corev1.ConfigMap:
			if v.Data["REFIT_GCP_PROJECT"] != s["project"] || v.Data["REFIT_BUCKET"] != s["bucket"] {
				t.Errorf("%s: project/bucket %q/%q, want %q/%q", o.id(), v.Data["REFIT_GCP_PROJECT"], v.Data["REFIT_BUCKET"], s["project"], s["bucket"])
			}
			if _, ok := v.Data["PUBSUB_EMULATOR_HOST"]; ok {
				t.Errorf("%s: no emulator on GKE", o.id())
			}
		}
	}
	sort.Strings(sas)
	if !slices.Equal(sas, []string{"refit-ml", "refit-web"}) {
		t.Errorf("want a ServiceAccount in refit-ml and refit-web, have %v", sas)
	}
}

func TestMonitoringObjects(t *testing.T) {
	kinds := func(ov string) map[string]int {
		n := map[string]int{}
		for _, o := range render(t, ov) {
			n[o.Kind]++
		}
		return n
	}
	gke := kinds("gke")
	if gke["PodMonitoring"] != 2 || gke["GlobalRules"] != 1 || gke["ServiceMonitor"] != 0 || gke["PrometheusRule"] != 0 {
		t.Errorf("gke: want Managed Prometheus objects only, have %v", gke)
	}
	kp := kinds("local-kube-prometheus")
	if kp["ServiceMonitor"] != 2 || kp["PrometheusRule"] != 1 || kp["PodMonitoring"] != 0 {
		t.Errorf("local-kube-prometheus: want kube-prometheus objects only, have %v", kp)
	}
	local := kinds("local")
	if local["ServiceMonitor"]+local["PrometheusRule"]+local["PodMonitoring"]+local["GlobalRules"]+local["ScaledObject"]+local["ScaledJob"] != 0 {
		t.Errorf("local: needs no CRD, have %v", local)
	}
	for _, o := range render(t, "local-kube-prometheus") {
		sm, ok := o.Typed.(*monv1.ServiceMonitor)
		if !ok {
			continue
		}
		if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http" || sm.Spec.Endpoints[0].Path != "/metrics" {
			t.Errorf("%s: scrape port http, path /metrics", o.id())
		}
	}
}

// The checks above are only as good as the decoder: it must refuse what
// the API server would.
func TestDecodeRejectsMistakes(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"unknown field in a Deployment", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: c, image: "i:1", readinessprobe: {}}]
`, "readinessprobe"},
		{"misplaced field in a ScaledObject", `
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x}
spec:
  scaleTargetRef: {name: d}
  minReplicas: 1
  triggers: [{type: prometheus, metadata: {serverAddress: s, query: q, threshold: "1"}}]
`, "minReplicas"},
		{"misspelled HPA behavior field, deeper than the schema looks", `
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x}
spec:
  scaleTargetRef: {name: d}
  advanced:
    horizontalPodAutoscalerConfig:
      behavior: {scaleDown: {stabilisationWindowSeconds: 300}}
  triggers: [{type: prometheus, metadata: {serverAddress: s, query: q, threshold: "1"}}]
`, "stabilisationWindowSeconds"},
		{"HPA behavior with a string where KEDA's type has a number", `
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x}
spec:
  scaleTargetRef: {name: d}
  advanced:
    horizontalPodAutoscalerConfig:
      behavior: {scaleUp: {policies: [{type: Pods, value: "four", periodSeconds: 60}]}}
  triggers: [{type: prometheus, metadata: {serverAddress: s, query: q, threshold: "1"}}]
`, "value"},
		{"external trigger with a misplaced field", `
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x}
spec:
  scaleTargetRef: {name: d}
  triggers: [{type: external, metadata: {scalerAddress: "s:9090"}, useCachedMetric: true}]
`, "useCachedMetric"},
		{"prometheus trigger without a query", `
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x}
spec:
  scaleTargetRef: {name: d}
  triggers: [{type: prometheus, metadata: {serverAddress: s, threshold: "1"}}]
`, "query"},
		{"unknown pod identity provider", `
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: x}
spec:
  podIdentity: {provider: google}
`, "provider"},
		{"bad job template in a ScaledJob", `
apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {name: x}
spec:
  jobTargetRef:
    template:
      spec:
        containers: [{name: c, image: "i:1", arg: [x]}]
  triggers: [{type: prometheus, metadata: {serverAddress: s, query: q, threshold: "1"}}]
`, "arg"},
		{"unknown field in a ServiceMonitor", `
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: x}
spec:
  selector: {}
  endpoints: [{port: http, scrapeInterval: 30s}]
`, "scrapeInterval"},
		{"PodMonitoring endpoint without port", `
apiVersion: monitoring.googleapis.com/v1
kind: PodMonitoring
metadata: {name: x}
spec:
  selector: {}
  endpoints: [{path: /metrics}]
`, "port"},
		{"kind nobody knows", `
apiVersion: example.com/v1
kind: Thing
metadata: {name: x}
`, "no Go type or schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeObject(t, tt.doc)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want an error naming %q, got %v", tt.want, err)
			}
		})
	}
}
