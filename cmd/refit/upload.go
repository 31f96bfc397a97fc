package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/refit-ml/refit/client"
)

const uploadHelp = `refit upload sends CSV files to a dataset through the gateway, with a
progress line, then tells what became of each file (accepted, rejected,
duplicate). With --wait it waits for the version holding the rows, the
promotion decision on it and the gateway serving the champion.

Example:
  refit upload houses.csv more.csv --dataset housing
  refit upload houses.csv --dataset housing --wait
  REFIT_SERVER=http://refit.example.com refit upload houses.csv --dataset housing`

type uploaded struct {
	file, object string
	generation   int64
	result       client.ObjectGeneration
}

func uploadCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("upload", uploadHelp, stderr)
	ds := fs.String("dataset", "", "dataset to upload to (required)")
	server := fs.String("server", "", serverFlagHelp)
	wait := fs.Bool("wait", false, "wait for the version holding the rows, the promotion decision and the gateway serving the champion")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the pipeline")
	files, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if *ds == "" || len(files) == 0 {
		fs.Usage()
		return &usageError{"upload needs --dataset and at least one FILE"}
	}
	c := newClient(getenv, *server)
	info, err := fetchDataset(ctx, c, *ds)
	if err != nil {
		return err
	}
	// Check every header first: a file the preprocessor would reject
	// whole is not worth sending.
	for _, f := range files {
		if err := checkHeader(f, info); err != nil {
			return err
		}
	}
	var done []uploaded
	for _, f := range files {
		u, err := uploadFile(ctx, c, *ds, f, stdout)
		if err != nil {
			return fmt.Errorf("upload %s: %w", f, err)
		}
		done = append(done, u)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	for i := range done {
		u := &done[i]
		if u.result, err = waitIngest(ctx, c, *ds, u.object, u.generation, *wait); err != nil {
			return fmt.Errorf("%s: %w", u.file, err)
		}
		printIngest(stdout, *u)
	}
	if !*wait {
		return nil
	}
	return waitDecision(ctx, c, info, done, stdout)
}

func fetchDataset(ctx context.Context, c *client.Client, ds string) (client.Dataset, error) {
	// The gateway's 404 names the known datasets.
	info, err := c.Dataset(ctx, ds)
	if err != nil {
		return info, fmt.Errorf("dataset %s: %w", ds, err)
	}
	return info, nil
}

