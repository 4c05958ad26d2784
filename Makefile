# meshfast — two commands set up everything: `make run` and `make test`.
GO ?= go

.PHONY: run test build vet bench fuzz

# ADDR=127.0.0.1:9000 make run moves the server; without ADDR the binary's
# own default applies (:8080, or MESHFAST_ADDR and the other MESHFAST_*
# variables, see meshfast -h). CONFIG=examples/edge/meshfast.yaml make run
# (or make run CONFIG=…) runs with a configuration file; without it, with
# the built-in defaults.
run:
	$(GO) run ./cmd/meshfast $(if $(CONFIG),-config $(CONFIG)) $(if $(ADDR),-addr $(ADDR))

build:
	$(GO) build -o bin/ ./cmd/...

vet:
	$(GO) vet ./...

# The whole suite: vet, then every test under the race detector, then a
# short second pass without it for the allocation tests the race detector
# hides (files built with !race, tests calling testing.AllocsPerRun; found
# by perf/scripts/alloctests.sh, not listed). A test that needs Redis starts
# its own redis-server (or Redis Cluster) through internal/testutil, and is
# skipped without redis-server unless MESHFAST_REQUIRE_REDIS=1 (CI).
test: vet
	$(GO) test -race -count=1 -timeout 15m ./...
	$(GO) test -count=1 -timeout 5m $$(bash perf/scripts/alloctests.sh)

# The short version of perf/results.md: hot-path micro-benchmarks, then one
# small, bounded run of each whole-system scenario on loopback, checked
# against the published targets (perf/scripts/short.sh). 90 s in all on the
# 2-core VM with the build cache warm (perf/results.md, "The short run").
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
