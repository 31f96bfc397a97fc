package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/refit-ml/refit/client"
)

// The benchmarks call the gateway through the typed client (client/), as
// any program would; only the waits they share live here.

// WaitDecided waits until every spec's run on version v has a decision.
func WaitDecided(ctx context.Context, c *client.Client, v, specs int, timeout time.Duration) (client.History, error) {
	deadline := time.Now().Add(timeout)
	for {
		h, err := c.Promotions(ctx, "housing")
		if err != nil {
			return h, err
		}
		n := 0
		for _, d := range h.Decisions {
			if d.EvalVersion >= v {
				n++
			}
		}
		if n >= specs {
			return h, nil
		}
		if time.Now().After(deadline) {
			return h, fmt.Errorf("version %d: %d of %d decisions after %v", v, n, specs, timeout)
		}
		select {
		case <-ctx.Done():
			return h, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
