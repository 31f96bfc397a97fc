package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/refit-ml/refit/client"
)

const predictHelp = `refit predict asks the gateway for predictions of a dataset's champion.
Input (a FILE, or standard input when FILE is - or absent) is CSV with a
header (RFC 4180: a quoted field may hold commas, "" quotes and line
breaks), or JSON lines (one instance object per line). The target and
dropped columns of a CSV are left out. Output: CSV in, CSV out
(prediction,prediction_id, then for a classifier probability_<class> per
class); JSON lines in, JSON lines out ({"prediction", "prediction_id"},
and "probabilities" for a classifier). The model that answered goes to
standard error.

Example:
  refit predict --dataset housing houses.csv
  refit predict --dataset reviews reviews.csv
  echo '{"review": "A superb film."}' | refit predict --dataset reviews -`

// A request carries at most predictBatch instances (the gateway's default
// limit) and about predictBytes of JSON (its default body limit is 1 MiB;
// long texts reach that well before 1,000 instances).
const (
	predictBatch = 1000
	predictBytes = 768 << 10
)

func predictCmd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("predict", predictHelp, stderr)
	ds := fs.String("dataset", "", "dataset whose champion predicts (required)")
	server := fs.String("server", "", serverFlagHelp)
	files, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if *ds == "" || len(files) > 1 {
		fs.Usage()
		return &usageError{"predict needs --dataset and at most one FILE"}
	}
	in := stdin
	if len(files) == 1 && files[0] != "-" {
		f, err := os.Open(files[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	c := newClient(getenv, *server)
	info, err := fetchDataset(ctx, c, *ds)
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(in, 64<<10)
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3) // else the first header name would carry it
	}
	first, _ := peekNonSpace(br)
	asJSON := first == '{'
	var src instanceSource
	if asJSON {
		src = newJSONLines(br)
	} else if src, err = newCSVInstances(br, info); err != nil {
		return err
	}
	out := &predictionWriter{classes: targetChoices(info), asJSON: asJSON, w: stdout, csv: csv.NewWriter(stdout), stderr: stderr}
	b := &batcher{c: c, ds: *ds, out: out}
	n := 0
	for {
		raw, where, err := src.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		n++
		if err := b.add(ctx, raw, where); err != nil {
			return err
		}
	}
	if n == 0 {
		return errors.New("no instances in the input")
	}
	return b.flush(ctx)
}

// peekNonSpace is the first byte that is not white space, left unread.
func peekNonSpace(br *bufio.Reader) (byte, error) {
	for n := 1; ; n++ {
		b, err := br.Peek(n)
		if len(b) < n {
			return 0, err
		}
		switch b[n-1] {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b[n-1], nil
	}
}

// targetChoices are the classes of a classifier's target, nil for a
// regression.
func targetChoices(info client.Dataset) []string {
	for _, col := range info.Columns {
		if col.Target {
			return col.Choices
		}
	}
	return nil
}

// instanceSource yields instances as JSON objects and where each started
// in the input (e.g. "line 12"), for error messages.
type instanceSource interface {
	next() (json.RawMessage, string, error)
}

type jsonLines struct {
	sc   *bufio.Scanner
	line int
}

func newJSONLines(r io.Reader) *jsonLines {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20) // a text column may hold 100 kB and more
	return &jsonLines{sc: sc}
}

func (j *jsonLines) next() (json.RawMessage, string, error) {
	for j.sc.Scan() {
		j.line++
		line := bytes.TrimSpace(j.sc.Bytes())
		if len(line) == 0 {
			continue
		}
		where := "line " + strconv.Itoa(j.line)
		var inst map[string]json.RawMessage
		if err := json.Unmarshal(line, &inst); err != nil {
			return nil, "", fmt.Errorf("%s: want one JSON object per line: %w", where, err)
		}
		return bytes.Clone(line), where, nil
	}
	if err := j.sc.Err(); err != nil {
		return nil, "", fmt.Errorf("after line %d: %w", j.line, err)
	}
	return nil, "", io.EOF
}

// csvInstances reads CSV records, keeping the definition's feature
// columns (values as strings: the gateway parses them as it parses CSV).
type csvInstances struct {
	cr     *csv.Reader
	header []string
	keep   []bool
}

