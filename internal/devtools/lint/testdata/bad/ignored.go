//go:build ignore
// +build linux

// A file the build leaves out: go vet checks its build lines all the same.
package bad
