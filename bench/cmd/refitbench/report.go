package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// report collects what the suite measured: raw results as JSON, and a
// Markdown summary printed at the end and kept in .bench/summary.md.
type report struct {
	Start     time.Time      `json:"start"`
	End       time.Time      `json:"end"`
	CPUs      int            `json:"cpus"`
	LoadStart string         `json:"load_start"`
	LoadEnd   string         `json:"load_end"`
	Quick     bool           `json:"quick"`
	Raw       map[string]any `json:"raw"`
	Notes     []string       `json:"notes"`
	md        strings.Builder
}

func newReport(cfg suiteConfig) *report {
	r := &report{Start: time.Now().UTC(), CPUs: numCPU(), LoadStart: loadavg(), Quick: cfg.quick, Raw: map[string]any{}}
	return r
}

func (r *report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (r *report) printf(format string, args ...any) {
	fmt.Fprintf(&r.md, format, args...)
}

func (r *report) write(dir string) error {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), raw, 0o644); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# refitbench %s\n\n%d CPUs; load average (1, 5, 15 min) %s at start, %s at end; %s to %s UTC",
		map[bool]string{true: "(quick: a smoke run, not figures)", false: ""}[r.Quick],
		r.CPUs, r.LoadStart, r.LoadEnd, r.Start.Format("2006-01-02 15:04"), r.End.Format("15:04"))
	if host, err := os.Hostname(); err == nil {
		fmt.Fprintf(&md, " on %s", host)
	}
	md.WriteString(".\n\n")
	md.WriteString(r.md.String())
	for _, n := range r.Notes {
		fmt.Fprintf(&md, "- note: %s\n", n)
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	fmt.Print(md.String())
	return nil
}

// stat is the median and spread of repeated measurements.
type stat struct {
	Median, Min, Max float64
}

func statOf(xs []float64) stat {
	if len(xs) == 0 {
		return stat{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{m, s[0], s[len(s)-1]}
}

// String shows the median and the range of the repeats.
func (s stat) String() string {
	if s.Min == s.Max {
		return fmtNum(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtNum(s.Median), fmtNum(s.Min), fmtNum(s.Max))
}

func fmtNum(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}
