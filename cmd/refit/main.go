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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "refit:", err)
		os.Exit(exitCode(err))
	}
}
