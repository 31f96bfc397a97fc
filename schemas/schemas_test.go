package schemas_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/schemas"
)

func datasetSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := os.ReadFile("dataset.schema.json")
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	require.NoError(t, c.AddResource("dataset.schema.json", doc))
	s, err := c.Compile("dataset.schema.json")
	require.NoError(t, err)
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, b []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	return s.Validate(v)
}

func TestShippedDatasetsMatchTheSchema(t *testing.T) {
	s := datasetSchema(t)
	files, err := filepath.Glob("datasets/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			require.NoError(t, validate(t, s, b))
			_, err = dataset.Parse(b)
			require.NoError(t, err)
		})
	}
}

// The schema and the Go parser agree on what a definition may say.
func TestSchemaAndParserAgree(t *testing.T) {
	s := datasetSchema(t)
	base, err := os.ReadFile("datasets/housing.json")
	require.NoError(t, err)
	tests := []struct {
		name  string
		edit  func(d map[string]any)
		valid bool
	}{
		{"promotion bounds and held promotions", func(d map[string]any) {
			d["promotion"] = map[string]any{"primary_metric": "r2", "min": map[string]any{"r2": 0}, "max": map[string]any{"rmse": 1e6}, "auto_promote": false}
		}, true},
		{"no promotion object", func(d map[string]any) { delete(d, "promotion") }, true},
		{"unknown key", func(d map[string]any) { d["batchsize"] = 10 }, false},
		{"unknown metric bound", func(d map[string]any) { d["promotion"] = map[string]any{"min": map[string]any{"accuracy": 0.9}} }, false},
		{"auto_promote as text", func(d map[string]any) { d["promotion"] = map[string]any{"auto_promote": "no"} }, false},
		{"unknown primary metric", func(d map[string]any) { d["promotion"] = map[string]any{"primary_metric": "mse"} }, false},
		{"negative min_improvement", func(d map[string]any) { d["promotion"] = map[string]any{"min_improvement": -1} }, false},
		{"zero batch", func(d map[string]any) { d["batch_size"] = 0 }, false},
		{"test fraction of one", func(d map[string]any) { d["test_fraction"] = 1 }, false},
		{"no models", func(d map[string]any) { d["models"] = []any{} }, false},
		{"bad dataset name", func(d map[string]any) { d["name"] = "Housing" }, false},
		{"unknown column type", func(d map[string]any) { d["columns"].([]any)[1].(map[string]any)["type"] = "decimal" }, false},
		{"hashed without buckets", func(d map[string]any) {
			m := d["models"].([]any)[1].(map[string]any)
			delete(m["features"].([]any)[12].(map[string]any), "buckets")
		}, false},
		{"unknown model kind", func(d map[string]any) { d["models"].([]any)[0].(map[string]any)["kind"] = "tree" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d map[string]any
			require.NoError(t, json.Unmarshal(base, &d))
			tt.edit(d)
			b, err := json.Marshal(d)
			require.NoError(t, err)
			schemaErr := validate(t, s, b)
			_, parseErr := dataset.Parse(b)
			if tt.valid {
				require.NoError(t, schemaErr)
				require.NoError(t, parseErr)
			} else {
				require.Error(t, schemaErr, "the schema accepts it")
				require.Error(t, parseErr, "refit accepts it")
			}
		})
	}
}

// Every event schema has a released copy, and changes since its release
// break no subscriber. A change that would needs a new version (.v2).
func TestEventSchemasKeepTheirReleasedContract(t *testing.T) {
	current, err := filepath.Glob("events/*.json")
	require.NoError(t, err)
	released, err := filepath.Glob("released/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, released)
	for _, r := range released {
		_, err := os.Stat(filepath.Join("events", filepath.Base(r)))
		require.NoError(t, err, "released schema %s was removed: subscribers still read it", filepath.Base(r))
	}
	for _, c := range current {
		t.Run(filepath.Base(c), func(t *testing.T) {
			old, err := os.ReadFile(filepath.Join("released", filepath.Base(c)))
			require.NoError(t, err, "copy %s to released/ when it is published", c)
			cur, err := os.ReadFile(c)
			require.NoError(t, err)
			changes, err := schemas.BreakingChanges(old, cur)
			require.NoError(t, err)
			require.Empty(t, changes, "breaking changes to a released schema: publish a new version (.v2) instead")
		})
	}
}

func TestBreakingChangesAreCaught(t *testing.T) {
	released, err := os.ReadFile("released/model.promoted.v1.json")
	require.NoError(t, err)
	tests := []struct {
		fixture string
		want    string // part of the one change reported; "" for none
	}{
		{"breaking-removed-property", `/properties: "previous_model_id" removed`},
		{"breaking-changed-type", `/properties/sequence: keyword "type" changed from "integer" to "string"`},
		{"breaking-newly-required", `/: property "previous_model_id" is newly required`},
		{"breaking-narrowed-pattern", `/properties/model_id: keyword "pattern" changed`},
		{"breaking-new-enum", `/properties/actor: keyword "enum" added`},
		{"breaking-property-in-closed-object", `/properties/metrics/properties: "mse" added where additionalProperties was false`},
		{"additive-optional-property", ""},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			cur, err := os.ReadFile(filepath.Join("testdata", "compat", tt.fixture+".json"))
			require.NoError(t, err)
			changes, err := schemas.BreakingChanges(released, cur)
			require.NoError(t, err)
			if tt.want == "" {
				require.Empty(t, changes)
				return
			}
			require.Len(t, changes, 1, strings.Join(changes, "\n"))
			require.Contains(t, changes[0], tt.want)
		})
	}
}

func TestBreakingChangesRules(t *testing.T) {
	tests := []struct {
		name, released, current string
		breaking                bool
	}{
		{"identical", `{"type":"object"}`, `{"type":"object"}`, false},
		{"description edited", `{"description":"a"}`, `{"description":"b"}`, false},
		{"additionalProperties made explicit", `{"type":"object"}`, `{"type":"object","additionalProperties":true}`, false},
		{"additionalProperties closed", `{"type":"object"}`, `{"type":"object","additionalProperties":false}`, true},
		{"enum widened counts too", `{"properties":{"a":{"enum":["x"]}}}`, `{"properties":{"a":{"enum":["x","y"]}}}`, true},
		{"minimum raised", `{"properties":{"a":{"minimum":0}}}`, `{"properties":{"a":{"minimum":1}}}`, true},
		{"const added", `{"properties":{"a":{"type":"string"}}}`, `{"properties":{"a":{"type":"string","const":"x"}}}`, true},
		{"no longer required", `{"required":["a"],"properties":{"a":{}}}`, `{"properties":{"a":{}}}`, true},
		{"items type changed", `{"properties":{"a":{"items":{"type":"string"}}}}`, `{"properties":{"a":{"items":{"type":"integer"}}}}`, true},
		{"definition removed", `{"$defs":{"x":{"type":"string"}}}`, `{}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes, err := schemas.BreakingChanges([]byte(tt.released), []byte(tt.current))
			require.NoError(t, err)
			require.Equal(t, tt.breaking, len(changes) > 0, strings.Join(changes, "\n"))
		})
	}
}
