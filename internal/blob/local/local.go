// Package local is the embedded blob store: a folder on disk.
package local

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/refit-ml/refit/internal/blob"
)

// ErrInvalidName is returned for names that cannot map safely to a path.
// It never succeeds on retry.
var ErrInvalidName = errors.New("local: invalid object name")

var _ blob.Bucket = (*Bucket)(nil)

// maxCached bounds the generation cache; past it the cache starts over.
const maxCached = 4096

// Bucket stores objects as files under root.
type Bucket struct {
	root string
	name string

	mu   sync.Mutex
	gens map[string]genEntry // by file path
}

// genEntry is valid while the file keeps this size and mtime.
type genEntry struct {
	size  int64
	mtime time.Time
	gen   int64
}

// New returns a bucket over root, creating the folder if needed.
func New(root, bucketName string) (*Bucket, error) {
	if bucketName == "" {
		return nil, errors.New("local: empty bucket name")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("local: root %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("local: root %q: %w", root, err)
	}
	return &Bucket{root: abs, name: bucketName, gens: map[string]genEntry{}}, nil
}

// Name returns the bucket name given to New.
func (b *Bucket) Name() string { return b.name }

// Root returns the folder the bucket lives in.
func (b *Bucket) Root() string { return b.root }

// path maps an object name to its file, refusing anything that could escape
// root or that List could not give back (dot segments are hidden files).
func (b *Bucket) path(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidName)
	}
	if err := checkSegments(name); err != nil {
		return "", fmt.Errorf("%w %q: %w", ErrInvalidName, name, err)
	}
	return filepath.Join(b.root, filepath.FromSlash(name)), nil
}

func checkSegments(name string) error {
	if strings.HasPrefix(name, "/") {
		return errors.New("absolute path")
	}
	if strings.ContainsAny(name, "\\\x00") {
		return errors.New("backslash or NUL")
	}
	for seg := range strings.SplitSeq(name, "/") {
		switch {
		case seg == "":
			return errors.New("empty segment")
		case seg == "." || seg == "..":
			return errors.New("dot segment")
		case strings.HasPrefix(seg, "."):
			return errors.New("segment starts with a dot (reserved for temporary files)")
		}
	}
	return nil
}

