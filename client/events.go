package client

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Events reads GET /v1/events (Server-Sent Events; one dataset's, or all
// when dataset is empty) until the stream ends or ctx does: connected is
// called once subscribed (may be nil), on for each event. It returns
// io.ErrUnexpectedEOF when the gateway closes the stream; callers
// reconnect.
func (c *Client) Events(ctx context.Context, dataset string, connected func(), on func(Event)) error {
	path := "/v1/events"
	if dataset != "" {
		path += "?dataset=" + url.QueryEscape(dataset)
	}
	resp, err := c.do(ctx, http.MethodGet, path, "", nil, -1, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if connected != nil {
		connected()
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var e Event
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "": // a blank line ends an event
			if data.Len() > 0 {
				e.Data = []byte(data.String())
				on(e)
			}
			e = Event{}
			data.Reset()
		case strings.HasPrefix(line, ":"): // a comment: the heartbeat
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				e.ID = value
			case "event":
				e.Type = value
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.WriteString(value)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}
