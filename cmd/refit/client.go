package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/refit-ml/refit/internal/synth"
)

func serverURL(getenv func(string) string, flagValue string) string {
	if flagValue != "" {
		return strings.TrimRight(flagValue, "/")
	}
	if v := getenv("REFIT_SERVER"); v != "" {
		return strings.TrimRight(v, "/")
	}
	return "http://localhost:8080"
}

// apiClient calls the gateway's HTTP API. It sends REFIT_ADMIN_TOKEN, when
// set, as a bearer token: admin calls need it, others ignore it.
type apiClient struct {
	base, token string
}

func newAPIClient(getenv func(string) string, serverFlag string) *apiClient {
	return &apiClient{base: serverURL(getenv, serverFlag), token: strings.TrimSpace(getenv("REFIT_ADMIN_TOKEN"))}
}

// request sends one request; the caller closes the response body.
func (c *apiClient) request(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return http.DefaultClient.Do(req)
}

// call sends in (when not nil) as JSON and decodes a want-status answer
// into out.
func (c *apiClient) call(ctx context.Context, method, path string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.request(ctx, method, path, "application/json", body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return apiError(resp)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *apiClient) get(ctx context.Context, path string, out any) error {
	return c.call(ctx, http.MethodGet, path, nil, http.StatusOK, out)
}

// apiError reads the gateway's error body.
func apiError(resp *http.Response) error {
	var body struct {
		Error string `json:"error"`
		Field string `json:"field"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		return fmt.Errorf("%s: %s", resp.Status, body.Error)
	}
	return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
}

const statusHelp = `refit status shows what the pipeline has done for a dataset.

Example:
  refit status housing
  refit status housing --json | jq .champion`

type statusView struct {
	Name       string `json:"name"`
	BatchSize  int    `json:"batch_size"`
	StagedRows int    `json:"staged_rows_waiting"`
	Rows       struct {
		Accepted, Rejected, Duplicate, Sources int
	} `json:"rows"`
	Versions []struct {
		Number    int       `json:"number"`
		Rows      int       `json:"rows"`
		NewRows   int       `json:"new_rows"`
		Hash      string    `json:"hash"`
		CreatedAt time.Time `json:"created_at"`
	} `json:"versions"`
	Champion *struct {
		Sequence   int64
		RunID      string `json:"run_id"`
		Spec       string
		Version    int
		Metrics    struct{ RMSE, MAE, R2 float64 }
		PromotedAt time.Time `json:"promoted_at"`
	} `json:"champion"`
}

func statusCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", statusHelp, stderr)
	asJSON := fs.Bool("json", false, "print the gateway's JSON")
	server := fs.String("server", "", "gateway URL (env REFIT_SERVER, default http://localhost:8080)")
	pos, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	c := newAPIClient(getenv, *server)
	names := pos
	if len(names) == 0 {
		var list struct{ Datasets []string }
		if err := c.get(ctx, "/v1/datasets", &list); err != nil {
			return err
		}
		names = list.Datasets
	}
	for _, name := range names {
		var raw json.RawMessage
		if err := c.get(ctx, "/v1/datasets/"+url.PathEscape(name), &raw); err != nil {
			return err
		}
		if *asJSON {
			var buf bytes.Buffer
			_ = json.Indent(&buf, raw, "", "  ")
			fmt.Fprintln(stdout, buf.String())
			continue
		}
		var v statusView
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		printStatus(stdout, v)
	}
	return nil
}

func printStatus(w io.Writer, v statusView) {
	fmt.Fprintf(w, "dataset %s: %d rows accepted, %d rejected, %d duplicate from %d sources; %d staged rows waiting (batch %d)\n",
		v.Name, v.Rows.Accepted, v.Rows.Rejected, v.Rows.Duplicate, v.Rows.Sources, v.StagedRows, v.BatchSize)
	if c := v.Champion; c != nil {
		fmt.Fprintf(w, "champion: %s (%s) from version %d, promotion #%d at %s, rmse %.1f r2 %.3f\n",
			c.RunID, c.Spec, c.Version, c.Sequence, c.PromotedAt.Format(time.RFC3339), c.Metrics.RMSE, c.Metrics.R2)
	} else {
		fmt.Fprintln(w, "champion: none yet")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tROWS\tNEW\tHASH\tCREATED")
	for _, ver := range v.Versions {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.12s\t%s\n", ver.Number, ver.Rows, ver.NewRows, ver.Hash, ver.CreatedAt.Format(time.RFC3339))
	}
	tw.Flush()
}

const genHelp = `refit gen writes a generated CSV with a known ground truth.

Example:
  refit gen housing --rows 5000 --seed 7 > houses.csv
  refit gen housing --rows 1000 --bad-fraction 0.05 --out var/bucket/incoming/housing/bad.csv`

func genCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gen", genHelp, stderr)
	rows := fs.Int("rows", 1000, "rows to write")
	seed := fs.Int64("seed", 1, "random seed (same seed, same file)")
	bad := fs.Float64("bad-fraction", 0, "share of rows with a malformed value")
	zero := fs.Float64("zero-price-fraction", 0, "share of rows with price 0")
	out := fs.String("out", "", "file to write (default stdout); written to a temp name, then renamed")
	pos, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "housing" {
		fs.Usage()
		return &usageError{"gen: the one generator is 'housing'"}
	}
	if *rows < 0 {
		return &usageError{"--rows must not be negative"}
	}
	h := synth.Housing{Seed: *seed, BadRowFraction: *bad, ZeroPriceFraction: *zero}
	if *out == "" {
		return h.Write(stdout, *rows)
	}
	// A watcher must never see half a file: write aside, then rename.
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(*out), "."+filepath.Base(*out)+".part")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := h.Write(f, *rows); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, *out)
}
