#!/usr/bin/env bash
# Helpers for the perf campaign: start loopback servers, remember their PIDs,
# stop exactly those PIDs. Source it; binaries are /tmp/mf and /tmp/mfb
# (go build -o /tmp/mf ./cmd/meshfast && go build -o /tmp/mfb ./cmd/meshfast-bench).
set -u
MF=${MF:-/tmp/mf}
MFB=${MFB:-/tmp/mfb}
OUT=${OUT:-/tmp/mfres}
mkdir -p "$OUT"
PIDS=()

wait_port() { # host:port
	local i
	for i in $(seq 1 100); do
		curl -s -o /dev/null "http://$1/health" && return 0
		(exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "port $1 never opened" >&2; return 1
}

start_mf() { # addr [flags...]
	local addr=$1; shift
	"$MF" -addr "$addr" -bench ${MFFLAGS:-} "$@" >"$OUT/mf-${addr##*:}.log" 2>&1 &
	PIDS+=($!); LASTPID=$!
	wait_port "$addr" || exit 1
	alive "$LASTPID" "$OUT/mf-${addr##*:}.log"
}

start_baseline() { # addr
	"$MFB" baseline -addr "$1" >"$OUT/bl-${1##*:}.log" 2>&1 &
	PIDS+=($!); LASTPID=$!
	wait_port "$1" || exit 1
	alive "$LASTPID" "$OUT/bl-${1##*:}.log"
}

alive() { # pid log: the server we started is the one answering, not another on its port; else exit
	sleep 0.2
	kill -0 "$1" 2>/dev/null && return 0
	echo "server exited (port taken?):" >&2; cat "$2" >&2; exit 1
}

stop_all() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null
	done
	PIDS=()
}
trap stop_all EXIT

metric() { # addr name -> value from /metrics
	curl -s "http://$1/metrics" | awk -v n="$2" '$1==n {print $2}'
}

conns_on() { # addr -> server-side connection count
	curl -s "http://$1/health" | sed -n 's/.*"connections":\([0-9]*\).*/\1/p'
}

stamp() { echo "# $(date -u +%FT%TZ) binaries built at commit $(cat "$OUT/BUILD_COMMIT" 2>/dev/null || echo ?) (HEAD $(git -C /work/main rev-parse --short HEAD)) load: $(uptime | sed 's/.*load average: //')"; }

rssk() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
