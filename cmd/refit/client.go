package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/refit-ml/refit/client"
	"github.com/refit-ml/refit/internal/synth"
)

// newClient is the gateway client of every client command: --server, else
// REFIT_SERVER, else REFIT_HTTP_ADDR's port on this machine; the admin
// token when REFIT_ADMIN_TOKEN is set.
func newClient(getenv func(string) string, serverFlag string) *client.Client {
	return client.FromEnv(getenv, serverFlag)
}

// serverFlagHelp describes every client command's --server flag.
const serverFlagHelp = "gateway URL (env REFIT_SERVER; default: REFIT_HTTP_ADDR's port on localhost, else " + client.DefaultServer + ")"

const statusHelp = `refit status shows what the pipeline has done for a dataset.

Example:
  refit status housing
  refit status housing --json | jq .champion`

func statusCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", statusHelp, stderr)
	asJSON := fs.Bool("json", false, "print the gateway's JSON")
	server := fs.String("server", "", serverFlagHelp)
	pos, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	c := newClient(getenv, *server)
	names := pos
	if len(names) == 0 {
		if names, err = c.Datasets(ctx); err != nil {
			return err
		}
	}
	for _, name := range names {
		if *asJSON {
			raw, err := c.GetJSON(ctx, "/v1/datasets/"+url.PathEscape(name))
			if err != nil {
				return err
			}
			if err := printRaw(stdout, raw); err != nil {
				return err
			}
			continue
		}
		v, err := c.Dataset(ctx, name)
		if err != nil {
			return err
		}
		printStatus(stdout, v)
	}
	return nil
}

func printStatus(w io.Writer, v client.Dataset) {
	fmt.Fprintf(w, "dataset %s: %d rows accepted, %d rejected, %d duplicate from %d sources; %d staged rows waiting (batch %d)\n",
		v.Name, v.Rows.Accepted, v.Rows.Rejected, v.Rows.Duplicate, v.Rows.Sources, v.StagedRows, v.BatchSize)
	if c := v.Champion; c != nil {
		fmt.Fprintf(w, "champion: %s (%s) from version %d, promotion #%d at %s, %s\n",
			c.RunID, c.Spec, c.Version, c.Sequence, c.PromotedAt.Format(time.RFC3339), primaryScore(c.Metrics))
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
  refit gen housing --rows 1000 --bad-fraction 0.05 --out var/bucket/incoming/housing/bad.csv
  refit gen reviews --rows 10000 --seed 3 --label-noise 0.05 > reviews.csv`

func genCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gen", genHelp, stderr)
	rows := fs.Int("rows", 1000, "rows to write")
	seed := fs.Int64("seed", 1, "random seed (same seed, same file)")
	bad := fs.Float64("bad-fraction", 0, "share of rows with a malformed value")
	zero := fs.Float64("zero-price-fraction", 0, "share of rows with price 0")
	noise := fs.Float64("label-noise", 0, "reviews: share of rows whose label is flipped (0..0.5)")
	out := fs.String("out", "", "file to write (default stdout); written to a temp name, then renamed")
	pos, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	gens := map[string]interface{ Write(io.Writer, int) error }{
		"housing": synth.Housing{Seed: *seed, BadRowFraction: *bad, ZeroPriceFraction: *zero},
		"reviews": synth.Reviews{Seed: *seed, LabelNoise: *noise},
	}
	h, ok := gens[""]
	if len(pos) == 1 {
		h, ok = gens[pos[0]]
	}
	if !ok {
		fs.Usage()
		return &usageError{"gen: the generators are 'housing' and 'reviews'"}
	}
	if *rows < 0 {
		return &usageError{"--rows must not be negative"}
	}
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
