#!/usr/bin/env bash
# latency-svg.sh: draws perf/fanout-latency.svg, the publish-to-receive
# latency distribution of meshfast beside the goroutine-per-connection
# baseline and the write(2) ceiling of the same run, as shown in
# perf/results.md. One short, bounded fanout run on loopback: 1,000
# subscribers, 20 publishes/s for 10 s (200,000 deliveries per server), about
# a minute in all. Builds meshfast and meshfast-bench from this tree.
#
# Writes $SVG (default perf/fanout-latency.svg) and its JSON report $JSON
# (default perf/fanout-latency.json; `meshfast-bench plot` redraws it). Set A
# and B to move the server and baseline off 127.0.0.1:9300 and :9400.
set -u
cd "$(dirname "$0")/../.." || exit 1
bin=$(mktemp -d)
OUT=${OUT:-$(mktemp -d)}
SVG=${SVG:-perf/fanout-latency.svg}
JSON=${JSON:-perf/fanout-latency.json}
MF=$bin/meshfast MFB=$bin/meshfast-bench
go build -o "$MF" ./cmd/meshfast && go build -o "$MFB" ./cmd/meshfast-bench || exit 1
. perf/scripts/lib.sh
trap 'stop_all; rm -rf "$bin"' EXIT
A=${A:-127.0.0.1:9300} B=${B:-127.0.0.1:9400}
start_mf "$A"; start_baseline "$B"
echo "load before: $(uptime | sed 's/.*load average: //')"
timeout 300 "$MFB" fanout -addr "$A" -baseline-addr "$B" -conns 1000 -rate 20 -duration 10s -drain 5s \
	-ceiling -ceiling-rate 20 -rounds 200 -writers 2 -progress -1s -out "$JSON" -svg "$SVG" || exit 1
echo "load after: $(uptime | sed 's/.*load average: //')"
echo "wrote $SVG and $JSON"
