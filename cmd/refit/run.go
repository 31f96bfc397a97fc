package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `refit keeps a model up to date as data arrives.

Usage:
  refit run                          everything in one process, embedded profile
  refit serve --target=LIST          some parts: all, gateway, preprocess, version, train, promote
  refit setup                        create topics, subscriptions, bucket notification, indexes (gcp profile)
  refit upload FILE... --dataset D   upload CSV files through the gateway (--wait: until the decision)
  refit predict --dataset D [FILE|-] predictions for CSV or JSON lines
  refit status [DATASET] [--json]    what the pipeline has done
  refit runs DATASET [--json]        training runs, their scores and decisions
  refit versions DATASET [--json]    dataset versions
  refit promotions DATASET [--json]  promotion history and runs awaiting approval
  refit promote RUN_ID [--dataset D] make a run the champion (admin)
  refit rollback DATASET             return to the previous champion (admin)
  refit reproduce RUN_ID             retrain a run and compare checksums (admin)
  refit watch [--dataset D]          print each promotion as it happens
  refit deadletters [--replay ID]    events that failed for good, and their replay (admin)
  refit gen housing --rows N         write a generated housing CSV with a known ground truth
  refit version                      the revision this binary was built from

Settings come from the environment (REFIT_PROFILE, REFIT_DATA_DIR, REFIT_HTTP_ADDR, ...);
client commands use REFIT_SERVER and send REFIT_ADMIN_TOKEN when it is set;
see README.md. Run 'refit COMMAND --help' for a command's flags and an example.
`

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// run is the whole program; main only supplies the process's context,
// arguments, environment and output streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &usageError{"no command"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		if err := embeddedOnly(getenv); err != nil {
			return err
		}
		return serveCmd(ctx, append([]string{"--target=all", "--profile=embedded"}, rest...), getenv, stdout, stderr)
	case "serve":
		return serveCmd(ctx, rest, getenv, stdout, stderr)
	case "setup":
		return setupCmd(ctx, rest, getenv, stdout, stderr)
	case "upload":
		return uploadCmd(ctx, rest, getenv, stdout, stderr)
	case "predict":
		// run takes no stdin of its own: predict is the one command that reads it.
		return predictCmd(ctx, rest, getenv, os.Stdin, stdout, stderr)
	case "status":
		return statusCmd(ctx, rest, getenv, stdout, stderr)
	case "gen":
		return genCmd(ctx, rest, stdout, stderr)
	case "runs", "versions", "promotions", "promote", "rollback", "reproduce", "watch", "deadletters":
		err := registryCommands()[cmd](ctx, rest, getenv, stdout, stderr)
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	case "version":
		fmt.Fprintln(stdout, codeVersion())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return &usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

type command func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// registryCommands read and change the model registry through the API.
func registryCommands() map[string]command {
	return map[string]command{
		"runs": runsCmd, "versions": versionsCmd, "promotions": promotionsCmd,
		"promote": promoteCmd, "rollback": rollbackCmd, "reproduce": reproduceCmd, "watch": watchCmd, "deadletters": deadLettersCmd,
	}
}

// parseFlags parses flags that may come before, between or after
// positional arguments, and returns the positional ones.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func newFlagSet(name, help string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags:\n", strings.TrimSpace(help))
		fs.PrintDefaults()
	}
	return fs
}
