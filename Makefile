# meshfast — two commands set up everything: `make run` and `make test`.
GO ?= go
ADDR ?= :8080

.PHONY: run test build vet bench fuzz

run:
	$(GO) run ./cmd/meshfast -addr $(ADDR)

build:
	$(GO) build -o bin/ ./cmd/...

vet:
	$(GO) vet ./...

# The whole suite: vet, then every test under the race detector. Tests that
# need Redis start their own redis-server (see internal/testutil).
test: vet
	$(GO) test -race -count=1 -timeout 15m ./...

# Short benchmarks of the hot paths; figures go in perf/results.md.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./engine/ ./protocol/ ./perf/

# Each fuzz target for a short while.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzFrames$$' -fuzztime 30s ./engine/
	$(GO) test -run '^$$' -fuzz '^FuzzFrameHeader$$' -fuzztime 30s ./engine/
	$(GO) test -run '^$$' -fuzz '^FuzzHandshake$$' -fuzztime 30s ./engine/
