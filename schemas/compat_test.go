package schemas

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
)

// annotations change no instance's validity: editing them breaks nobody.
var annotations = []string{"title", "description", "examples", "$comment", "default", "deprecated", "readOnly", "writeOnly"}

// BreakingChanges lists the changes from a released JSON Schema to its
// current version that could break a subscriber written against the
// released one: a removed property, a changed type, a newly required
// property (or one no longer required), a new constraint, a narrowed or
// otherwise changed enum, const, pattern, format or bound, a property added
// where additionalProperties was false. It is deliberately conservative:
// any change to an existing keyword other than an annotation counts, so a
// change it reports may in fact be harmless — give the event a new version
// (.v2) instead. Adding an optional property (where additional properties
// were allowed) and editing annotations pass.
func BreakingChanges(released, current []byte) ([]string, error) {
	var old, cur map[string]any
	if err := json.Unmarshal(released, &old); err != nil {
		return nil, fmt.Errorf("released schema: %w", err)
	}
	if err := json.Unmarshal(current, &cur); err != nil {
		return nil, fmt.Errorf("current schema: %w", err)
	}
	var out []string
	compareSchemas("", old, cur, &out)
	sort.Strings(out)
	return out, nil
}

func compareSchemas(path string, old, cur map[string]any, out *[]string) {
	report := func(format string, args ...any) {
		at := path
		if at == "" {
			at = "/"
		}
		*out = append(*out, at+": "+fmt.Sprintf(format, args...))
	}
	keys := map[string]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range cur {
		keys[k] = true
	}
	for k := range keys {
		if slices.Contains(annotations, k) {
			continue
		}
		ov, inOld := old[k]
		cv, inCur := cur[k]
		switch k {
		case "properties", "$defs", "definitions":
			compareMaps(path+"/"+k, k == "properties" && additionalClosed(old), asMap(ov), asMap(cv), out)
			continue
		case "required":
			was, now := asSet(ov), asSet(cv)
			for name := range now {
				if !was[name] {
					report("property %q is newly required", name)
				}
			}
			for name := range was {
				if !now[name] {
					report("property %q is no longer required", name)
				}
			}
			continue
		case "additionalProperties":
			// Absent means true.
			if !inOld {
				ov, inOld = true, true
			}
			if !inCur {
				cv, inCur = true, true
			}
		}
		switch {
		case !inCur:
			report("keyword %q removed (was %s)", k, show(ov))
		case !inOld:
			report("keyword %q added (%s)", k, show(cv))
		default:
			om, oOK := ov.(map[string]any)
			cs, cOK := cv.(map[string]any)
			if oOK && cOK && (k == "items" || k == "additionalProperties" || k == "not" || k == "contains") {
				compareSchemas(path+"/"+k, om, cs, out)
			} else if !reflect.DeepEqual(ov, cv) {
				report("keyword %q changed from %s to %s", k, show(ov), show(cv))
			}
		}
	}
}

// compareMaps compares named subschemas: a removed one breaks, an added
// one breaks only where additional properties were not allowed.
func compareMaps(path string, closed bool, old, cur map[string]any, out *[]string) {
	for name, ov := range old {
		cv, ok := cur[name]
		if !ok {
			*out = append(*out, fmt.Sprintf("%s: %q removed", path, name))
			continue
		}
		compareSchemas(path+"/"+name, asMap(ov), asMap(cv), out)
	}
	for name := range cur {
		if _, ok := old[name]; !ok && closed {
			*out = append(*out, fmt.Sprintf("%s: %q added where additionalProperties was false", path, name))
		}
	}
}

func additionalClosed(schema map[string]any) bool {
	ap, ok := schema["additionalProperties"]
	return ok && ap == false
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asSet(v any) map[string]bool {
	set := map[string]bool{}
	list, _ := v.([]any)
	for _, x := range list {
		if s, ok := x.(string); ok {
			set[s] = true
		}
	}
	return set
}

func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
