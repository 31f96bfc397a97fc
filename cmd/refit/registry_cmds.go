package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/refit-ml/refit/client"
)

// The registry commands read and change the model registry through the
// gateway's API, like any other client would.

// commonFlags are the flags every registry command takes.
type commonFlags struct {
	server *string
	asJSON *bool
}

func newCommonFlags(fs *flag.FlagSet) commonFlags {
	return commonFlags{
		server: fs.String("server", "", serverFlagHelp),
		asJSON: fs.Bool("json", false, "print JSON instead of a table"),
	}
}

// parseArgs parses flags and wants exactly n positional arguments.
func parseArgs(fs *flag.FlagSet, args []string, n int, what string) ([]string, error) {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != n {
		fs.Usage()
		return nil, &usageError{fmt.Sprintf("%s: want %s", fs.Name(), what)}
	}
	return pos, nil
}

// printRaw prints the gateway's JSON as it came, indented.
func printRaw(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, buf.String())
	return err
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// ago says how long ago t was, as a person would.
func ago(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case t.IsZero():
		return "-"
	case d < 0:
		return t.Format("2006-01-02 15:04")
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	case d < 30*24*time.Hour:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	default:
		return t.Format("2006-01-02")
	}
}

func short(id string) string {
	if id == "" {
		return "-"
	}
	return id
}

const runsHelp = `refit runs lists a dataset's training runs, oldest first.

Example:
  refit runs housing
  refit runs housing --spec linear-onehot --version 3 --json`

func runsCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("runs", runsHelp, stderr)
	cf := newCommonFlags(fs)
	spec := fs.String("spec", "", "only runs of this spec")
	version := fs.Int("version", 0, "only runs on this dataset version")
	last := fs.Int("last", 0, "only the newest N runs (0: all)")
	pos, err := parseArgs(fs, args, 1, "DATASET")
	if err != nil {
		return err
	}
	c := newClient(getenv, *cf.server)
	ds := pos[0]
	runs, err := c.AllRuns(ctx, ds, client.RunsQuery{Spec: *spec, Version: *version})
	if err != nil {
		return err
	}
	if *last > 0 && len(runs) > *last {
		runs = runs[len(runs)-*last:]
	}
	if *cf.asJSON {
		return printJSON(stdout, map[string]any{"runs": runs})
	}
	h, err := c.Promotions(ctx, ds)
	if err != nil {
		return err
	}
	status := map[string]string{}
	for _, d := range h.Decisions {
		status[d.RunID] = strings.ReplaceAll(d.Status, "_", " ")
	}
	champion := ""
	if n := len(h.Promotions); n > 0 {
		champion = h.Promotions[n-1].RunID
	}
	now := time.Now()
	classifier := slices.ContainsFunc(runs, func(r client.Run) bool { return r.Metrics.Classification != nil })
	scoreHeader := "RMSE\tMAE\tR2"
	if classifier {
		scoreHeader = "ACCURACY\tF1 MACRO\tLOG LOSS\tROC AUC"
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSPEC\tVERSION\t"+scoreHeader+"\tTRAIN ROWS\tTOOK\tCREATED\tDECISION")
	for _, r := range runs {
		decision := status[r.ID]
		if decision == "" {
			decision = "pending"
		}
		if r.ID == champion {
			decision = "champion"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\n", r.ID, r.Spec, r.Version, scoreCells(r.Metrics, classifier),
			r.TrainRows, r.Duration().Round(time.Millisecond), ago(r.CreatedAt, now), decision)
	}
	return tw.Flush()
}

// scoreCells are a run's score columns: accuracy, macro F1, log loss and
// ROC AUC ("-" unless binary) of a classifier, else RMSE, MAE and R².
func scoreCells(m client.Metrics, classifier bool) string {
	if !classifier {
		return fmt.Sprintf("%.1f\t%.1f\t%.4f", m.RMSE, m.MAE, m.R2)
	}
	c := m.Classification
	if c == nil {
		return "-\t-\t-\t-"
	}
	auc := "-"
	if c.ROCAUC != nil {
		auc = fmt.Sprintf("%.4f", *c.ROCAUC)
	}
	return fmt.Sprintf("%.4f\t%.4f\t%.4f\t%s", c.Accuracy, c.F1Macro, c.LogLoss, auc)
}

// primaryScore is one line's worth of a model's scores.
func primaryScore(m client.Metrics) string {
	if c := m.Classification; c != nil {
		return fmt.Sprintf("accuracy %.4f f1_macro %.4f", c.Accuracy, c.F1Macro)
	}
	return fmt.Sprintf("rmse %.1f r2 %.3f", m.RMSE, m.R2)
}

const versionsHelp = `refit versions lists a dataset's versions.

Example:
  refit versions housing
  refit versions housing --json`

func versionsCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("versions", versionsHelp, stderr)
	cf := newCommonFlags(fs)
	pos, err := parseArgs(fs, args, 1, "DATASET")
	if err != nil {
		return err
	}
	st, err := newClient(getenv, *cf.server).Dataset(ctx, pos[0])
	if err != nil {
		return err
	}
	if *cf.asJSON {
		return printJSON(stdout, map[string]any{"versions": st.Versions})
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tROWS\tNEW\tTRAIN\tTEST\tSOURCES\tHASH\tCREATED")
	for _, v := range st.Versions {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%.12s\t%s\n", v.Number, v.Rows, v.NewRows, v.TrainRows, v.TestRows, v.Sources, v.Hash, ago(v.CreatedAt, now))
	}
	return tw.Flush()
}

const promotionsHelp = `refit promotions shows a dataset's promotion history, newest last, and
the runs awaiting approval.

Example:
  refit promotions housing
  refit promotions housing --json | jq '.decisions[] | select(.status == "awaiting_approval")'`

func promotionsCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("promotions", promotionsHelp, stderr)
	cf := newCommonFlags(fs)
	pos, err := parseArgs(fs, args, 1, "DATASET")
	if err != nil {
		return err
	}
	c := newClient(getenv, *cf.server)
	if *cf.asJSON {
		raw, err := c.GetJSON(ctx, "/v1/datasets/"+url.PathEscape(pos[0])+"/promotions")
		if err != nil {
			return err
		}
		return printRaw(stdout, raw)
	}
	h, err := c.Promotions(ctx, pos[0])
	if err != nil {
		return err
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	classifier := slices.ContainsFunc(h.Promotions, func(p client.Promotion) bool { return p.Metrics.Classification != nil })
	score := "RMSE"
	if classifier {
		score = "ACCURACY"
	}
	fmt.Fprintln(tw, "SEQ\tRUN\tSPEC\tVERSION\t"+score+"\tPREVIOUS\tACTOR\tWHEN\tREASON")
	promoted := map[string]bool{}
	for _, p := range h.Promotions {
		promoted[p.RunID] = true
		cell := fmt.Sprintf("%.1f", p.Metrics.RMSE)
		if classifier {
			cell = "-"
			if c := p.Metrics.Classification; c != nil {
				cell = fmt.Sprintf("%.4f", c.Accuracy)
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", p.Sequence, p.RunID, p.Spec, p.Version, cell,
			short(p.PreviousRunID), p.Actor, ago(p.PromotedAt, now), p.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, d := range h.Decisions {
		if d.Status == client.StatusAwaitingApproval && !promoted[d.RunID] {
			fmt.Fprintf(stdout, "awaiting approval: run %s (%s): %s\n  approve with: refit promote %s --dataset %s\n", d.RunID, ago(d.DecidedAt, now), d.Reason, d.RunID, pos[0])
		}
	}
	return nil
}

const promoteHelp = `refit promote makes a run the champion of its dataset, by hand (e.g. a run
awaiting approval). Needs REFIT_ADMIN_TOKEN when the gateway has one.

Example:
  refit promote 3f2a9c0d11e4b7a8
  refit promote 3f2a9c0d11e4b7a8 --dataset housing --reason "approved after review"`

func promoteCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("promote", promoteHelp, stderr)
	cf := newCommonFlags(fs)
	ds := fs.String("dataset", "", "the run's dataset (default: looked up)")
	reason := fs.String("reason", "", "why (recorded in the history)")
	actor := fs.String("actor", "", "who (default $USER, else admin)")
	pos, err := parseArgs(fs, args, 1, "RUN_ID")
	if err != nil {
		return err
	}
	c := newClient(getenv, *cf.server)
	if *ds == "" {
		run, err := c.Run(ctx, pos[0])
		if err != nil {
			return err
		}
		*ds = run.Dataset
	}
	req := client.PromoteRequest{RunID: pos[0], Actor: firstSet(*actor, getenv("USER")), Reason: *reason}
	return postPromotion(ctx, c, *ds, req, *cf.asJSON, stdout)
}

const rollbackHelp = `refit rollback makes the previous champion of a dataset the champion
again (the latest promotion's previous run); a second rollback undoes it.
Needs REFIT_ADMIN_TOKEN when the gateway has one.

Example:
  refit rollback housing --reason "complaints about prices in Kent"`

func rollbackCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rollback", rollbackHelp, stderr)
	cf := newCommonFlags(fs)
	reason := fs.String("reason", "", "why (recorded in the history)")
	actor := fs.String("actor", "", "who (default $USER, else admin)")
	pos, err := parseArgs(fs, args, 1, "DATASET")
	if err != nil {
		return err
	}
	req := client.PromoteRequest{Rollback: true, Actor: firstSet(*actor, getenv("USER")), Reason: *reason}
	return postPromotion(ctx, newClient(getenv, *cf.server), pos[0], req, *cf.asJSON, stdout)
}

func postPromotion(ctx context.Context, c *client.Client, ds string, req client.PromoteRequest, asJSON bool, stdout io.Writer) error {
	p, err := c.Promote(ctx, ds, req)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(stdout, p)
	}
	_, err = fmt.Fprintf(stdout, "promotion #%d of %s: run %s (%s, version %d) replaces %s, by %s: %s\n",
		p.Sequence, ds, p.RunID, p.Spec, p.Version, short(p.PreviousRunID), p.Actor, p.Reason)
	return err
}

const reproduceHelp = `refit reproduce retrains a run from its recorded dataset version and spec
and checks that the model comes out byte for byte the same. Needs
REFIT_ADMIN_TOKEN when the gateway has one.

Example:
  refit reproduce 3f2a9c0d11e4b7a8`

func reproduceCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("reproduce", reproduceHelp, stderr)
	cf := newCommonFlags(fs)
	pos, err := parseArgs(fs, args, 1, "RUN_ID")
	if err != nil {
		return err
	}
	r, err := newClient(getenv, *cf.server).Reproduce(ctx, pos[0])
	if err != nil {
		return err
	}
	if *cf.asJSON {
		if err := printJSON(stdout, r); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "run %s: refitted %s on %d train rows of %s version %d in %s\n", r.RunID, r.Spec, r.TrainRows, r.Dataset, r.Version,
			time.Duration(r.DurationMS*float64(time.Millisecond)).Round(time.Millisecond))
		fmt.Fprintf(stdout, "checksum %s\nrecorded %s\n", r.Checksum, r.RecordedChecksum)
	}
	if !r.Identical {
		return errors.New("the retrained model differs from the recorded one")
	}
	if !*cf.asJSON {
		fmt.Fprintln(stdout, "identical: the run is reproducible")
	}
	return nil
}
