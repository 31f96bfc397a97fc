//go:build refitlint

// Command lint is the gate's analysis: staticcheck with go vet's analyzers
// added (the list cmd/vet runs), in one process over one load of the
// packages (see the Makefile's gate).
//
// `go vet` runs one process per package, dependencies and the standard
// library included (for facts), and each re-reads what it imports; with
// staticcheck run after it, a cold `make test` parsed and type-checked the
// whole graph twice. On a warm build cache here, go vet took 116 CPU-s,
// staticcheck 49.5, and this tool 51.6 (staticcheck's checks as a
// `go vet -vettool` instead: 177). See BENCHMARKS.md.
//
// Everything else is staticcheck's: its flags, staticcheck.conf, its
// default checks, //lint:ignore directives, output and exit status. The
// vet analyzers report under their own names ("printf", "copylocks", ...),
// which a staticcheck.conf can select like any check.
//
// The build tag keeps it out of ./... : under `go vet -race ./...` (or the
// tests) it would compile x/tools and staticcheck a second time, with the
// race detector.
package main

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/passes/appends"
	"golang.org/x/tools/go/analysis/passes/asmdecl"
	"golang.org/x/tools/go/analysis/passes/assign"
	"golang.org/x/tools/go/analysis/passes/atomic"
	"golang.org/x/tools/go/analysis/passes/bools"
	"golang.org/x/tools/go/analysis/passes/buildtag"
	"golang.org/x/tools/go/analysis/passes/cgocall"
	"golang.org/x/tools/go/analysis/passes/composite"
	"golang.org/x/tools/go/analysis/passes/copylock"
	"golang.org/x/tools/go/analysis/passes/defers"
	"golang.org/x/tools/go/analysis/passes/directive"
	"golang.org/x/tools/go/analysis/passes/errorsas"
	"golang.org/x/tools/go/analysis/passes/framepointer"
	"golang.org/x/tools/go/analysis/passes/hostport"
	"golang.org/x/tools/go/analysis/passes/httpresponse"
	"golang.org/x/tools/go/analysis/passes/ifaceassert"
	"golang.org/x/tools/go/analysis/passes/loopclosure"
	"golang.org/x/tools/go/analysis/passes/lostcancel"
	"golang.org/x/tools/go/analysis/passes/nilfunc"
	"golang.org/x/tools/go/analysis/passes/printf"
	"golang.org/x/tools/go/analysis/passes/shift"
	"golang.org/x/tools/go/analysis/passes/sigchanyzer"
	"golang.org/x/tools/go/analysis/passes/slog"
	"golang.org/x/tools/go/analysis/passes/stdmethods"
	"golang.org/x/tools/go/analysis/passes/stdversion"
	"golang.org/x/tools/go/analysis/passes/stringintconv"
	"golang.org/x/tools/go/analysis/passes/structtag"
	"golang.org/x/tools/go/analysis/passes/testinggoroutine"
	"golang.org/x/tools/go/analysis/passes/tests"
	"golang.org/x/tools/go/analysis/passes/timeformat"
	"golang.org/x/tools/go/analysis/passes/unmarshal"
	"golang.org/x/tools/go/analysis/passes/unreachable"
	"golang.org/x/tools/go/analysis/passes/unsafeptr"
	"golang.org/x/tools/go/analysis/passes/unusedresult"
	"golang.org/x/tools/go/analysis/passes/waitgroup"
	"honnef.co/go/tools/lintcmd"
	"honnef.co/go/tools/lintcmd/version"
	"honnef.co/go/tools/simple"
	"honnef.co/go/tools/staticcheck"
	"honnef.co/go/tools/stylecheck"
	"honnef.co/go/tools/unused"
)

// vetSuite is cmd/vet's list (GOROOT/src/cmd/vet/main.go, Go 1.26).
var vetSuite = []*analysis.Analyzer{
	appends.Analyzer, asmdecl.Analyzer, assign.Analyzer, atomic.Analyzer,
	bools.Analyzer, buildtag.Analyzer, cgocall.Analyzer, composite.Analyzer,
	copylock.Analyzer, defers.Analyzer, directive.Analyzer, errorsas.Analyzer,
	framepointer.Analyzer, hostport.Analyzer, httpresponse.Analyzer,
	ifaceassert.Analyzer, loopclosure.Analyzer, lostcancel.Analyzer,
	nilfunc.Analyzer, printf.Analyzer, shift.Analyzer, sigchanyzer.Analyzer,
	slog.Analyzer, stdmethods.Analyzer, stdversion.Analyzer,
	stringintconv.Analyzer, structtag.Analyzer, testinggoroutine.Analyzer,
	tests.Analyzer, timeformat.Analyzer, unmarshal.Analyzer,
	unreachable.Analyzer, unsafeptr.Analyzer, unusedresult.Analyzer,
	waitgroup.Analyzer,
}

func main() {
	cmd := lintcmd.NewCommand("lint")
	cmd.SetVersion(version.Version, version.MachineVersion)
	cmd.ParseFlags(os.Args[1:])
	cmd.AddAnalyzers(simple.Analyzers...)
	cmd.AddAnalyzers(staticcheck.Analyzers...)
	cmd.AddAnalyzers(stylecheck.Analyzers...)
	cmd.AddAnalyzers(unused.Analyzer)
	for _, a := range vetSuite {
		cmd.AddBareAnalyzers(withIgnoredFiles(a))
	}
	cmd.Run()
}

// withIgnoredFiles gives buildtag and directive, which also check the files
// a build constraint leaves out, the list go vet would pass them:
// staticcheck's runner leaves Pass.IgnoredFiles empty. Its cache does not
// key on those files: on a warm cache, an edit to an ignored file alone can
// get the earlier answer (a cold run, as in CI, checks them).
func withIgnoredFiles(a *analysis.Analyzer) *analysis.Analyzer {
	if a != buildtag.Analyzer && a != directive.Analyzer {
		return a
	}
	w := *a
	w.Run = func(pass *analysis.Pass) (any, error) {
		p := *pass
		p.IgnoredFiles = ignoredFiles(pass)
		return a.Run(&p)
	}
	return &w
}

// ignoredFiles are the .go files of the package's directory that are
// neither in the package nor tests (go list's IgnoredGoFiles).
func ignoredFiles(pass *analysis.Pass) []string {
	if len(pass.Files) == 0 {
		return nil
	}
	in := map[string]bool{}
	for _, f := range pass.Files {
		in[pass.Fset.File(f.Pos()).Name()] = true
	}
	for _, f := range pass.OtherFiles {
		in[f] = true
	}
	dir := filepath.Dir(pass.Fset.File(pass.Files[0].Pos()).Name())
	all, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	var out []string
	for _, f := range all {
		if !in[f] && !strings.HasSuffix(f, "_test.go") {
			out = append(out, f)
		}
	}
	return out
}
