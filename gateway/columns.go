package gateway

import "github.com/refit-ml/refit/internal/dataset"

// columnInfo is one column of a dataset's CSV as GET /v1/datasets/{d}
// describes it.
type columnInfo struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Required columns must be in an upload's header: the target and every
	// column neither optional nor dropped (as the preprocessor checks).
	Required bool     `json:"required"`
	Target   bool     `json:"target,omitempty"`
	Dropped  bool     `json:"dropped,omitempty"`
	Min      *float64 `json:"min,omitempty"`
	Max      *float64 `json:"max,omitempty"`
	Choices  []string `json:"choices,omitempty"`
}

func columnsOf(d *dataset.Definition) []columnInfo {
	out := []columnInfo{{Name: d.Target.Name, Type: d.Target.Type, Required: true, Target: true, Min: d.Target.Min, Max: d.Target.Max}}
	for _, c := range d.Columns {
		out = append(out, columnInfo{Name: c.Name, Type: c.Type, Required: !c.Optional && !c.Drop, Dropped: c.Drop,
			Min: c.Min, Max: c.Max, Choices: c.Choices})
	}
	return out
}
