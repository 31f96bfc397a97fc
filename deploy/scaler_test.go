package deploy_test

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// peer is a pod that may try to reach the scaler.
type peer struct {
	namespace string
	labels    map[string]string
}

// admits evaluates the rendered NetworkPolicies as Kubernetes does: a pod
// selected by some Ingress policy takes a connection on port when one rule
// of one of them admits the source on that port (a named port resolved on
// the pod's containers).
func admits(t *testing.T, objs []object, ns string, pod map[string]string, ports []corev1.ContainerPort, from peer, port int) bool {
	t.Helper()
	selected := false
	for _, o := range objs {
		np, ok := o.Typed.(*networkingv1.NetworkPolicy)
		if !ok || o.Namespace != ns || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) ||
			!selects(t, &np.Spec.PodSelector, pod) {
			continue
		}
		selected = true
		for _, rule := range np.Spec.Ingress {
			portOK := len(rule.Ports) == 0
			for _, p := range rule.Ports {
				switch {
				case p.Port == nil:
					portOK = true
				case p.Port.IntValue() == port:
					portOK = true
				default:
					for _, cp := range ports {
						portOK = portOK || (cp.Name == p.Port.String() && int(cp.ContainerPort) == port)
					}
				}
			}
			peerOK := len(rule.From) == 0
			for _, f := range rule.From {
				nsLabels := map[string]string{"kubernetes.io/metadata.name": from.namespace}
				switch {
				case f.IPBlock != nil:
				case f.NamespaceSelector != nil && f.PodSelector != nil:
					peerOK = peerOK || (selects(t, f.NamespaceSelector, nsLabels) && selects(t, f.PodSelector, from.labels))
				case f.NamespaceSelector != nil:
					peerOK = peerOK || selects(t, f.NamespaceSelector, nsLabels)
				case f.PodSelector != nil:
					peerOK = peerOK || (from.namespace == ns && selects(t, f.PodSelector, from.labels))
				}
			}
			if portOK && peerOK {
				return true
			}
		}
	}
	return !selected
}

func selects(t *testing.T, s *metav1.LabelSelector, set map[string]string) bool {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel.Matches(labels.Set(set))
}

// TestScalerReachableOnlyByKEDAAndPrometheus: the issue's "NetworkPolicy
// allowing only KEDA's operator and Prometheus", checked by evaluating the
// rendered policies for the scaler's pod, and the scrape that Prometheus is
// let in for selects that pod on that port.
func TestScalerReachableOnlyByKEDAAndPrometheus(t *testing.T) {
	found := false
	for _, ov := range overlays(t) {
		objs := render(t, ov)
		var dep *appsv1.Deployment
		for _, o := range objs {
			if d, ok := o.Typed.(*appsv1.Deployment); ok && o.Name == "refit-scaler" {
				dep = d
			}
		}
		if dep == nil {
			continue
		}
		found = true
		t.Run(ov, func(t *testing.T) {
			ns, pod := dep.Namespace, dep.Spec.Template.Labels
			var ports []corev1.ContainerPort
			for _, c := range dep.Spec.Template.Spec.Containers {
				ports = append(ports, c.Ports...)
			}
			keda := peer{"keda", map[string]string{"app": "keda-operator"}}
			for _, tt := range []struct {
				name string
				from peer
				port int
				want bool
			}{
				{"KEDA's operator on gRPC", keda, 9090, true},
				{"Managed Prometheus's collector on /metrics", peer{"gmp-system", map[string]string{"app.kubernetes.io/name": "collector"}}, 8080, true},
				{"kube-prometheus on /metrics", peer{"monitoring", map[string]string{"app.kubernetes.io/name": "prometheus"}}, 8080, true},
				{"Prometheus on gRPC", peer{"monitoring", map[string]string{"app.kubernetes.io/name": "prometheus"}}, 9090, false},
				{"KEDA's metrics server on gRPC", peer{"keda", map[string]string{"app": "keda-operator-metrics-apiserver"}}, 9090, false},
				{"the gateway", peer{"refit-web", map[string]string{"app.kubernetes.io/name": "refit", "app.kubernetes.io/component": "gateway", "app.kubernetes.io/part-of": "refit"}}, 9090, false},
				{"the ingress controller", peer{"ingress-nginx", nil}, 8080, false},
				{"a pod in default", peer{"default", map[string]string{"app": "keda-operator"}}, 9090, false},
			} {
				if got := admits(t, objs, ns, pod, ports, tt.from, tt.port); got != tt.want {
					t.Errorf("%s (%s %v) on %d: admitted %v, want %v", tt.name, tt.from.namespace, tt.from.labels, tt.port, got, tt.want)
				}
			}

			// Some PodMonitoring in the scaler's namespace scrapes it, on
			// a port the policies let Prometheus in on.
			scraped := false
			for _, o := range objs {
				if o.Kind != "PodMonitoring" || o.Namespace != ns {
					continue
				}
				var pm struct {
					Spec struct {
						Selector  metav1.LabelSelector `json:"selector"`
						Endpoints []struct {
							Port string `json:"port"`
							Path string `json:"path"`
						} `json:"endpoints"`
					} `json:"spec"`
				}
				if err := yaml.Unmarshal(o.YAML, &pm); err != nil {
					t.Fatal(err)
				}
				if !selects(t, &pm.Spec.Selector, pod) {
					continue
				}
				for _, e := range pm.Spec.Endpoints {
					for _, cp := range ports {
						if cp.Name == e.Port && e.Path == "/metrics" &&
							admits(t, objs, ns, pod, ports, peer{"gmp-system", nil}, int(cp.ContainerPort)) {
							scraped = true
						}
					}
				}
			}
			if !scraped {
				t.Error("no PodMonitoring scrapes the scaler's /metrics on a port Managed Prometheus is admitted on")
			}
		})
	}
	if !found {
		t.Fatal("no overlay deploys refit-scaler")
	}
}
