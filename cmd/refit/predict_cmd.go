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
	"strconv"

	"github.com/refit-ml/refit/client"
)

const predictHelp = `refit predict asks the gateway for predictions of a dataset's champion.
Input (a FILE, or standard input when FILE is - or absent) is CSV with a
header, or JSON lines (one instance object per line). The target and
dropped columns of a CSV are left out. Output: CSV in, CSV out
(prediction,prediction_id); JSON lines in, JSON lines out. The model that
answered goes to standard error.

Example:
  refit predict --dataset housing houses.csv
  echo '{"bedrooms":3, ...}' | refit predict --dataset housing -`

// predictBatch instances go in one request (the gateway's default limit).
const predictBatch = 1000

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
	br := bufio.NewReader(in)
	first, _ := br.Peek(1)
	asJSON := len(first) == 1 && first[0] == '{'
	instances, err := readInstances(br, asJSON, info)
	if err != nil {
		return err
	}
	if len(instances) == 0 {
		return errors.New("no instances in the input")
	}
	w := csv.NewWriter(stdout)
	if !asJSON {
		_ = w.Write([]string{"prediction", "prediction_id"})
	}
	for start := 0; start < len(instances); start += predictBatch {
		batch := instances[start:min(start+predictBatch, len(instances))]
		out, err := c.Predict(ctx, *ds, batch)
		if err != nil {
			return fmt.Errorf("instances %d..%d: %w", start+1, start+len(batch), err)
		}
		if start == 0 {
			model, _ := json.Marshal(out.Model)
			fmt.Fprintf(stderr, "model: %s\n", model)
		}
		for i, p := range out.Predictions {
			id := ""
			if i < len(out.PredictionIDs) {
				id = out.PredictionIDs[i]
			}
			if asJSON {
				b, _ := json.Marshal(map[string]any{"prediction": p, "prediction_id": id})
				fmt.Fprintln(stdout, string(b))
				continue
			}
			_ = w.Write([]string{strconv.FormatFloat(p, 'f', -1, 64), id})
		}
		w.Flush()
	}
	return w.Error()
}

// readInstances reads CSV (keeping the definition's feature columns) or
// JSON lines.
func readInstances(r io.Reader, asJSON bool, info client.Dataset) ([]map[string]any, error) {
	var out []map[string]any
	if asJSON {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for line := 1; sc.Scan(); line++ {
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue
			}
			var inst map[string]any
			if err := json.Unmarshal(sc.Bytes(), &inst); err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			out = append(out, inst)
		}
		return out, sc.Err()
	}
	skip := map[string]bool{}
	known := map[string]bool{}
	for _, c := range info.Columns {
		known[c.Name] = true
		skip[c.Name] = c.Target || c.Dropped
	}
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("reading the CSV header: %w", err)
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		inst := map[string]any{}
		for i, name := range header {
			if i < len(rec) && known[name] && !skip[name] {
				inst[name] = rec[i]
			}
		}
		out = append(out, inst)
	}
}
