package gateway

import (
	"bytes"
	"cmp"
	"embed"
	"encoding/csv"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
)

// The console is server-rendered html/template (which escapes everything a
// user or a CSV supplied) plus a little vanilla JS; its assets are embedded
// so the binary needs no CDN and works offline.
//
//go:embed console
var consoleFiles embed.FS

// consoleTemplates parses the pages once per server; a parse error is a
// programming error caught by the tests.
func consoleTemplates() *template.Template {
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		"num": func(f float64) string {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return "—"
			}
			return strconv.FormatFloat(f, 'f', 2, 64)
		},
		"score": func(f float64) string { // accuracy, F1, log loss: more digits than money
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return "—"
			}
			return strconv.FormatFloat(f, 'f', 4, 64)
		},
		"fnum": func(p *float64) string {
			if p == nil {
				return ""
			}
			return strconv.FormatFloat(*p, 'f', -1, 64)
		},
		"short": func(s string) string {
			if len(s) > 12 {
				return s[:12]
			}
			return s
		},
	}
	return template.Must(template.New("console").Funcs(funcs).ParseFS(consoleFiles, "console/*.html"))
}

// consoleInput is one field of the predict form.
type consoleInput struct {
	Name, Type, Description string
	Numeric, Optional       bool
	Text                    bool // free text: a text area
	Min, Max                *float64
	Step                    string
	Choices                 []string // datalist: the definition's choices or the champion's one-hot levels
	Example                 string   // a placeholder: the champion's typical value, or one within the range
	Rule                    string   // what the field takes, in words, for the error message
}

type consolePage struct {
	Title      string
	Dataset    string
	Datasets   []string
	AdminToken bool // the admin token is configured: ask for it before admin calls
	Active     string
	Inputs     []consoleInput
	Target     string
	Classes    []string // a classifier's classes: the answer and the correction offer them
	Champion   *registry.Promotion
	Status     *DatasetStatus
	Runs       []registry.Run
	Decisions  map[string]registry.Standing
	Promotions []registry.Promotion
	Chart      *rmseChart
	Corrected  int
	Summaries  []datasetSummary
	Rejections []quarantinePreview
}

// quarantinePreview is the first rejected rows of a recent ingest, shown
// on the pipeline page (as text: they are whatever the CSV held).
type quarantinePreview struct {
	IngestID, Source string
	Rows             []quarantineRow
}

type quarantineRow struct{ Line, Reason, Record string }

// Bounds of the preview: it reads blobs on every page render.
const (
	previewIngests = 5
	previewRows    = 3
)

type datasetSummary struct {
	Name, Description string
	Champion          *registry.Promotion
}

func (s *Server) consoleRoutes() {
	s.pages = consoleTemplates()
	static, _ := fs.Sub(consoleFiles, "console/static")
	s.mux.Handle("GET /static/console/", http.StripPrefix("/static/console/", http.FileServerFS(static)))
	s.mux.Handle("GET /{$}", s.consolePage(s.consoleIndex))
	s.mux.Handle("GET /console/{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The dataset picker without JS: /console/?dataset=D.
		http.Redirect(w, r, "/console/"+url.PathEscape(r.URL.Query().Get("dataset")), http.StatusSeeOther)
	}))
	s.mux.Handle("GET /console/{dataset}", s.consolePage(s.consolePredict))
	s.mux.Handle("GET /console/{dataset}/pipeline", s.consolePage(s.consolePipeline))
	s.mux.Handle("GET /v1/datasets/{dataset}/ingests/{id}/quarantine", s.longWrite(http.TimeoutHandler(s.handleQuarantine(), s.cfg.UploadTimeout, "quarantine timed out")))
}

