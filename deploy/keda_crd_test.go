package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

// KEDA's objects are validated against KEDA's own CustomResourceDefinitions,
// config/crd/bases in the module version go.mod pins (the scaler imports
// KEDA's externalscaler package, so the module is always downloaded).
// controller-gen generates them from KEDA's Go API types, so they say what
// the types say, down to an HPA behavior's fields. The API server prunes
// unknown fields of a CRD unless asked for strict field validation; the
// schemas here are made strict the same way (every object that lists its
// properties is closed), so a misspelt or misplaced field fails as it did
// when the objects were decoded into KEDA's Go types — without compiling
// those types and the ~500 Kubernetes packages they import, which were a
// third of a newcomer's cold `make test`.
const kedaModule = "github.com/kedacore/keda/v2"

var kedaCRDs = struct {
	once    sync.Once
	schemas map[string]*jsonschema.Schema // by apiVersion/kind
	err     error
}{}

// kedaCRDSchema is the strict schema of a KEDA apiVersion/kind, nil when
// KEDA defines no such kind.
func kedaCRDSchema(t *testing.T, apiVersion, kind string) *jsonschema.Schema {
	t.Helper()
	kedaCRDs.once.Do(func() {
		dir := strings.TrimSpace(run(t, root(t), nil, "go", "list", "-m", "-f", "{{.Dir}}", kedaModule))
		kedaCRDs.schemas, kedaCRDs.err = loadCRDs(filepath.Join(dir, "config/crd/bases"))
	})
	if kedaCRDs.err != nil {
		t.Fatalf("KEDA's CRDs: %v", kedaCRDs.err)
	}
	return kedaCRDs.schemas[apiVersion+"/"+kind]
}

// loadCRDs compiles the strict schema of every served version of every
// CRD in dir.
func loadCRDs(dir string) (map[string]*jsonschema.Schema, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no CRDs in %s (%v)", dir, err)
	}
	out := map[string]*jsonschema.Schema{}
	c := jsonschema.NewCompiler()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var crd struct {
			Spec struct {
				Group    string                `json:"group"`
				Names    struct{ Kind string } `json:"names"`
				Versions []struct {
					Name   string `json:"name"`
					Served bool   `json:"served"`
					Schema struct {
						OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(b, &crd); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, v := range crd.Spec.Versions {
			if !v.Served || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			s := v.Schema.OpenAPIV3Schema
			closeObjects(s)
			if props, ok := s["properties"].(map[string]any); ok {
				props["metadata"] = objectMeta
			}
			doc, err := jsonschemaDoc(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			id := crd.Spec.Group + "/" + v.Name + "/" + crd.Spec.Names.Kind
			url := "mem://keda/" + strings.ReplaceAll(id, "/", "_") + ".json"
			if err := c.AddResource(url, doc); err != nil {
				return nil, err
			}
			if out[id], err = c.Compile(url); err != nil {
				return nil, fmt.Errorf("%s: %w", id, err)
			}
		}
	}
	return out, nil
}

// objectMeta is what Refit's manifests may set in a custom resource's
// metadata (a CRD's schema leaves metadata open; the API server checks it
// as ObjectMeta).
var objectMeta = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"name": map[string]any{"type": "string"}, "namespace": map[string]any{"type": "string"},
		"labels":      map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
		"annotations": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
	},
	"required":             []any{"name"},
	"additionalProperties": false,
}

// closeObjects makes every object schema that lists its properties refuse
// any other, unless it says additionalProperties itself or preserves
// unknown fields.
func closeObjects(node any) {
	switch n := node.(type) {
	case map[string]any:
		_, listed := n["properties"]
		_, says := n["additionalProperties"]
		if listed && !says && n["x-kubernetes-preserve-unknown-fields"] != true {
			n["additionalProperties"] = false
		}
		for _, v := range n {
			closeObjects(v)
		}
	case []any:
		for _, v := range n {
			closeObjects(v)
		}
	}
}

// jsonschemaDoc re-reads a schema through the library's JSON decoder, as
// the compiler wants it.
func jsonschemaDoc(s map[string]any) (any, error) {
	js, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(js))
}
