package testenv

import "os"

// BuildFlags are the flags a test passes to `go build` for a program it
// runs (the refit binary of the multi-process tests): -race when the test
// binary itself is race-built, as under `make test`, and the Makefile's
// build tags when it was built with them. The program then
// reuses every package the test build compiled, instead of compiling the
// whole dependency graph a second time without -race (on a cold cache that
// second compile was a third of `make test`), and it runs under the race
// detector too. No DWARF (-ldflags=-w), as in `make test`'s test
// binaries: nothing debugs them, and it shortens the link.
func BuildFlags() []string {
	flags := []string{"-ldflags=-w"}
	if raceEnabled {
		flags = append(flags, "-race")
	}
	if grpcModulesDisabled {
		flags = append(flags, "-tags=disable_grpc_modules")
	}
	return flags
}

// BuildArgs are the arguments of `go build` with BuildFlags, then args.
func BuildArgs(args ...string) []string {
	return append(append([]string{"build"}, BuildFlags()...), args...)
}

// BuildEnv is the environment for a `go build` or `go tool` a test runs:
// this process's, with the Makefile's BUILD_GOGC for the compiler (a
// quarter less garbage collection in processes that allocate much and live
// briefly) unless GOGC is set already, then extra.
func BuildEnv(extra ...string) []string {
	return append(append(os.Environ(), BuildGOGC()...), extra...)
}

// BuildGOGC is BuildEnv's addition to the environment: GOGC=400, or nothing
// when GOGC is set.
func BuildGOGC() []string {
	if os.Getenv("GOGC") != "" {
		return nil
	}
	return []string{"GOGC=400"}
}