// consolePage renders a page built by fill into a buffer first, so an error
// becomes a clean error page rather than half a document.
func (s *Server) consolePage(fill func(r *http.Request, p *consolePage) (string, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := &consolePage{Datasets: s.datasets.Names(), AdminToken: s.cfg.AdminToken != ""}
		name, err := fill(r, p)
		status := http.StatusOK
		if err != nil {
			var body errorBody
			status, body = toStatus(err)
			if status >= 500 {
				s.log.Error("console page failed", "path", r.URL.Path, "err", err)
			}
			p.Title, name = http.StatusText(status), "error"
			p.Active = body.Error
		}
		var buf bytes.Buffer
		if err := s.pages.ExecuteTemplate(&buf, name, p); err != nil {
			s.log.Error("console template failed", "page", name, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		// Only our own script and styles run: an injected <script> or
		// onerror= from a CSV would be inert even if it were not escaped.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		_, _ = buf.WriteTo(w)
	})
}

func (s *Server) consoleIndex(r *http.Request, p *consolePage) (string, error) {
	p.Title = "Datasets"
	for _, name := range p.Datasets {
		d, _ := s.datasets.Get(name)
		sum := datasetSummary{Name: name, Description: d.Description}
		if cur := s.models.Current(name); cur != nil {
			prom := cur.Promotion
			sum.Champion = &prom
		}
		p.Summaries = append(p.Summaries, sum)
	}
	return "index", nil
}

func (s *Server) consoleDataset(r *http.Request, p *consolePage) (*dataset.Definition, error) {
	d, ok := s.datasets.Get(r.PathValue("dataset"))
	if !ok {
		return nil, s.unknownDataset(r.PathValue("dataset"))
	}
	p.Dataset, p.Target, p.Classes = d.Name, d.Target.Name, d.Classes()
	if cur := s.models.Current(d.Name); cur != nil {
		prom := cur.Promotion
		p.Champion = &prom
	}
	cs, err := s.reg.Corrections(r.Context(), d.Name)
	if err != nil {
		return nil, err
	}
	p.Corrected = len(cs)
	return d, nil
}

func (s *Server) consolePredict(r *http.Request, p *consolePage) (string, error) {
	d, err := s.consoleDataset(r, p)
	if err != nil {
		return "", err
	}
	p.Title, p.Active = d.Name+": predict", "predict"
	levels, examples := s.championLevels(r, p.Champion)
	for _, c := range d.Kept() {
		in := consoleInput{Name: c.Name, Type: c.Type, Description: c.Description, Numeric: dataset.IsNumeric(c),
			Text: c.Type == dataset.TypeText, Optional: c.Optional, Min: c.Min, Max: c.Max, Choices: c.Choices, Example: examples[c.Name]}
		if in.Numeric {
			in.Step = "any"
			switch c.Type {
			case dataset.TypeInt:
				in.Step = "1"
			case dataset.TypeBool:
				zero, one := 0.0, 1.0
				in.Step, in.Min, in.Max = "1", &zero, &one
			}
		} else if len(in.Choices) == 0 {
			in.Choices = levels[c.Name]
		}
		in.Example, in.Rule = exampleOf(c, in, examples[c.Name])
		p.Inputs = append(p.Inputs, in)
	}
	return "predict", nil
}

// championLevels reads the values the champion knows for each string
// column (its one-hot levels): a cheap datalist for the form; and a
// typical value per column (the training mean, the most frequent level)
// to show as an example. A failure only costs the suggestions.
func (s *Server) championLevels(r *http.Request, champ *registry.Promotion) (levels map[string][]string, examples map[string]string) {
	levels, examples = map[string][]string{}, map[string]string{}
	if champ == nil {
		return levels, examples
	}
	art, err := model.Load(r.Context(), s.bucket, champ.Artifact, champ.Checksum)
	if err != nil {
		s.log.Warn("console: champion artifact unreadable; no suggestions", "artifact", champ.Artifact, "err", err)
		return levels, examples
	}
	for _, t := range art.Transforms {
		switch {
		case t.OneHot != nil:
			vals := append([]string{t.OneHot.Reference}, t.OneHot.Levels...)
			slices.Sort(vals)
			levels[t.Column] = slices.Compact(vals)
			examples[t.Column] = t.OneHot.Reference
		case t.Numeric != nil && !math.IsNaN(t.Numeric.Mean) && !math.IsInf(t.Numeric.Mean, 0):
			examples[t.Column] = strconv.FormatFloat(t.Numeric.Mean, 'f', -1, 64)
		}
	}
	return levels, examples
}

// exampleOf returns a value to show as the field's placeholder and the
// rule the field must meet, said in words for the error message.
func exampleOf(c dataset.Column, in consoleInput, typical string) (example, rule string) {
	fnum := func(p *float64) string { return strconv.FormatFloat(*p, 'f', -1, 64) }
	switch {
	case c.Type == dataset.TypeBool:
		return "0 or 1", "0 or 1"
	case in.Numeric:
		kind := "a number"
		if c.Type == dataset.TypeInt {
			kind = "a whole number"
		}
		switch {
		case in.Min != nil && in.Max != nil:
			rule = fmt.Sprintf("%s from %s to %s", kind, fnum(in.Min), fnum(in.Max))
		case in.Min != nil:
			rule = fmt.Sprintf("%s of at least %s", kind, fnum(in.Min))
		case in.Max != nil:
			rule = fmt.Sprintf("%s of at most %s", kind, fnum(in.Max))
		default:
			rule = kind
		}
		if v, err := strconv.ParseFloat(typical, 64); err == nil {
			if c.Type == dataset.TypeInt {
				v = math.Round(v)
			} else {
				v = math.Round(v*100) / 100
			}
			if (in.Min == nil || v >= *in.Min) && (in.Max == nil || v <= *in.Max) {
				return strconv.FormatFloat(v, 'f', -1, 64), rule
			}
		}
		switch {
		case in.Min != nil && in.Max != nil:
			v := (*in.Min + *in.Max) / 2
			if c.Type == dataset.TypeInt {
				v = math.Round(v)
			}
			return strconv.FormatFloat(v, 'f', -1, 64), rule
		case in.Min != nil:
			return fnum(in.Min), rule
		}
		return "", rule
	case c.Type == dataset.TypeText:
		return "", fmt.Sprintf("text of at most %d bytes", c.MaxLength)
	default:
		switch {
		case len(c.Choices) > 0:
			rule = "one of the listed values"
		case c.Pattern != "":
			rule = "text matching " + c.Pattern
		case c.MaxLength > 0:
			rule = fmt.Sprintf("text of at most %d characters", c.MaxLength)
		default:
			rule = "text"
		}
		if typical == "" && len(in.Choices) > 0 {
			typical = in.Choices[0]
		}
		return typical, rule
	}
}

func (s *Server) consolePipeline(r *http.Request, p *consolePage) (string, error) {
	d, err := s.consoleDataset(r, p)
	if err != nil {
		return "", err
	}
	p.Title, p.Active = d.Name+": pipeline", "pipeline"
	ctx := r.Context()
	st, err := Status(ctx, s.reg, d)
	if err != nil {
		return "", err
	}
	// One page of ingests, newest first, as the API pages them.
	if st.Uploads, st.IngestsNext, err = pageIngests(st.Uploads, defaultIngestPage, r.URL.Query().Get("cursor")); err != nil {
		return "", err
	}
	slices.Reverse(st.Versions)
	p.Status = &st
	if p.Runs, err = s.reg.Runs(ctx, d.Name); err != nil {
		return "", err
	}
	slices.SortFunc(p.Runs, func(a, b registry.Run) int {
		return cmp.Or(cmp.Compare(b.Version, a.Version), cmp.Compare(a.Spec, b.Spec))
	})
	decisions, err := s.reg.Decisions(ctx, d.Name)
	if err != nil {
		return "", err
	}
	if p.Promotions, err = s.reg.Promotions(ctx, d.Name); err != nil {
		return "", err
	}
	p.Decisions = map[string]registry.Standing{}
	for _, st := range registry.Standings(decisions, p.Promotions) {
		p.Decisions[st.RunID] = st
	}
	slices.SortFunc(p.Promotions, func(a, b registry.Promotion) int { return cmp.Compare(b.Sequence, a.Sequence) })
	p.Chart = newRMSEChart(p.Runs, d.Promotion.PrimaryMetric)
	for _, in := range st.Uploads { // newest first
		if len(p.Rejections) == previewIngests {
			break
		}
		if in.Quarantine == "" {
			continue
		}
		rows, err := s.quarantineRows(r, in.Quarantine)
		if err != nil {
			s.log.Warn("console: quarantine report unreadable", "ingest", in.ID, "err", err)
			continue
		}
		src := in.Source.Object
		if src == "" {
			src = "correction " + in.Source.CorrectionID
		}
		p.Rejections = append(p.Rejections, quarantinePreview{IngestID: in.ID, Source: src, Rows: rows})
	}
	return "pipeline", nil
}

func (s *Server) quarantineRows(r *http.Request, name string) ([]quarantineRow, error) {
	rc, err := s.bucket.Open(r.Context(), name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	cr := csv.NewReader(io.LimitReader(rc, 1<<20))
	cr.FieldsPerRecord = -1
	var out []quarantineRow
	for i := 0; len(out) < previewRows; i++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, fmt.Errorf("quarantine %s: %w", name, err)
		}
		if i == 0 || len(rec) < 3 {
			continue // the header
		}
		out = append(out, quarantineRow{Line: rec[0], Reason: rec[1], Record: rec[2]})
	}
	return out, nil
}

