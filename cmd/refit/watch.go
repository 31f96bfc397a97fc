package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
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
	server := fs.String("server", "", "gateway URL (env REFIT_SERVER, default http://localhost:8080)")
	ds := fs.String("dataset", "", "only this dataset's promotions (default: all)")
	if _, err := parseArgs(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	c := newAPIClient(getenv, *server)
	path := "/v1/events"
	if *ds != "" {
		path += "?dataset=" + url.QueryEscape(*ds)
	}
	wait := time.Second
	for {
		err := c.stream(ctx, path, func() { wait = time.Second; fmt.Fprintf(stderr, "watching %s%s\n", c.base, path) },
			func(eventType string, data []byte) {
				if eventType == "dev.refit.model.promoted.v1" {
					printPromotion(stdout, data)
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

// stream reads Server-Sent Events until the connection ends: connected is
// called once subscribed, on for each event.
func (c *apiClient) stream(ctx context.Context, path string, connected func(), on func(eventType string, data []byte)) error {
	resp, err := c.request(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return apiError(resp)
	}
	connected()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var eventType, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "": // a blank line ends an event
			if data != "" {
				on(eventType, []byte(data))
			}
			eventType, data = "", ""
		case strings.HasPrefix(line, ":"): // a comment: the heartbeat
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				eventType = value
			case "data":
				if data != "" {
					data += "\n"
				}
				data += value
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
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
