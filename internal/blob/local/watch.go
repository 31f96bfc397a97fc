package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/refit-ml/refit/internal/blob"
)

// WatchOptions tune Watch.
type WatchOptions struct {
	// Interval is the time between listings (required).
	Interval time.Duration
	// Quiet: a file whose last line has no line break may be a row still
	// being written in place, so it is reported only once it has not
	// changed for this long (0: as soon as it settles).
	Quiet time.Duration
	// TempMaxAge: hidden files and names ending in .tmp or .part that have
	// not changed for this long are left by a killed writer, and removed
	// (0: never).
	TempMaxAge time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Watch stands in for object notifications, which a folder does not have.
// It lists prefix every interval and calls notify (from Watch's goroutine)
// for an object once its size and mtime were the same in two consecutive
// polls, so a file still being copied in is not reported half-written, and,
// when its last line has no line break, once it was quiet for opts.Quiet. An
// object is reported again only when its generation (content) changes; a
// deleted object is forgotten, so recreating it reports it again. Objects
// already present when Watch starts are reported too. Hidden files and names
// ending in ".tmp" or ".part" are ignored, and removed once older than
// opts.TempMaxAge. Returns ctx.Err() when ctx is done.
func (b *Bucket) Watch(ctx context.Context, prefix string, opts WatchOptions, notify func(blob.Object)) error {
	if opts.Interval <= 0 {
		return fmt.Errorf("local: watch %q: interval must be positive, got %v", prefix, opts.Interval)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	tr := &tracker{stat: b.stat, seen: map[string]watchState{}, quiet: opts.Quiet, now: opts.Now, terminated: lastLineEnds}
	ticker := time.NewTicker(opts.Interval)
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
		if err == nil && opts.TempMaxAge > 0 {
			err = b.sweepTemp(ctx, prefix, opts.Now().Add(-opts.TempMaxAge))
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

// lastLineEnds reports whether a file's last byte is a line break.
func lastLineEnds(_, path string, size int64) (bool, error) {
	if size == 0 {
		return true, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return false, err
	}
	return last[0] == '\n', nil
}

// sweepTemp removes the temporary files under prefix's folder unchanged
// since before cutoff: a writer killed mid-copy (or mid-Write) leaves its
// hidden or .part file behind, and nothing else would ever remove it.
func (b *Bucket) sweepTemp(ctx context.Context, prefix string, cutoff time.Time) error {
	start := b.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = filepath.Join(b.root, filepath.FromSlash(prefix[:i]))
	}
	err := filepath.WalkDir(start, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		name := d.Name()
		if !strings.HasPrefix(name, ".") && !strings.HasSuffix(name, ".tmp") && !strings.HasSuffix(name, ".part") {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if info.ModTime().Before(cutoff) {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove stale temporary files: %w", err)
	}
	return nil
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
	// quiet, now and terminated hold back a file whose last line has no
	// line break until it was unchanged for quiet (0: no wait).
	quiet      time.Duration
	now        func() time.Time
	terminated func(name, path string, size int64) (bool, error)
}

// unfinished reports a file that may have a row still being written: its
// last line has no line break and it changed less than quiet ago.
func (t *tracker) unfinished(e entry) (bool, error) {
	if t.quiet <= 0 || t.now().Sub(e.mtime) >= t.quiet {
		return false, nil
	}
	ends, err := t.terminated(e.name, e.path, e.size)
	return !ends, err
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
				wait, err := t.unfinished(e)
				switch {
				case errors.Is(err, fs.ErrNotExist):
					continue // deleted since the listing
				case err != nil:
					return nil, err
				case wait:
					next[e.name] = cur
					continue
				}
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
