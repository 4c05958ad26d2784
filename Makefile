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

# The short version of perf/results.md: hot-path micro-benchmarks, then one
# small, bounded run of each whole-system scenario on loopback, checked
# against the published targets (perf/scripts/short.sh; a few minutes).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./engine/ ./protocol/ ./perf/
	$(GO) test -run '^$$' -bench 'CommandRoundTrip|RoomBroadcast|ConnectionOpen|RecordFanout' -benchtime 2000x ./features/mesh/
	bash perf/scripts/short.sh

# Each fuzz target for a short while.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzFrames$$' -fuzztime 30s ./engine/
	$(GO) test -run '^$$' -fuzz '^FuzzFrameHeader$$' -fuzztime 30s ./engine/
	$(GO) test -run '^$$' -fuzz '^FuzzHandshake$$' -fuzztime 30s ./engine/
