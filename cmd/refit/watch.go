package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/refit-ml/refit/client"
)

const watchHelp = `refit watch prints one line per promotion as it happens. It reads the
gateway's event stream (GET /v1/events, Server-Sent Events) and reconnects
when the connection drops.

Example:
  refit watch --dataset housing`

// watchCmd is a subscriber to copy: open the stream, split it into events
// at blank lines, act on the model.promoted ones.
func watchCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("watch", watchHelp, stderr)
	server := fs.String("server", "", serverFlagHelp)
	ds := fs.String("dataset", "", "only this dataset's promotions (default: all)")
	if _, err := parseArgs(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	c := newClient(getenv, *server)
	wait := time.Second
	for {
		err := c.Events(ctx, *ds, func() { wait = time.Second; fmt.Fprintf(stderr, "watching %s/v1/events %s\n", c.Base(), *ds) },
			func(e client.Event) {
				if e.Type == "dev.refit.model.promoted.v1" {
					printPromotion(stdout, e.Data)
				}
			})
		if ctx.Err() != nil {
			return nil
		}
		fmt.Fprintf(stderr, "refit watch: %v; reconnecting in %s\n", err, wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func printPromotion(w io.Writer, data []byte) {
	var p struct {
		Dataset        string    `json:"dataset"`
		Sequence       int64     `json:"sequence"`
		ModelID        string    `json:"model_id"`
		Spec           string    `json:"spec"`
		DatasetVersion int       `json:"dataset_version"`
		Actor          string    `json:"actor"`
		Reason         string    `json:"reason"`
		PromotedAt     time.Time `json:"promoted_at"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		fmt.Fprintf(w, "unreadable model.promoted: %v\n", err)
		return
	}
	fmt.Fprintf(w, "%s %s promotion #%d: model %s (%s, version %d) by %s: %s\n", p.PromotedAt.Local().Format(time.DateTime),
		p.Dataset, p.Sequence, p.ModelID, p.Spec, p.DatasetVersion, p.Actor, p.Reason)
}