// handleQuarantine streams the rejected rows of an ingest, with reasons.
func (s *Server) handleQuarantine() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := s.dataset(w, r)
		if !ok {
			return
		}
		in, err := s.reg.Ingest(r.Context(), d.Name, r.PathValue("id"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if in.Quarantine == "" {
			s.fail(w, r, errorf(http.StatusNotFound, "ingest %q rejected no row", in.ID))
			return
		}
		rc, err := s.bucket.Open(r.Context(), in.Quarantine)
		if errors.Is(err, blob.ErrNotExist) {
			err = errorf(http.StatusNotFound, "quarantine report of ingest %q is gone", in.ID)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		defer rc.Close()
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff") // never rendered as HTML
		w.Header().Set("Content-Disposition", fmt.Sprintf("inline; filename=%q", "quarantine-"+in.ID+".csv"))
		if _, err := io.Copy(w, rc); err != nil {
			s.log.Warn("quarantine stream cut", "ingest", in.ID, "err", err)
		}
	})
}

// rmseChart is a small inline SVG of each spec's validation score (the
// dataset's primary metric: RMSE, accuracy, F1...) over dataset versions,
// drawn on the server so the page needs no chart library.
type rmseChart struct {
	Metric         string // its label, e.g. "RMSE" or "accuracy"
	Width, Height  int
	Series         []chartSeries
	MinY, MaxY     string
	MinX, MaxX     int
	Left, Bottom   int
	Right, TopEdge int
}

