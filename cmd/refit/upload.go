package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const uploadHelp = `refit upload sends CSV files to a dataset through the gateway, with a
progress line, then tells what became of each file (accepted, rejected,
duplicate). With --wait it waits for the version holding the rows and the
promotion decision on it.

Example:
  refit upload houses.csv more.csv --dataset housing
  refit upload houses.csv --dataset housing --wait
  REFIT_SERVER=http://refit.example.com refit upload houses.csv --dataset housing`

// datasetInfo is what the CLI reads of GET /v1/datasets/{d}.
type datasetInfo struct {
	Name    string   `json:"name"`
	Models  []string `json:"models"`
	Columns []struct {
		Name     string `json:"name"`
		Required bool   `json:"required"`
		Target   bool   `json:"target"`
		Dropped  bool   `json:"dropped"`
	} `json:"columns"`
}

type objectGenerationView struct {
	Generation   int64  `json:"generation"`
	Current      bool   `json:"current"`
	Status       string `json:"status"`
	Reason       string `json:"reason"`
	IngestID     string `json:"ingest_id"`
	Accepted     int    `json:"accepted"`
	Rejected     int    `json:"rejected"`
	Duplicate    int    `json:"duplicate"`
	Quarantine   string `json:"quarantine"`
	FirstVersion *int   `json:"first_version"`
}

type uploaded struct {
	file, object string
	generation   int64
	result       objectGenerationView
}

func uploadCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("upload", uploadHelp, stderr)
	ds := fs.String("dataset", "", "dataset to upload to (required)")
	server := fs.String("server", "", "gateway URL (env REFIT_SERVER, default http://localhost:8080)")
	wait := fs.Bool("wait", false, "wait for the version holding the rows and the promotion decision")
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
	c := newAPIClient(getenv, *server)
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

func fetchDataset(ctx context.Context, c *apiClient, ds string) (datasetInfo, error) {
	var info datasetInfo
	// The gateway's 404 names the known datasets.
	if err := c.get(ctx, "/v1/datasets/"+url.PathEscape(ds), &info); err != nil {
		return info, fmt.Errorf("dataset %s: %w", ds, err)
	}
	return info, nil
}

// checkHeader compares a CSV's header with the dataset's columns.
func checkHeader(path string, info datasetInfo) error {
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

func uploadFile(ctx context.Context, c *apiClient, ds, path string, stdout io.Writer) (uploaded, error) {
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
	name := uploadObjectName(filepath.Base(path))
	p := newProgress(f, stdout, path, st.Size(), time.Now)
	req := fmt.Sprintf("/v1/datasets/%s/uploads?name=%s", url.PathEscape(ds), url.QueryEscape(name))
	// The body is wrapped so http does not see an *os.File: it would
	// send it with sendfile and bypass the progress reader.
	resp, err := c.requestSized(ctx, http.MethodPost, req, "text/csv", p, st.Size())
	if err != nil {
		return u, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return u, apiError(resp)
	}
	p.finish()
	var out struct {
		Object     string `json:"object"`
		Generation int64  `json:"generation"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return u, err
	}
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

// requestSized sends a body of known length (so the gateway sees
// Content-Length, not chunked encoding).
func (c *apiClient) requestSized(ctx context.Context, method, path, contentType string, body io.Reader, size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", contentType)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return http.DefaultClient.Do(req)
}

// waitIngest polls the object endpoint until the generation is ingested
// (and, with needVersion, until its rows are in a version, unless none
// were accepted).
func waitIngest(ctx context.Context, c *apiClient, ds, object string, gen int64, needVersion bool) (objectGenerationView, error) {
	path := "/v1/datasets/" + url.PathEscape(ds) + "/objects/" + url.PathEscape(strings.TrimPrefix(object, "incoming/"+ds+"/"))
	for {
		var h struct {
			Generations []objectGenerationView `json:"generations"`
		}
		if err := c.get(ctx, path, &h); err != nil {
			return objectGenerationView{}, err
		}
		for _, g := range h.Generations {
			if g.Generation != gen || g.Status == "pending" {
				continue
			}
			if !needVersion || g.Accepted == 0 || g.FirstVersion != nil {
				return g, nil
			}
		}
		select {
		case <-ctx.Done():
			return objectGenerationView{}, fmt.Errorf("waiting for the pipeline: %w", ctx.Err())
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
func waitDecision(ctx context.Context, c *apiClient, info datasetInfo, done []uploaded, stdout io.Writer) error {
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
	path := "/v1/datasets/" + url.PathEscape(info.Name) + "/runs?version=" + fmt.Sprint(version)
	for {
		var runs struct {
			Runs []struct {
				ID      string `json:"id"`
				Spec    string `json:"spec"`
				Version int    `json:"version"`
			} `json:"runs"`
		}
		var hist struct {
			Decisions []struct {
				RunID  string `json:"run_id"`
				Status string `json:"status"`
				Reason string `json:"reason"`
			} `json:"decisions"`
		}
		if err := c.get(ctx, path, &runs); err != nil {
			return err
		}
		if err := c.get(ctx, "/v1/datasets/"+url.PathEscape(info.Name)+"/promotions", &hist); err != nil {
			return err
		}
		var lines []string
		for _, r := range runs.Runs {
			if r.Version != version {
				continue
			}
			for _, d := range hist.Decisions {
				if d.RunID == r.ID {
					lines = append(lines, fmt.Sprintf("version %d %s: %s: %s", version, r.Spec, d.Status, d.Reason))
				}
			}
		}
		if len(lines) >= len(info.Models) && len(lines) > 0 {
			slices.Sort(lines)
			for _, l := range lines {
				fmt.Fprintln(stdout, l)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the decision on version %d: %w", version, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
