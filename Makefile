# Refit: the two commands a newcomer needs are `make run` and `make test`.
GO        ?= go
BIN       := bin/refit
export REFIT_DATA_DIR ?= ./var

.PHONY: run build test test-short vet bench check-deploy clean

## run: build and start everything in one process (gateway on :8080, bucket folder ./var/bucket)
run: build
	./$(BIN) run

build:
	$(GO) build -o $(BIN) ./cmd/refit

## test: vet, then every test with the race detector (emulators started by the tests)
test: vet
	$(GO) test -race -count=1 -timeout 30m ./...

## test-short: the fast tests only
test-short:
	$(GO) test -short -count=1 ./...

vet:
	$(GO) vet ./...

## bench: Go micro-benchmarks (see BENCHMARKS.md for the system benchmarks)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./internal/... ./gateway/...

clean:
	rm -rf bin var
