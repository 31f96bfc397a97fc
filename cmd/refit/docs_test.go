package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestArchitectureShowsTheModuleTable: ARCHITECTURE.md's copy of the table
// lists every target, in order, with the routes it has here.
func TestArchitectureShowsTheModuleTable(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../ARCHITECTURE.md")
	require.NoError(t, err)
	row := regexp.MustCompile("(?m)^\\| `([a-z-]+)` \\| [^|]+ \\| ([^|]+) \\| [^|]+ \\|$")
	route := regexp.MustCompile("`([^`]+)` → `([^`]+)`")
	var documented, want []string
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		var routes []string
		for _, r := range route.FindAllStringSubmatch(m[2], -1) {
			routes = append(routes, r[1]+" → "+r[2])
		}
		documented = append(documented, m[1]+": "+strings.Join(routes, ", "))
	}
	for _, tg := range targets() {
		var routes []string
		for _, r := range tg.routes {
			routes = append(routes, r.topic+" → "+r.group)
		}
		want = append(want, tg.name+": "+strings.Join(routes, ", "))
	}
	require.Equal(t, want, documented)
}

// TestArchitectureNamesFilesThatExist: every Go file ARCHITECTURE.md and
// README.md name (`dir/file.go`, or `dir/file.go: Name`) is there, and
// declares the name.
func TestArchitectureNamesFilesThatExist(t *testing.T) {
	t.Parallel()
	ref := regexp.MustCompile("`([a-z0-9_/.-]+\\.go)(?::\\s*`?([A-Za-z_.]+)(?:\\(\\))?`?)?`")
	for _, doc := range []string{"ARCHITECTURE.md", "README.md"} {
		b, err := os.ReadFile("../../" + doc)
		require.NoError(t, err)
		for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
			path, name := m[1], m[2]
			if !strings.Contains(path, "/") {
				t.Errorf("%s: %s: name the file with its folder", doc, m[0])
				continue
			}
			src, err := os.ReadFile("../../" + path)
			if err != nil {
				t.Errorf("%s: %s: %v", doc, m[0], err)
				continue
			}
			if name == "" {
				continue
			}
			name = name[strings.LastIndex(name, ".")+1:]
			decl := regexp.MustCompile(`(?m)(func (\([^)]*\) )?|type |^\s+)` + regexp.QuoteMeta(name) + `\b`)
			if !decl.Match(src) {
				t.Errorf("%s: %s: %s declares no %s", doc, m[0], path, name)
			}
		}
	}
}
