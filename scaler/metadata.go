package scaler

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// maxPoints is Prometheus's own limit on the points of one query_range.
const maxPoints = 11000

// Spec is what one ScaledObject's trigger metadata asks for.
type Spec struct {
	Query   string        // PromQL giving one series (e.g. a sum(rate(...)))
	Horizon time.Duration // how far ahead to answer: the time a pod needs to be ready
	History time.Duration // how much history to fit on
	Step    time.Duration // resolution of the history
	// Target is the metric value one replica handles (KEDA: value/target replicas).
	Target float64
	// ActivationTarget: the scaler is active above it (scale from zero).
	ActivationTarget float64
	Seasons          []time.Duration
	Harmonics        []int
	MetricName       string
}

// FieldError names the metadata field that is missing or wrong.
type FieldError struct{ Field, Msg string }

func (e *FieldError) Error() string { return "metadata " + e.Field + ": " + e.Msg }

// ParseSpec reads and checks the trigger metadata. Keys it does not know
// (KEDA passes scalerAddress and friends along) are ignored.
func ParseSpec(md map[string]string) (Spec, error) {
	get := func(k string) string { return strings.TrimSpace(md[k]) }
	s := Spec{Query: get("query"), MetricName: get("metricName")}
	if s.Query == "" {
		return s, &FieldError{"query", "required: a PromQL expression giving one series, e.g. sum(rate(prediction_requests_total[1m]))"}
	}
	if s.MetricName == "" {
		s.MetricName = "forecast"
	}
	var err error
	for _, d := range []struct {
		key, def string
		dst      *time.Duration
	}{
		{"horizon", "", &s.Horizon},
		{"history", "14d", &s.History},
		{"step", "1m", &s.Step},
	} {
		v := get(d.key)
		if v == "" {
			v = d.def
		}
		if v == "" {
			return s, &FieldError{d.key, "required: a duration such as 10m"}
		}
		if *d.dst, err = parseDuration(v); err != nil {
			return s, &FieldError{d.key, err.Error()}
		}
	}
	if s.Horizon >= s.History {
		return s, &FieldError{"horizon", fmt.Sprintf("%s must be shorter than the history (%s)", s.Horizon, s.History)}
	}
	if n := s.History / s.Step; n > maxPoints {
		return s, &FieldError{"step", fmt.Sprintf("%s over a history of %s is %d points; Prometheus answers at most %d (use a step of at least %s)",
			s.Step, s.History, n, maxPoints, (s.History/maxPoints + time.Second).Truncate(time.Second))}
	}
	if s.Target, err = parseFloat(get("target"), -1); err != nil || s.Target <= 0 {
		return s, &FieldError{"target", fmt.Sprintf("required: a positive number, the metric value one replica handles (got %q)", get("target"))}
	}
	if s.ActivationTarget, err = parseFloat(get("activationTarget"), 0); err != nil || s.ActivationTarget < 0 {
		return s, &FieldError{"activationTarget", fmt.Sprintf("want a number ≥ 0 (got %q)", get("activationTarget"))}
	}
	seasons := get("seasons")
	if seasons == "" {
		seasons = "1d,1w"
	}
	for _, f := range strings.Split(seasons, ",") {
		d, err := parseDuration(strings.TrimSpace(f))
		if err != nil {
			return s, &FieldError{"seasons", err.Error()}
		}
		if d < 4*s.Step {
			return s, &FieldError{"seasons", fmt.Sprintf("%s is shorter than 4 steps of %s", d, s.Step)}
		}
		s.Seasons = append(s.Seasons, d)
	}
	harmonics := get("harmonics")
	if harmonics == "" {
		harmonics = "4,2"
	}
	for _, f := range strings.Split(harmonics, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 1 || k > 24 {
			return s, &FieldError{"harmonics", fmt.Sprintf("%q: want whole numbers from 1 to 24, one per season", f)}
		}
		s.Harmonics = append(s.Harmonics, k)
	}
	return s, nil
}

// parseDuration takes Prometheus durations (14d, 1w, 90s, 1h30m).
func parseDuration(v string) (time.Duration, error) {
	d, err := model.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration (e.g. 10m, 14d)", v)
	}
	return time.Duration(d), nil
}

func parseFloat(v string, def float64) (float64, error) {
	if v == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a finite number", v)
	}
	return f, nil
}
