# Refit: the two commands a newcomer needs are `make run` and `make test`.
GO        ?= go
BIN       := bin/refit
export REFIT_DATA_DIR ?= ./var

.PHONY: run build test test-short gate race-check vet bench check-deploy clean

## run: build and start everything in one process (gateway on :8080, bucket folder ./var/bucket)
run: build
	./$(BIN) run

# REVISION: Go records no vcs.revision under GOFLAGS=-buildvcs=false or in a
# git worktree, so the linker sets it (cmd/refit/main.go: buildRevision).
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null)
# RACE: the race detector needs cgo, so a C compiler. Without one (a machine with only Go) the
# gate and the tests run without it, and say so in one line; CI sets REFIT_REQUIRE_RACE=1 to fail.
RACE      := $(shell [ "$$($(GO) env CGO_ENABLED)" = 1 ] && echo -race)
# TAGS: disable_grpc_modules is cloud.google.com/go/storage's documented opt-out of its gRPC
# client (direct path, xDS, client-side metrics). Refit talks to GCS over HTTP only, and the tag
# drops 145 of the 1,175 packages `make test` compiles. Without it
# everything still builds and behaves the same, only larger.
TAGS      ?= disable_grpc_modules

build:
	$(GO) build -tags=$(TAGS) -buildvcs=auto -ldflags "-X main.buildRevision=$(REVISION)" -o $(BIN) ./cmd/refit

## test: the gate, then every test with the race detector (emulators started by the tests).
## Everything is compiled once, in race mode: the gate's analysis (through `go list -export`), the
## tests and the programs they run (the refit binary, internal/testenv.BuildFlags) share that
## build. -vet=off: the gate has run every go vet analyzer on the same files. -ldflags=-w: no
## DWARF in test binaries (nothing debugs them; stack traces come from the symbol table)
test: gate
	$(GO) test $(RACE) -tags=$(TAGS) -vet=off -ldflags=-w -count=1 -timeout 30m ./...

## test-short: the fast tests only
test-short:
	$(GO) test -tags=$(TAGS) -short -count=1 ./...

vet:
	$(GO) vet -tags=$(TAGS) ./...

## gate: go.mod tidy, gofmt-clean, then go vet's analyzers and staticcheck's checks in one pass
## (internal/devtools/lint: staticcheck, versions pinned in go.mod, with cmd/vet's analyzers
## added: a separate `go vet` took 116 CPU-s on a warm build cache, its analyzers inside
## staticcheck 2; BENCHMARKS.md). Built plain, it loads the packages in race mode, so `make test`
## reuses what it compiled.
gate: race-check
	$(GO) mod tidy -diff
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then printf 'gofmt -l: not formatted:\n%s\n' "$$out"; exit 1; fi
	$(GO) build -tags=refitlint -o bin/lint ./internal/devtools/lint
	GOFLAGS="$(RACE) -tags=$(TAGS)" ./bin/lint ./...

race-check:
ifeq ($(RACE),)
	@if [ -n "$$REFIT_REQUIRE_RACE" ] && [ "$$REFIT_REQUIRE_RACE" != 0 ]; then echo "the race detector needs cgo (a C compiler such as gcc), which is not installed, and REFIT_REQUIRE_RACE is set"; exit 1; fi
	@echo "no C compiler (cgo): the tests run without the race detector (set REFIT_REQUIRE_RACE=1 to fail instead)"
endif

## bench: the benchmark suite (BENCHMARKS.md): serving, hot swap, freshness and throughput
## against the baselines, then the Go micro-benchmarks summarised by benchstat; results in .bench/
## (BENCH_FLAGS=-quick for a smoke run; BENCH_COUNT repeats the micro-benchmarks)
BENCHSTAT   := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
BENCH_COUNT ?= 6
BENCH_FLAGS ?=
bench:
	mkdir -p .bench
	./bench/deps.sh
	$(GO) build -o .bench/refitbench ./bench/cmd/refitbench
	./.bench/refitbench suite -out .bench $(BENCH_FLAGS)
	REFIT_BENCH_EMULATORS=1 $(GO) test -count=1 -timeout 20m -run TestFreshnessOnEmulators -v ./bench/ 2>&1 | tee .bench/freshness-emulators.txt | grep -A12 "freshness through\|SKIP\|FAIL" || true
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) ./internal/... ./gateway/... > .bench/micro.txt
	$(GO) test -run '^$$' -bench 'ForecastAccuracy' -benchtime 1x ./internal/forecast/ | tee .bench/forecast.txt
	sh bench/text/run.sh 100000 1000000 > .bench/text.jsonl 2> .bench/text-time.txt
	$(GO) run $(BENCHSTAT) .bench/micro.txt | tee .bench/micro-benchstat.txt
	$(GO) test -run '^$$' -bench 'Stage|Cut|TrainVersion|Decide|NewVersion' -benchmem -benchtime 1x -count 3 ./workers/... > .bench/workers.txt
	$(GO) test -run '^$$' -bench 'WorkerHandlers' -benchtime 500x -count 3 ./workers/pipeline/ > .bench/workers-bus.txt
	$(GO) run $(BENCHSTAT) .bench/workers.txt | tee .bench/workers-benchstat.txt
	$(GO) run $(BENCHSTAT) .bench/workers-bus.txt | tee -a .bench/workers-benchstat.txt

## check-deploy: the deployment files alone (kubectl, promtool, shellcheck, gcloud); also part of `make test`
check-deploy:
	$(GO) vet -tags=$(TAGS) ./deploy/...
	$(GO) test -tags=$(TAGS) -count=1 ./deploy/...

clean:
	rm -rf bin var
