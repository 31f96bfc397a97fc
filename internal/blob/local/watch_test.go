package local

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/blob"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// file is one file on a fake disk: what a listing shows and what stat hashes.
type file struct {
	size int64
	sec  int
	gen  int64
}

func TestTrackerPoll(t *testing.T) {
	// Each step is one poll: the disk as listed, and the reports expected.
	// statDisk, when set, is what the disk looks like by the time stat runs.
	type step struct {
		disk     map[string]file
		statDisk map[string]file
		want     []string // "name@gen"
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"reported once settled, not while growing", []step{
			{disk: map[string]file{"a.csv": {5, 1, 11}}},
			{disk: map[string]file{"a.csv": {10, 2, 12}}},
			{disk: map[string]file{"a.csv": {10, 2, 12}}, want: []string{"a.csv@12"}},
			{disk: map[string]file{"a.csv": {10, 2, 12}}},
		}},
		{"same content rewritten is not reported again", []step{
			{disk: map[string]file{"a.csv": {10, 1, 12}}},
			{disk: map[string]file{"a.csv": {10, 1, 12}}, want: []string{"a.csv@12"}},
			{disk: map[string]file{"a.csv": {10, 3, 12}}},
			{disk: map[string]file{"a.csv": {10, 3, 12}}},
		}},
		{"new content is reported again", []step{
			{disk: map[string]file{"a.csv": {10, 1, 12}}},
			{disk: map[string]file{"a.csv": {10, 1, 12}}, want: []string{"a.csv@12"}},
			{disk: map[string]file{"a.csv": {10, 3, 13}}},
			{disk: map[string]file{"a.csv": {10, 3, 13}}, want: []string{"a.csv@13"}},
		}},
		{"temporary and hidden names are ignored", []step{
			{disk: map[string]file{"a.part": {1, 1, 1}, "b.tmp": {1, 1, 2}, "d/.c": {1, 1, 3}, ".d/c": {1, 1, 4}}},
			{disk: map[string]file{"a.part": {1, 1, 1}, "b.tmp": {1, 1, 2}, "d/.c": {1, 1, 3}, ".d/c": {1, 1, 4}}},
		}},
		{"renamed from .part once complete", []step{
			{disk: map[string]file{"a.csv.part": {5, 1, 11}}},
			{disk: map[string]file{"a.csv.part": {10, 2, 12}}},
			{disk: map[string]file{"a.csv": {10, 2, 12}}},
			{disk: map[string]file{"a.csv": {10, 2, 12}}, want: []string{"a.csv@12"}},
		}},
		{"changed between listing and stat waits", []step{
			{disk: map[string]file{"a.csv": {5, 1, 11}}},
			{disk: map[string]file{"a.csv": {5, 1, 11}}, statDisk: map[string]file{"a.csv": {9, 2, 12}}},
			{disk: map[string]file{"a.csv": {9, 2, 12}}, want: []string{"a.csv@12"}},
		}},
		{"deleted between listing and stat", []step{
			{disk: map[string]file{"a.csv": {5, 1, 11}}},
			{disk: map[string]file{"a.csv": {5, 1, 11}}, statDisk: map[string]file{}},
			{disk: map[string]file{}},
		}},
		{"deleted then recreated is reported again", []step{
			{disk: map[string]file{"a.csv": {5, 1, 11}}},
			{disk: map[string]file{"a.csv": {5, 1, 11}}, want: []string{"a.csv@11"}},
			{disk: map[string]file{}},
			{disk: map[string]file{"a.csv": {5, 4, 11}}},
			{disk: map[string]file{"a.csv": {5, 4, 11}}, want: []string{"a.csv@11"}},
		}},
		{"several objects, sorted", []step{
			{disk: map[string]file{"b": {1, 1, 2}, "a": {1, 1, 1}}},
			{disk: map[string]file{"b": {1, 1, 2}, "a": {1, 1, 1}, "c": {1, 1, 3}}, want: []string{"a@1", "b@2"}},
			{disk: map[string]file{"b": {1, 1, 2}, "a": {1, 1, 1}, "c": {1, 1, 3}}, want: []string{"c@3"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var statDisk map[string]file
			tr := &tracker{seen: map[string]watchState{}, stat: func(name, _ string) (blob.Object, error) {
				f, ok := statDisk[name]
				if !ok {
					return blob.Object{}, blob.ErrNotExist
				}
				return blob.Object{Name: name, Size: f.size, Updated: epoch.Add(time.Duration(f.sec) * time.Second), Generation: f.gen}, nil
			}}
			for i, st := range tt.steps {
				statDisk = st.disk
				if st.statDisk != nil {
					statDisk = st.statDisk
				}
				var entries []entry
				for _, name := range slices.Sorted(maps.Keys(st.disk)) {
					f := st.disk[name]
					entries = append(entries, entry{name: name, size: f.size, mtime: epoch.Add(time.Duration(f.sec) * time.Second)})
				}
				objs, err := tr.poll(entries)
				require.NoError(t, err)
				var got []string
				for _, o := range objs {
					got = append(got, fmt.Sprintf("%s@%d", o.Name, o.Generation))
				}
				require.Equal(t, st.want, got, "step %d", i)
			}
		})
	}
}

func TestTrackerStatError(t *testing.T) {
	boom := errors.New("permission denied")
	tr := &tracker{seen: map[string]watchState{}, stat: func(string, string) (blob.Object, error) { return blob.Object{}, boom }}
	e := []entry{{name: "a", size: 1, mtime: epoch}}
	_, err := tr.poll(e)
	require.NoError(t, err)
	_, err = tr.poll(e)
	require.ErrorIs(t, err, boom)
}

// recorder collects notifications from the watcher goroutine.
type recorder struct {
	mu   sync.Mutex
	objs []blob.Object
}

func (r *recorder) notify(o blob.Object) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.objs = append(r.objs, o)
}

