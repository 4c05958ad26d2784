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

# Every fuzz target in the module for FUZZTIME each (go test -fuzz takes one
# target per run). Targets are found, not listed, so a new one is not missed.
FUZZTIME ?= 30s
fuzz:
	@set -e; grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$f"); do \
			echo "== $$t ($$(dirname "$$f"))"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) "./$$(dirname "$$f")/"; \
		done; \
	done
