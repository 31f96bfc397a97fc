package local

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/refit-ml/refit/internal/blob"
)

// Watch stands in for object notifications, which a folder does not have.
// It lists prefix every interval and calls notify (from Watch's goroutine)
// for an object once its size and mtime were the same in two consecutive
// polls, so a file still being copied in is not reported half-written. An
// object is reported again only when its generation (content) changes; a
// deleted object is forgotten, so recreating it reports it again. Objects
// already present when Watch starts are reported too. Hidden files and names
// ending in ".tmp" or ".part" are ignored. Returns ctx.Err() when ctx is done.
func (b *Bucket) Watch(ctx context.Context, prefix string, interval time.Duration, notify func(blob.Object)) error {
	if interval <= 0 {
		return fmt.Errorf("local: watch %q: interval must be positive, got %v", prefix, interval)
	}
	tr := &tracker{stat: b.stat, seen: map[string]watchState{}}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		// list, not List: hashing a file that is still growing is wasted work.
		entries, err := b.list(ctx, prefix)
		if err == nil {
			var settled []blob.Object
			settled, err = tr.poll(entries)
			for _, obj := range settled {
				notify(obj)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("local: watch %q: %w", prefix, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

func ignored(name string) bool {
	if strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".part") {
		return true
	}
	for seg := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(seg, ".") {
			return true
		}
	}
	return false
}

type watchState struct {
	size  int64
	mtime time.Time
	// settled: this size and mtime were already seen twice and hashed.
	settled  bool
	reported int64 // generation last reported; 0 before the first report
}

// tracker is the watcher's state machine, kept apart from the clock.
type tracker struct {
	stat func(name, path string) (blob.Object, error)
	seen map[string]watchState
}

// poll takes one listing and returns the objects to report.
func (t *tracker) poll(entries []entry) ([]blob.Object, error) {
	next := make(map[string]watchState, len(entries))
	var out []blob.Object
	for _, e := range entries {
		if ignored(e.name) {
			continue
		}
		prev, ok := t.seen[e.name]
		cur := watchState{size: e.size, mtime: e.mtime, reported: prev.reported}
		if ok && prev.size == e.size && prev.mtime.Equal(e.mtime) {
			cur.settled = prev.settled
			if !cur.settled {
				obj, err := t.stat(e.name, e.path)
				switch {
				case errors.Is(err, blob.ErrNotExist):
					continue // deleted since the listing
				case err != nil:
					return nil, err
				case obj.Size != e.size || !obj.Updated.Equal(e.mtime):
					// Changed since the listing: wait for it to settle again.
					cur.size, cur.mtime = obj.Size, obj.Updated
				default:
					cur.settled = true
					if obj.Generation != cur.reported {
						cur.reported = obj.Generation
						out = append(out, obj)
					}
				}
			}
		}
		next[e.name] = cur
	}
	t.seen = next
	return out, nil
}