func (r *recorder) get() []blob.Object {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]blob.Object(nil), r.objs...)
}

func TestWatch(t *testing.T) {
	const interval = 100 * time.Millisecond
	b := newBucket(t)
	ctx, cancel := context.WithCancel(t.Context())
	var rec recorder
	done := make(chan error, 1)
	go func() { done <- b.Watch(ctx, "incoming/", WatchOptions{Interval: interval}, rec.notify) }()

	dir := filepath.Join(b.Root(), "incoming")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, "housing.csv")

	// An outside program copies the file in two parts, pausing for less than
	// an interval: no two consecutive polls can both see the first part.
	part1, part2 := "price,rooms\n", "100,3\n200,4\n"
	f, err := os.Create(path)
	require.NoError(t, err)
	_, err = f.WriteString(part1)
	require.NoError(t, err)
	time.Sleep(interval / 5)
	_, err = f.WriteString(part2)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	// Ignored: a partial download, a temp file, a file outside the prefix.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "big.csv.part"), []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x.tmp"), []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(b.Root(), "elsewhere.csv"), []byte("x"), 0o644))

	waitFor := func(n int) []blob.Object {
		t.Helper()
		require.Eventually(t, func() bool { return len(rec.get()) >= n }, 5*time.Second, interval/4)
		return rec.get()
	}
	got := waitFor(1)
	want, err := b.Stat(t.Context(), "incoming/housing.csv")
	require.NoError(t, err)
	require.Equal(t, int64(len(part1+part2)), want.Size)
	require.Equal(t, []blob.Object{want}, got)

	// New content: reported again.
	time.Sleep(2 * interval)
	require.NoError(t, os.WriteFile(path, []byte(part1+"300,5\n"), 0o644))
	got = waitFor(2)
	require.Len(t, got, 2)
	require.Equal(t, int64(len(part1+"300,5\n")), got[1].Size)
	require.NotEqual(t, got[0].Generation, got[1].Generation)

	// Same content again (new mtime): not reported.
	time.Sleep(2 * interval)
	require.NoError(t, os.WriteFile(path, []byte(part1+"300,5\n"), 0o644))
	time.Sleep(6 * interval)
	require.Len(t, rec.get(), 2)

	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

func TestWatchRejectsBadInterval(t *testing.T) {
	b := newBucket(t)
	err := b.Watch(t.Context(), "", WatchOptions{}, func(blob.Object) {})
	require.ErrorContains(t, err, "interval")
}

