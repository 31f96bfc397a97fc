package testenv

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
