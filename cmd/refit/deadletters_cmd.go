package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

const deadLettersHelp = `refit deadletters lists the events a worker failed on for good, with the
reason; with --replay ID it publishes one again on its topic, once its
cause is fixed (e.g. the dataset definition it lacked was added). A dead
letter is replayed at most once; a replay that fails again is a new dead
letter. Needs REFIT_ADMIN_TOKEN when the gateway has one.

Example:
  refit deadletters
  refit deadletters --replay 5c1f0e9a2b7d4c3e`

func deadLettersCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("deadletters", deadLettersHelp, stderr)
	cf := newCommonFlags(fs)
	replay := fs.String("replay", "", "replay the dead letter with this ID")
	actor := fs.String("actor", "", "who replays (default $USER, else admin)")
	if _, err := parseArgs(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	c := newClient(getenv, *cf.server)
	if *replay != "" {
		rp, err := c.ReplayDeadLetter(ctx, *replay, firstSet(*actor, getenv("USER")))
		if err != nil {
			return err
		}
		if *cf.asJSON {
			return printJSON(stdout, rp)
		}
		what := "replayed"
		if rp.Already {
			what = "already replayed"
		}
		_, err = fmt.Fprintf(stdout, "dead letter %s %s on %s as message %s by %s at %s\n", rp.DeadLetterID, what, rp.Topic, rp.MessageID, rp.Actor, rp.At.Format(time.RFC3339))
		return err
	}
	dls, err := c.DeadLetters(ctx)
	if err != nil {
		return err
	}
	if *cf.asJSON {
		return printJSON(stdout, map[string]any{"dead_letters": dls})
	}
	if len(dls) == 0 {
		_, err := fmt.Fprintln(stdout, "no dead letters")
		return err
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWHEN\tTOPIC\tHANDLER\tREPLAYED\tREASON")
	for _, d := range dls {
		replayed := "-"
		if d.Replay != nil {
			replayed = ago(d.Replay.At, now)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, ago(d.At, now), d.Topic, d.Handler, replayed, strings.ReplaceAll(d.Reason, "\n", " "))
	}
	return tw.Flush()
}