// TestTrackerHoldsBackAnUnfinishedLastLine: a file written in place slowly
// can sit unchanged for two polls with half a row at its end ("US" of
// "USA"); it is reported only once quiet for longer, or once its last line
// ends.
func TestTrackerHoldsBackAnUnfinishedLastLine(t *testing.T) {
	const quiet = 5 * time.Second
	type step struct {
		at    int // seconds since epoch when polled
		sec   int // the file's mtime
		size  int64
		ends  bool // its last byte is a line break
		want  bool // reported at this poll
		label string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a last line without a break waits for quiet, then is taken", []step{
			{at: 1, sec: 1, size: 10},
			{at: 2, sec: 1, size: 10, label: "settled, but not quiet"},
			{at: 5, sec: 1, size: 10, label: "still not quiet"},
			{at: 6, sec: 1, size: 10, want: true, label: "quiet for 5s: the writer is gone"},
			{at: 7, sec: 1, size: 10},
		}},
		{"the writer finishes the row before quiet", []step{
			{at: 1, sec: 1, size: 10},
			{at: 2, sec: 1, size: 10},
			{at: 3, sec: 3, size: 13, ends: true},
			{at: 4, sec: 3, size: 13, ends: true, want: true, label: "the whole row"},
		}},
		{"a file ending in a line break does not wait", []step{
			{at: 1, sec: 1, size: 10, ends: true},
			{at: 2, sec: 1, size: 10, ends: true, want: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cur step
			tr := &tracker{seen: map[string]watchState{}, quiet: quiet,
				now: func() time.Time { return epoch.Add(time.Duration(cur.at) * time.Second) },
				terminated: func(name, _ string, size int64) (bool, error) {
					require.Equal(t, cur.size, size)
					return cur.ends, nil
				},
				stat: func(name, _ string) (blob.Object, error) {
					return blob.Object{Name: name, Size: cur.size, Updated: epoch.Add(time.Duration(cur.sec) * time.Second), Generation: cur.size}, nil
				}}
			for i, st := range tt.steps {
				cur = st
				objs, err := tr.poll([]entry{{name: "a.csv", size: st.size, mtime: epoch.Add(time.Duration(st.sec) * time.Second)}})
				require.NoError(t, err)
				require.Equal(t, st.want, len(objs) == 1, "step %d %s", i, st.label)
			}
		})
	}
}

func TestLastLineEnds(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]bool{"": true, "a,b\n1,US": false, "a,b\n1,USA\n": true, "a,b\r\n": true} {
		path := filepath.Join(dir, "f.csv")
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
		got, err := lastLineEnds("f.csv", path, int64(len(content)))
		require.NoError(t, err)
		require.Equal(t, want, got, "%q", content)
	}
}

// TestWatchRemovesStaleTemporaryFiles: files a killed writer left behind
// (a hidden temp of Write, a .part download) are removed once older than
// TempMaxAge; fresh ones, and real uploads however old, stay.
func TestWatchRemovesStaleTemporaryFiles(t *testing.T) {
	b := newBucket(t)
	dir := filepath.Join(b.Root(), "incoming", "housing")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	old := time.Now().Add(-2 * time.Hour)
	files := map[string]bool{ // name: removed
		".a.csv.123.tmp": true, "b.csv.part": true, ".hidden": true, "c.tmp": true,
		"fresh.csv.part": false, "old.csv": false,
	}
	for name, stale := range files {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte("x\n"), 0o644))
		if stale || name == "old.csv" {
			require.NoError(t, os.Chtimes(path, old, old))
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- b.Watch(ctx, "incoming/", WatchOptions{Interval: 20 * time.Millisecond, TempMaxAge: time.Hour}, func(blob.Object) {})
	}()
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(dir, "b.csv.part"))
		return errors.Is(err, os.ErrNotExist)
	}, 5*time.Second, 20*time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	for name, removed := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if removed {
			require.ErrorIs(t, err, os.ErrNotExist, name)
		} else {
			require.NoError(t, err, name)
		}
	}
}