// checkHeader compares a CSV's header with the dataset's columns.
func checkHeader(path string, info client.Dataset) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	header, err := csv.NewReader(bufio.NewReader(f)).Read()
	if err != nil {
		return fmt.Errorf("%s: reading the header: %w", path, err)
	}
	for i := range header {
		header[i] = strings.TrimSpace(header[i])
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	var missing []string
	for _, col := range info.Columns {
		if col.Required && !slices.Contains(header, col.Name) {
			missing = append(missing, col.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: the header lacks required columns of %s: %s (nothing uploaded)", path, info.Name, strings.Join(missing, ", "))
	}
	return nil
}

func uploadFile(ctx context.Context, c *client.Client, ds, path string, stdout io.Writer) (uploaded, error) {
	u := uploaded{file: path}
	f, err := os.Open(path)
	if err != nil {
		return u, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return u, err
	}
	// The body is wrapped so http does not see an *os.File: it would
	// send it with sendfile and bypass the progress reader.
	p := newProgress(f, stdout, path, st.Size(), time.Now)
	out, err := c.Upload(ctx, ds, uploadObjectName(filepath.Base(path)), p, st.Size())
	if err != nil {
		return u, err
	}
	p.finish()
	u.object, u.generation = out.Object, out.Generation
	return u, nil
}

// uploadObjectName makes a file name acceptable to the gateway (letters,
// digits, '.', '_', '-').
func uploadObjectName(base string) string {
	b := []byte(base)
	for i, ch := range b {
		ok := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '_' || ch == '-'
		if !ok {
			b[i] = '_'
		}
	}
	return strings.TrimLeft(string(b), "._-")
}

// waitIngest polls the object endpoint until the generation is ingested
// (and, with needVersion, until its rows are in a version, unless none
// were accepted).
func waitIngest(ctx context.Context, c *client.Client, ds, object string, gen int64, needVersion bool) (client.ObjectGeneration, error) {
	for {
		h, err := c.Object(ctx, ds, object)
		if err != nil {
			return client.ObjectGeneration{}, err
		}
		for _, g := range h.Generations {
			if g.Generation != gen || g.Status == client.IngestPending {
				continue
			}
			if !needVersion || g.Accepted == 0 || g.FirstVersion != nil {
				return g, nil
			}
		}
		select {
		case <-ctx.Done():
			return client.ObjectGeneration{}, fmt.Errorf("waiting for the pipeline: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func printIngest(w io.Writer, u uploaded) {
	g := u.result
	fmt.Fprintf(w, "%s -> %s: %s (%d accepted, %d rejected, %d duplicate)", u.file, u.object, g.Status, g.Accepted, g.Rejected, g.Duplicate)
	if g.Reason != "" {
		fmt.Fprintf(w, ": %s", g.Reason)
	}
	if g.FirstVersion != nil {
		fmt.Fprintf(w, "; in version %d", *g.FirstVersion)
	}
	fmt.Fprintln(w)
	if g.Quarantine != "" {
		fmt.Fprintf(w, "  rejected rows and reasons: GET /v1/datasets/%s/ingests/%s/quarantine\n", strings.Split(u.object, "/")[1], g.IngestID)
	}
}

// waitDecision waits for the promotion decision of every model spec on
// the newest version holding the uploads' rows.
func waitDecision(ctx context.Context, c *client.Client, info client.Dataset, done []uploaded, stdout io.Writer) error {
	version := 0
	for _, u := range done {
		if u.result.FirstVersion != nil {
			version = max(version, *u.result.FirstVersion)
		}
	}
	if version == 0 {
		fmt.Fprintln(stdout, "no accepted rows: no new version to wait for")
		return nil
	}
	fmt.Fprintf(stdout, "version %d: waiting for the promotion decision\n", version)
	for {
		runs, err := c.AllRuns(ctx, info.Name, client.RunsQuery{Version: version})
		if err != nil {
			return err
		}
		hist, err := c.Promotions(ctx, info.Name)
		if err != nil {
			return err
		}
		var lines []string
		for _, r := range runs {
			for _, d := range hist.Decisions {
				if d.RunID == r.ID && r.Version == version {
					lines = append(lines, fmt.Sprintf("version %d %s: %s: %s", version, r.Spec, d.Status, d.Reason))
				}
			}
		}
		if len(lines) >= len(info.Models) && len(lines) > 0 {
			slices.Sort(lines)
			for _, l := range lines {
				fmt.Fprintln(stdout, l)
			}
			return waitServed(ctx, c, info.Name, hist, stdout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the decision on version %d: %w", version, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitServed waits until the gateway serves the latest promotion, so that
// a predict right after `upload --wait` meets the new model (the
// gateway loads it on model.promoted, a moment after the decision).
func waitServed(ctx context.Context, c *client.Client, ds string, hist client.History, stdout io.Writer) error {
	if len(hist.Promotions) == 0 {
		return nil
	}
	latest := hist.Promotions[len(hist.Promotions)-1]
	for {
		m, err := c.Model(ctx, ds)
		if err != nil {
			return err
		}
		if m.Model != nil && m.Model.Sequence >= latest.Sequence {
			fmt.Fprintf(stdout, "serving %s (%s, version %d), promotion #%d\n", m.Model.ID, m.Model.Spec, m.Model.DatasetVersion, m.Model.Sequence)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the gateway to serve promotion #%d: %w", latest.Sequence, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
