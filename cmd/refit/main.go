// Command refit runs Refit: the whole continuous-training loop in one
// process (refit run), one part of it (refit serve --target=...), or a
// client command (upload, status, gen, setup).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// buildRevision is the git revision `make build` passes with
// -ldflags "-X main.buildRevision=$(git rev-parse HEAD)". Go stamps
// vcs.revision itself only when it builds with VCS stamping in a checkout it
// recognises; with GOFLAGS=-buildvcs=false (set on CI and dev machines here)
// or in a git worktree it records nothing, so code_version would read "dev".
// The -X flag can only set a package-level string: the linker writes it,
// nothing assigns it at run time, and codeVersion reads it only when the
// build info has no revision.
var buildRevision string

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "refit:", err)
		os.Exit(exitCode(err))
	}
}
