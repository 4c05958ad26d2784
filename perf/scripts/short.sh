#!/usr/bin/env bash
# short.sh: the short version of the whole-system figures in perf/results.md
# (`make bench` runs it after the micro-benchmarks). Builds meshfast and
# meshfast-bench from this tree, runs each scenario once, small and bounded
# (loopback only), then checks every report against the published targets
# with `meshfast-bench targets`. With the micro-benchmarks before it,
# `make bench` took 90 s on the 2-core VM with the build cache warm.
#
# Output: one table per scenario, then the targets table; JSON reports in
# $OUT (default: a new temporary directory). Set A and B to move the server
# and baseline off 127.0.0.1:9300 and :9400. A single run on a shared,
# noisy machine: the campaign (campaign.sh, three interleaved runs, medians)
# is what perf/results.md publishes.
set -u
cd "$(dirname "$0")/../.." || exit 1
bin=$(mktemp -d)
OUT=${OUT:-$(mktemp -d)}
MF=$bin/meshfast MFB=$bin/meshfast-bench
go build -o "$MF" ./cmd/meshfast && go build -o "$MFB" ./cmd/meshfast-bench || exit 1
. perf/scripts/lib.sh
trap 'stop_all; rm -rf "$bin"' EXIT
A=${A:-127.0.0.1:9300} B=${B:-127.0.0.1:9400}
fail=0
step() { # name command...: one bounded scenario run
	local name=$1; shift
	echo; echo "## $name"; echo "\$ ${*/#$MFB/meshfast-bench}"
	timeout 300 "$@" -progress -1s -out "$OUT/$name.json" || { echo "$name failed" >&2; fail=1; }
}

step sim "$MFB" sim -sim-conns 1000000 -publishes 10

start_mf "$A"
step connect "$MFB" connect -addr "$A" -conns 10000 -workers 2 -floor
stop_all

start_mf "$A" # idle memory is measured on a fresh server
step idle "$MFB" idle -addr "$A" -conns 10000 -workers 1 -sample-at 5000,10000 -duration 3s
stop_all

start_mf "$A"; start_baseline "$B"
step rpc "$MFB" rpc -addr "$A" -baseline-addr "$B" -conns 100 -duration 3s
stop_all

start_mf "$A"; start_baseline "$B"
step fanout "$MFB" fanout -addr "$A" -baseline-addr "$B" -conns 1000 -rate 20 -duration 5s -drain 3s \
	-ceiling -ceiling-rate 20 -rounds 100 -writers 2
stop_all

start_mf "$A"
# Closed loop, 256 publishes in flight: a fixed rate saturates a slow host
# and not a fast one (2,000/s left a quick hour's server at 5.8 frames per
# write), and frames coalesce only when the loops fall behind.
step fanouthi "$MFB" fanout -addr "$A" -conns 1000 -publishers 256 -rate -1 -messages 20000 -duration 8s -drain 10s
stop_all

echo; echo "## targets (reports in $OUT)"
"$MFB" targets "$OUT"/*.json || fail=1
exit $fail