// metricLabel names a metric as the console shows it.
func metricLabel(name string) string {
	switch name {
	case "rmse":
		return "RMSE"
	case "mae":
		return "MAE"
	case "r2":
		return "R²"
	case "f1_macro":
		return "macro F1"
	case "log_loss":
		return "log loss"
	case "roc_auc":
		return "ROC AUC"
	}
	return name
}

// metricValue is a run's score by metric name; NaN when it has none.
func metricValue(m registry.Metrics, name string) float64 {
	switch name {
	case "rmse":
		return m.RMSE
	case "mae":
		return m.MAE
	case "r2":
		return m.R2
	}
	c := m.Classification
	if c == nil {
		return math.NaN()
	}
	switch name {
	case "accuracy":
		return c.Accuracy
	case "f1_macro":
		return c.F1Macro
	case "log_loss":
		return c.LogLoss
	case "roc_auc":
		if c.ROCAUC != nil {
			return *c.ROCAUC
		}
	}
	return math.NaN()
}

type chartSeries struct {
	Spec   string
	Color  string
	Points string
	Dots   []chartDot
}

type chartDot struct {
	X, Y  float64
	Title string
}

func newRMSEChart(runs []registry.Run, metric string) *rmseChart {
	if len(runs) == 0 {
		return nil
	}
	label := metricLabel(metric)
	c := &rmseChart{Metric: label, Width: 480, Height: 200, Left: 70, Bottom: 170, Right: 470, TopEdge: 10}
	lo, hi := math.Inf(1), math.Inf(-1)
	minV, maxV := math.MaxInt, math.MinInt
	bySpec := map[string][]registry.Run{}
	for _, r := range runs {
		v := metricValue(r.Metrics, metric)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		lo, hi = min(lo, v), max(hi, v)
		minV, maxV = min(minV, r.Version), max(maxV, r.Version)
		bySpec[r.Spec] = append(bySpec[r.Spec], r)
	}
	if len(bySpec) == 0 {
		return nil
	}
	// Scores in [0, 1] (accuracy, F1, AUC) keep their decimals.
	digits, pad := 0, 1.0
	if lo >= 0 && hi <= 1 {
		digits, pad = 3, 0.05
	}
	if hi == lo {
		hi, lo = hi+pad, max(0, lo-pad)
	}
	c.MinY, c.MaxY = strconv.FormatFloat(lo, 'f', digits, 64), strconv.FormatFloat(hi, 'f', digits, 64)
	c.MinX, c.MaxX = minV, maxV
	x := func(v int) float64 {
		if maxV == minV {
			return float64(c.Left+c.Right) / 2
		}
		return float64(c.Left) + float64(v-minV)/float64(maxV-minV)*float64(c.Right-c.Left)
	}
	y := func(v float64) float64 {
		return float64(c.Bottom) - (v-lo)/(hi-lo)*float64(c.Bottom-c.TopEdge)
	}
	colors := []string{"#1f5fa8", "#b3470c", "#2b7a2b", "#7a2b7a", "#4d4d4d"}
	specs := make([]string, 0, len(bySpec))
	for spec := range bySpec {
		specs = append(specs, spec)
	}
	slices.Sort(specs)
	for i, spec := range specs {
		rs := bySpec[spec]
		slices.SortFunc(rs, func(a, b registry.Run) int { return cmp.Compare(a.Version, b.Version) })
		se := chartSeries{Spec: spec, Color: colors[i%len(colors)]}
		var pts bytes.Buffer
		for _, r := range rs {
			v := metricValue(r.Metrics, metric)
			px, py := x(r.Version), y(v)
			fmt.Fprintf(&pts, "%.1f,%.1f ", px, py)
			title := fmt.Sprintf("%s v%d: %s %.2f", spec, r.Version, label, v)
			if digits > 0 {
				title = fmt.Sprintf("%s v%d: %s %.4f", spec, r.Version, label, v)
			}
			se.Dots = append(se.Dots, chartDot{X: px, Y: py, Title: title})
		}
		se.Points = pts.String()
		c.Series = append(c.Series, se)
	}
	return c
}
