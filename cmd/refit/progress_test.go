package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestProgressPlainLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		size  int
		step  time.Duration // clock advance per read
		lines []string
	}{
		{"one line at the end when fast", 10, 0, []string{"f: 10 B / 10 B (100%) 0 B/s ETA 0s"}},
		{"a line per second with rate and ETA", 4 << 10, 1 << 30, []string{
			"f: 1.0 KiB / 4.0 KiB ( 25%) 1.0 KiB/s ETA 3s",
			"f: 2.0 KiB / 4.0 KiB ( 50%) 1.0 KiB/s ETA 2s",
			"f: 3.0 KiB / 4.0 KiB ( 75%) 1.0 KiB/s ETA 1s",
			"f: 4.0 KiB / 4.0 KiB (100%) 1.0 KiB/s ETA 0s",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(0, 0)
			clock := func() time.Time { return now }
			var out bytes.Buffer
			src := strings.NewReader(strings.Repeat("x", tt.size))
			p := newProgress(src, &out, "f", int64(tt.size), clock)
			buf := make([]byte, 1<<10)
			for {
				if tt.step > 0 {
					now = now.Add(time.Second)
				}
				_, err := p.Read(buf)
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
			}
			p.finish()
			require.Equal(t, tt.lines, strings.Split(strings.TrimSpace(out.String()), "\n"))
			require.NotContains(t, out.String(), "\r")
		})
	}
}