func newCSVInstances(r io.Reader, info client.Dataset) (*csvInstances, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("reading the CSV header: %w", err)
	}
	header = slices.Clone(header) // ReuseRecord would overwrite it
	cols := map[string]client.Column{}
	for _, col := range info.Columns {
		cols[col.Name] = col
	}
	keep := make([]bool, len(header))
	have := map[string]bool{}
	for i, name := range header {
		col, ok := cols[name]
		keep[i] = ok && !col.Target && !col.Dropped
		have[name] = true
	}
	// A missing required column would fail every request: say so first.
	var missing []string
	for _, col := range info.Columns {
		if col.Required && !col.Target && !col.Dropped && !have[col.Name] {
			missing = append(missing, col.Name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the CSV header lacks columns %s needs to predict: %s", info.Name, strings.Join(missing, ", "))
	}
	return &csvInstances{cr: cr, header: header, keep: keep}, nil
}

func (c *csvInstances) next() (json.RawMessage, string, error) {
	rec, err := c.cr.Read()
	if err != nil {
		return nil, "", err // io.EOF, or a *csv.ParseError naming the line
	}
	line, _ := c.cr.FieldPos(0)
	inst := make(map[string]string, len(rec))
	for i, v := range rec {
		if c.keep[i] {
			inst[c.header[i]] = v
		}
	}
	b, err := json.Marshal(inst)
	return b, "line " + strconv.Itoa(line), err
}

// batcher groups instances into requests and writes their answers.
type batcher struct {
	c     *client.Client
	ds    string
	out   *predictionWriter
	body  []byte
	where []string
	sent  int // instances answered so far
}

func (b *batcher) add(ctx context.Context, inst json.RawMessage, where string) error {
	if len(b.where) > 0 && (len(b.where) == predictBatch || len(b.body)+len(inst) > predictBytes) {
		if err := b.flush(ctx); err != nil {
			return err
		}
	}
	if len(b.where) == 0 {
		b.body = append(b.body[:0], `{"instances":[`...)
	} else {
		b.body = append(b.body, ',')
	}
	b.body = append(b.body, inst...)
	b.where = append(b.where, where)
	return nil
}

// instanceAt matches the gateway's error about one instance of a request.
var instanceAt = regexp.MustCompile(`^instance (\d+): `)

func (b *batcher) flush(ctx context.Context) error {
	if len(b.where) == 0 {
		return nil
	}
	b.body = append(b.body, "]}"...)
	res, err := b.c.PredictJSON(ctx, b.ds, b.body)
	if err != nil {
		return b.locate(err)
	}
	if len(res.Predictions) != len(b.where) {
		return fmt.Errorf("instances %d..%d: %d predictions for %d instances", b.sent+1, b.sent+len(b.where), len(res.Predictions), len(b.where))
	}
	if err := b.out.write(res); err != nil {
		return err
	}
	b.sent += len(b.where)
	b.where = b.where[:0]
	return nil
}

// locate names the input line of the instance the gateway refused, else
// the range of instances the request held.
func (b *batcher) locate(err error) error {
	var ce *client.Error
	if errors.As(err, &ce) {
		if m := instanceAt.FindStringSubmatch(ce.Message); m != nil {
			if i, convErr := strconv.Atoi(m[1]); convErr == nil && i >= 0 && i < len(b.where) {
				return fmt.Errorf("instance %d (%s): %s: %s", b.sent+i+1, b.where[i], ce.Status, strings.TrimPrefix(ce.Message, m[0]))
			}
		}
	}
	return fmt.Errorf("instances %d..%d (%s to %s): %w", b.sent+1, b.sent+len(b.where), b.where[0], b.where[len(b.where)-1], err)
}

// predictionWriter writes answers as CSV or JSON lines, with the
// probabilities of a classifier's classes.
type predictionWriter struct {
	classes []string
	asJSON  bool
	w       io.Writer
	csv     *csv.Writer
	stderr  io.Writer
	model   string // the model ID last named on stderr
	started bool
}

func (p *predictionWriter) write(res client.Predictions) error {
	if res.Model.ID != p.model {
		// Named again when a promotion swapped the model mid-file.
		model, _ := json.Marshal(res.Model)
		fmt.Fprintf(p.stderr, "model: %s\n", model)
		p.model = res.Model.ID
	}
	classes := p.classes
	switch {
	case len(res.Probabilities) == 0:
		classes = nil
	case len(classes) == 0: // the definition did not list them: the answer's
		for c := range res.Probabilities[0] {
			classes = append(classes, c)
		}
		slices.Sort(classes)
		p.classes = classes
	}
	if !p.started && !p.asJSON {
		header := []string{"prediction", "prediction_id"}
		for _, c := range classes {
			header = append(header, "probability_"+c)
		}
		_ = p.csv.Write(header)
	}
	p.started = true
	rec := make([]string, 0, 2+len(classes))
	for i, pred := range res.Predictions {
		id := ""
		if i < len(res.PredictionIDs) {
			id = res.PredictionIDs[i]
		}
		var probs map[string]float64
		if i < len(res.Probabilities) {
			probs = res.Probabilities[i]
		}
		if p.asJSON {
			line := struct {
				Prediction    client.Prediction  `json:"prediction"`
				Probabilities map[string]float64 `json:"probabilities,omitempty"`
				PredictionID  string             `json:"prediction_id"`
			}{pred, probs, id}
			b, err := json.Marshal(line)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintln(p.w, string(b)); err != nil {
				return err
			}
			continue
		}
		rec = append(rec[:0], pred.String(), id)
		for _, c := range classes {
			v, ok := probs[c]
			if !ok {
				rec = append(rec, "")
				continue
			}
			rec = append(rec, strconv.FormatFloat(v, 'f', -1, 64))
		}
		_ = p.csv.Write(rec)
	}
	p.csv.Flush()
	return p.csv.Error()
}
