#!/usr/bin/env bash
# hundredk.sh [PER_NODE] [NODES]: NODES meshfast processes (default 6) on
# 127.0.0.1:9301.., PER_NODE connections each (default 17000) held idle by
# meshfast-bench with one worker process per 10,000 connections; the count is
# verified on the server side (sum of each node's /health "connections")
# while held. Output in $OUT/hundredk.txt.
cd "$(dirname "$0")/../.." || exit 1
. perf/scripts/lib.sh
PER=${1:-17000} NODES=${2:-6}
N=$((PER * NODES)); addrs=""; pids=""
F="$OUT/hundredk.txt"
{
stamp
for i in $(seq 1 "$NODES"); do
	a=127.0.0.1:$((9300 + i)); start_mf $a; addrs="$addrs${addrs:+,}$a"; pids="$pids $LASTPID"
done
echo "nodes: $addrs pids:$pids"
echo "\$ /tmp/mfb idle -addr $addrs -conns $N -sample-at $((N / 2)),$N -duration 20s -timeout 3m -progress 5s -out $OUT/hundredk.json"
timeout 400 "$MFB" idle -addr "$addrs" -conns "$N" -sample-at "$((N / 2)),$N" -duration 20s -timeout 3m -progress 5s -out "$OUT/hundredk.json" &
bpid=$!
best=0
while kill -0 $bpid 2>/dev/null; do
	sum=0; per=""
	for a in ${addrs//,/ }; do c=$(conns_on "$a"); sum=$((sum + ${c:-0})); per="$per ${c:-?}"; done
	[ $sum -gt $best ] && best=$sum && echo "server-side connections: $sum (per node:$per) at $(date -u +%T)"
	sleep 2
done
wait $bpid
echo "max server-side connections observed (sum of /health): $best"
echo "# end $(date -u +%FT%TZ) load: $(uptime | sed 's/.*load average: //')"
} >"$F" 2>&1
stop_all
cat "$F"
