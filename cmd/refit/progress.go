package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// isTerminal reports whether w is a character device (a terminal): only
// then does progress redraw one line with \r; logs and pipes get plain
// lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress counts bytes read through it and reports bytes, rate and ETA:
// redrawn in place on a terminal at most every tick, else one plain line
// per tick (and one at the end).
type progress struct {
	r     io.Reader
	out   io.Writer
	name  string
	total int64
	done  int64
	tty   bool
	tick  time.Duration
	now   func() time.Time
	start time.Time
	last  time.Time
	shown int64 // bytes in the last report, so the end is not told twice
}

func newProgress(r io.Reader, out io.Writer, name string, total int64, now func() time.Time) *progress {
	p := &progress{r: r, out: out, name: name, total: total, tty: isTerminal(out), now: now}
	p.tick = time.Second
	if p.tty {
		p.tick = 100 * time.Millisecond
	}
	p.start = now()
	p.last = p.start
	p.shown = -1
	return p
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if t := p.now(); n > 0 && t.Sub(p.last) >= p.tick {
		p.last = t
		p.report(false)
	}
	return n, err
}

// finish prints the last report, unless a plain line already told it.
func (p *progress) finish() {
	if p.tty || p.shown != p.done {
		p.report(true)
	}
}

func (p *progress) report(final bool) {
	p.shown = p.done
	elapsed := p.now().Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.done) / elapsed
	}
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(p.done) / float64(p.total)
	}
	eta := "?"
	switch {
	case final || p.done >= p.total:
		eta = "0s"
	case rate > 0:
		eta = time.Duration(float64(p.total-p.done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	line := fmt.Sprintf("%s: %s / %s (%3.0f%%) %s/s ETA %s", p.name, bytesText(p.done), bytesText(p.total), pct, bytesText(int64(rate)), eta)
	switch {
	case p.tty && final:
		fmt.Fprintf(p.out, "\r%s\x1b[K\n", line)
	case p.tty:
		fmt.Fprintf(p.out, "\r%s\x1b[K", line)
	default:
		fmt.Fprintln(p.out, line)
	}
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