// Write streams fill into a hidden temp file next to the target, fsyncs it and
// then commits: a hard link for CreateOnly (atomic "create if absent"), a
// rename for Overwrite.
func (b *Bucket) Write(ctx context.Context, name string, mode blob.Mode, fill func(w io.Writer) error) (blob.Object, error) {
	target, err := b.path(name)
	if err != nil {
		return blob.Object{}, err
	}
	if mode != blob.CreateOnly && mode != blob.Overwrite {
		return blob.Object{}, fmt.Errorf("local: write %q: unknown mode %d", name, mode)
	}
	if err := ctx.Err(); err != nil {
		return blob.Object{}, fmt.Errorf("local: write %q: %w", name, err)
	}
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return blob.Object{}, fmt.Errorf("local: write %q: %w", name, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(target)+".*.tmp")
	if err != nil {
		return blob.Object{}, fmt.Errorf("local: write %q: %w", name, err)
	}
	// After a successful commit the temp name is just an extra link (or gone).
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	h := sha256.New()
	if err := fill(&ctxWriter{ctx: ctx, w: io.MultiWriter(tmp, h)}); err != nil {
		return blob.Object{}, fmt.Errorf("local: write %q: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		return blob.Object{}, fmt.Errorf("local: write %q: sync: %w", name, err)
	}
	// Stat the temp: it is the inode being committed, so a concurrent
	// overwrite after the commit cannot mix its metadata into ours.
	info, err := tmp.Stat()
	if err != nil {
		return blob.Object{}, fmt.Errorf("local: write %q: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return blob.Object{}, fmt.Errorf("local: write %q: close: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return blob.Object{}, fmt.Errorf("local: write %q: %w", name, err)
	}

	switch mode {
	case blob.CreateOnly:
		if err := os.Link(tmp.Name(), target); err != nil {
			if errors.Is(err, fs.ErrExist) {
				if fi, serr := os.Stat(target); serr == nil && fi.IsDir() {
					return blob.Object{}, fmt.Errorf("local: write %q: a folder has this name", name)
				}
				return blob.Object{}, fmt.Errorf("local: write %q: %w", name, blob.ErrExists)
			}
			return blob.Object{}, fmt.Errorf("local: write %q: %w", name, err)
		}
	case blob.Overwrite:
		if err := os.Rename(tmp.Name(), target); err != nil {
			return blob.Object{}, fmt.Errorf("local: write %q: %w", name, err)
		}
	}
	// Make the new directory entry durable too.
	if err := syncDir(dir); err != nil {
		return blob.Object{}, fmt.Errorf("local: write %q: %w", name, err)
	}

	gen := generation(h)
	b.remember(target, info, gen)
	return b.object(name, info, gen), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// ctxWriter stops a long fill as soon as the context is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// generation is the first 8 bytes of the SHA-256, as a positive non-zero int64.
func generation(h hash.Hash) int64 {
	sum := h.Sum(nil)
	g := int64(binary.BigEndian.Uint64(sum[:8]) &^ (1 << 63))
	if g == 0 {
		return 1
	}
	return g
}

func (b *Bucket) object(name string, info fs.FileInfo, gen int64) blob.Object {
	return blob.Object{
		Bucket:     b.name,
		Name:       name,
		Size:       info.Size(),
		Generation: gen,
		Updated:    info.ModTime(),
	}
}

func (b *Bucket) remember(path string, info fs.FileInfo, gen int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.gens) >= maxCached {
		clear(b.gens)
	}
	b.gens[path] = genEntry{size: info.Size(), mtime: info.ModTime(), gen: gen}
}

func (b *Bucket) cached(path string, info fs.FileInfo) (int64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.gens[path]
	if !ok || e.size != info.Size() || !e.mtime.Equal(info.ModTime()) {
		return 0, false
	}
	return e.gen, true
}

// Open streams an object's content.
func (b *Bucket) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	path, err := b.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, notExist(name, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("local: open %q: %w", name, err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("local: open %q: %w", name, blob.ErrNotExist)
	}
	return f, nil
}

// notExist maps "no such file" and ENOTDIR ("a/b" when "a" is a file).
func notExist(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("local: %q: %w", name, blob.ErrNotExist)
	}
	return fmt.Errorf("local: %q: %w", name, err)
}

// Stat describes an object, hashing it unless the cache still matches.
func (b *Bucket) Stat(ctx context.Context, name string) (blob.Object, error) {
	path, err := b.path(name)
	if err != nil {
		return blob.Object{}, err
	}
	return b.stat(name, path)
}

func (b *Bucket) stat(name, path string) (blob.Object, error) {
	// Hash through an open handle: a concurrent rename swaps the directory
	// entry, not the inode we read, so size, mtime and hash agree.
	f, err := os.Open(path)
	if err != nil {
		return blob.Object{}, notExist(name, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return blob.Object{}, fmt.Errorf("local: stat %q: %w", name, err)
	}
	if !info.Mode().IsRegular() {
		return blob.Object{}, fmt.Errorf("local: stat %q: %w", name, blob.ErrNotExist)
	}
	if gen, ok := b.cached(path, info); ok {
		return b.object(name, info, gen), nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return blob.Object{}, fmt.Errorf("local: stat %q: hash: %w", name, err)
	}
	gen := generation(h)
	b.remember(path, info, gen)
	return b.object(name, info, gen), nil
}

// entry is a listed file before its generation is known.
type entry struct {
	name  string
	path  string
	size  int64
	mtime time.Time
}

// List returns the objects under prefix, sorted by name. Hidden (dot) files
// and folders are skipped: they are uncommitted writes.
func (b *Bucket) List(ctx context.Context, prefix string) ([]blob.Object, error) {
	entries, err := b.list(ctx, prefix)
	if err != nil {
		return nil, err
	}
	objs := make([]blob.Object, 0, len(entries))
	for _, e := range entries {
		obj, err := b.stat(e.name, e.path)
		if errors.Is(err, blob.ErrNotExist) {
			continue // removed since the walk
		}
		if err != nil {
			return nil, err
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// list walks only the folder the prefix is certain to be under.
func (b *Bucket) list(ctx context.Context, prefix string) ([]entry, error) {
	start := b.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir := prefix[:i]
		if checkSegments(dir) != nil {
			// No valid name can start with this prefix.
			return []entry{}, nil
		}
		start = filepath.Join(b.root, filepath.FromSlash(dir))
	}
	entries := []entry{}
	err := filepath.WalkDir(start, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return nil // absent prefix folder, or removed while walking
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if path == b.root {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(b.root, path)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !strings.HasPrefix(name, prefix) {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		entries = append(entries, entry{name: name, path: path, size: info.Size(), mtime: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("local: list %q: %w", prefix, err)
	}
	// The walk is lexical per folder, not by full name ("a/b" vs "a-c").
	slices.SortFunc(entries, func(x, y entry) int { return strings.Compare(x.name, y.name) })
	return entries, nil
}

// DeleteGeneration deletes name only while it holds generation (its content
// hash): blob.ErrChanged if it holds other bytes, blob.ErrNotExist if gone.
// The file is first renamed to a hidden name, atomically, so the content
// checked is the content removed; other bytes are linked back, unless a
// writer has taken the name since (then the hidden copy is an overwritten
// generation, and the temporary-file sweep removes it).
func (b *Bucket) DeleteGeneration(ctx context.Context, name string, generation int64) error {
	path, err := b.path(name)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: delete %q: %w", name, err)
	}
	hidden := filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.%d.deleting.tmp", filepath.Base(path), time.Now().UnixNano()))
	if err := os.Rename(path, hidden); err != nil {
		return notExist(name, err)
	}
	obj, err := b.stat(name, hidden)
	b.forget(hidden)
	if err == nil && obj.Generation == generation {
		if err := os.Remove(hidden); err != nil {
			return fmt.Errorf("local: delete %q: %w", name, err)
		}
		b.forget(path)
		return syncDir(filepath.Dir(path))
	}
	// Not the generation asked for: put it back.
	if lerr := os.Link(hidden, path); lerr == nil {
		_ = os.Remove(hidden)
	} else if !errors.Is(lerr, fs.ErrExist) && err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("local: delete %q: %w", name, err)
	}
	return fmt.Errorf("local: delete %q: generation %d, want %d: %w", name, obj.Generation, generation, blob.ErrChanged)
}

func (b *Bucket) forget(path string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.gens, path)
}
