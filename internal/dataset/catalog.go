package dataset

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// Catalog is the set of known datasets.
type Catalog struct {
	defs map[string]*Definition
}

// NewCatalog builds a catalog from definitions.
func NewCatalog(defs ...*Definition) (*Catalog, error) {
	c := &Catalog{defs: map[string]*Definition{}}
	for _, d := range defs {
		if _, dup := c.defs[d.Name]; dup {
			return nil, fmt.Errorf("dataset %q defined twice", d.Name)
		}
		c.defs[d.Name] = d
	}
	return c, nil
}

// LoadCatalog reads every *.json in the shipped folder, then in dir (when
// set); a definition in dir replaces a shipped one of the same name.
func LoadCatalog(shipped fs.FS, shippedDir, dir string) (*Catalog, error) {
	byName := map[string]*Definition{}
	load := func(fsys fs.FS, folder string) error {
		entries, err := fs.ReadDir(fsys, folder)
		if err != nil {
			return fmt.Errorf("datasets: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
				continue
			}
			b, err := fs.ReadFile(fsys, path.Join(folder, e.Name()))
			if err != nil {
				return fmt.Errorf("datasets: %w", err)
			}
			d, err := Parse(b)
			if err != nil {
				return fmt.Errorf("%s: %w", e.Name(), err)
			}
			byName[d.Name] = d
		}
		return nil
	}
	if err := load(shipped, shippedDir); err != nil {
		return nil, err
	}
	if dir != "" {
		if err := load(os.DirFS(dir), "."); err != nil {
			return nil, err
		}
	}
	defs := make([]*Definition, 0, len(byName))
	for _, d := range byName {
		defs = append(defs, d)
	}
	return NewCatalog(defs...)
}

// Get returns a dataset's definition.
func (c *Catalog) Get(name string) (*Definition, bool) {
	d, ok := c.defs[name]
	return d, ok
}

// Names lists the datasets, sorted.
func (c *Catalog) Names() []string {
	names := make([]string, 0, len(c.defs))
	for n := range c.defs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
