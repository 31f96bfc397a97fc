package bench

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

// TestLoadSmoke runs the harness briefly against baseline A in-process:
// closed loop, then open loop at a modest rate.
func TestLoadSmoke(t *testing.T) {
	srv := httptest.NewServer(Bare())
	defer srv.Close()
	bodies, err := Bodies(1, 8, 4)
	if err != nil {
		t.Fatal(err)
	}
	url := srv.URL + "/v1/models/housing:predict"
	closed := Load{URL: url, Bodies: bodies, Conns: 4, Duration: 300 * time.Millisecond}.Run(context.Background())
	if closed.Failed != 0 || closed.Requests == 0 || closed.P50 <= 0 || closed.P99 < closed.P50 {
		t.Fatalf("closed loop: %+v", closed)
	}
	open := Load{URL: url, Bodies: bodies, Conns: 4, Rate: 200, Duration: 500 * time.Millisecond}.Run(context.Background())
	// Sent and late together are the schedule (rate × duration); how many
	// were sent in time depends on how loaded the machine is, so only the
	// schedule and the ceiling are asserted.
	if sched := open.Requests + open.Late; open.Failed != 0 || open.Requests == 0 || open.Requests > 101 || sched < 80 || sched > 101 {
		t.Fatalf("open loop at 200/s for 0.5 s: %+v", open)
	}
}
