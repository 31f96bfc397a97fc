package gateway

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/client"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers/serve"
	"github.com/refit-ml/refit/workers/train"
)

// TestClientTypesMatchTheGateway: client/types.go mirrors by hand what the
// gateway sends (its views and the registry records inside them). Each
// pair is filled in every field, marshalled, and the JSON shapes compared
// both ways, to any depth, with encoding/json's own rules (embedding,
// shadowing, custom marshalers): a field added to one side only fails here
// unless it is listed below with the reason.
func TestClientTypesMatchTheGateway(t *testing.T) {
	for _, tt := range []struct {
		route          string
		server, client any
		// ignored: paths one side has on purpose, with why.
		ignored map[string]string
	}{
		{route: "GET /v1/datasets/{d}", server: DatasetStatus{}, client: client.Dataset{}},
		{route: "GET /v1/datasets/{d}/runs", server: runsPage{}, client: client.RunsPage{}},
		{route: "GET /v1/runs/{id}", server: runDetail{}, client: client.RunDetail{}},
		{route: "GET /v1/runs/{id}/lineage", server: runLineage{}, client: client.Lineage{}, ignored: map[string]string{
			".run_id": "the client's Lineage serves both lineage routes; the caller knows the run it asked for",
			".spec":   "as run_id",
		}},
		{route: "GET /v1/datasets/{d}/versions/{n}/lineage", server: registry.Lineage{}, client: client.Lineage{}},
		{route: "GET /v1/datasets/{d}/promotions", server: struct {
			Promotions []registry.Promotion `json:"promotions"`
			Decisions  []registry.Standing  `json:"decisions"`
		}{}, client: client.History{}},
		{route: "POST /v1/datasets/{d}/promotions", server: registry.Promotion{}, client: client.Promotion{}},
		{route: "POST /v1/runs/{id}/reproduce", server: train.Reproduction{}, client: client.Reproduction{}},
		{route: "GET /v1/datasets/{d}/objects/{name}", server: objectHistory{}, client: client.ObjectHistory{}},
		{route: "POST /v1/models/{d}:predict (regression)", server: predictResponse{}, client: client.Predictions{}, ignored: map[string]string{
			".predictions[]": "client.Prediction decodes a number or a class; the classifier pair checks the class form",
			".probabilities": "classifiers only",
		}},
		{route: "POST /v1/models/{d}:predict (classifier)", server: classifyResponse{}, client: client.Predictions{}},
		{route: "GET /v1/models/{d}", server: struct {
			Name  string      `json:"name"`
			Ready bool        `json:"ready"`
			Model *serve.Info `json:"model"`
		}{}, client: client.ModelStatus{}},
		{route: "GET /v1/deadletters", server: deadLetterView{}, client: client.DeadLetter{}, ignored: map[string]string{
			".replay.already": "only the replay call's answer says whether it was replayed before",
		}},
		{route: "POST /v1/deadletters/{id}/replay", server: replayView{}, client: client.Replay{}},
		{route: "GET /v1/webhooks/deliveries", server: registry.WebhookDelivery{}, client: client.WebhookDelivery{}},
	} {
		t.Run(tt.route, func(t *testing.T) {
			var diffs []string
			jsonShapeDiff("", filledJSON(t, tt.server), filledJSON(t, tt.client), &diffs)
			used := map[string]bool{}
			diffs = slices.DeleteFunc(diffs, func(d string) bool {
				path, _, _ := strings.Cut(d, ": ")
				_, ok := tt.ignored[path]
				used[path] = used[path] || ok
				return ok
			})
			for path := range tt.ignored {
				require.True(t, used[path], "%s is listed as a known difference but is not one any more", path)
			}
			require.Empty(t, diffs, "client/types.go has drifted from what %s sends", tt.route)
		})
	}
}

// TestShapeDiffFindsDrift: the comparison itself catches a field on either
// side, a type change and a nested one.
func TestShapeDiffFindsDrift(t *testing.T) {
	type inner struct {
		A int `json:"a"`
	}
	type server struct {
		X     string  `json:"x"`
		Extra int     `json:"extra,omitempty"`
		In    []inner `json:"in"`
		N     int     `json:"n"`
	}
	type innerClient struct {
		B int `json:"b"`
	}
	type clientView struct {
		X    string        `json:"x"`
		In   []innerClient `json:"in"`
		N    string        `json:"n"`
		Mine bool          `json:"mine"`
	}
	var diffs []string
	jsonShapeDiff("", filledJSON(t, server{}), filledJSON(t, clientView{}), &diffs)
	require.ElementsMatch(t, []string{
		".extra: sent by the gateway, not in the client type",
		".in[].a: sent by the gateway, not in the client type",
		".in[].b: in the client type, never sent",
		".n: number on the gateway, string in the client type",
		".mine: in the client type, never sent",
	}, diffs)
}

// filledJSON marshals a value of v's type with every field set (pointers
// allocated, one element per slice and map), so omitempty hides nothing,
// and decodes it generically.
func filledJSON(t *testing.T, v any) any {
	t.Helper()
	p := reflect.New(reflect.TypeOf(v))
	fill(p.Elem(), 0)
	b, err := json.Marshal(p.Interface())
	require.NoError(t, err)
	var out any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

func fill(v reflect.Value, depth int) {
	if depth > 10 { // a recursive type: stop with its zero value
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Field(i).CanSet() {
				fill(v.Field(i), depth+1)
			}
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		if v.Type() == rawType {
			v.SetBytes([]byte("null")) // any JSON: matches anything
			return
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), depth+1)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, depth+1)
		fill(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Bool:
		v.SetBool(true)
	}
	// Interfaces stay nil: null, which matches anything.
}

// jsonShapeDiff lists where two decoded JSON values differ in keys or kinds.
func jsonShapeDiff(path string, server, cl any, out *[]string) {
	if server == nil || cl == nil {
		return
	}
	kind := func(v any) string {
		switch v.(type) {
		case map[string]any:
			return "object"
		case []any:
			return "array"
		case float64:
			return "number"
		default:
			return fmt.Sprintf("%T", v)
		}
	}
	if ks, kc := kind(server), kind(cl); ks != kc {
		*out = append(*out, fmt.Sprintf("%s: %s on the gateway, %s in the client type", path, ks, kc))
		return
	}
	switch s := server.(type) {
	case map[string]any:
		c := cl.(map[string]any)
		for k, sv := range s {
			cv, ok := c[k]
			if !ok {
				*out = append(*out, path+"."+k+": sent by the gateway, not in the client type")
				continue
			}
			jsonShapeDiff(path+"."+k, sv, cv, out)
		}
		for k := range c {
			if _, ok := s[k]; !ok {
				*out = append(*out, path+"."+k+": in the client type, never sent")
			}
		}
	case []any:
		jsonShapeDiff(path+"[]", s[0], cl.([]any)[0], out)
	}
}
