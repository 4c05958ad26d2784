#!/usr/bin/env bash
# heapprobe.sh N: fresh profiling server (/tmp/mfpp: features/server with -bench
# plus net/http/pprof on 127.0.0.1:6060, built below if missing), N idle connections held by
# meshfast-bench idle, then while held: live heap profile after a forced GC
# (/debug/pprof/heap?gc=1), /metrics, VmRSS and the kernel's Slab and TCP
# sockstat. Output in $OUT/heap-N.*
cd "$(dirname "$0")/../.." || exit 1
. perf/scripts/lib.sh
N=$1; A=127.0.0.1:9300
if [ ! -x /tmp/mfpp ]; then # build the wrapper from a throwaway directory inside the module
	d=$(mktemp -d "$PWD/_pprofserver.XXXX")
	cat >"$d/main.go" <<'GO'
// Temporary profiling wrapper (perf campaign): cmd/meshfast's server.Start
// with -bench on, plus net/http/pprof on a side port. Not part of the build
// (underscore directory).
package main

import (
	"flag"
	"log"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/features/server"
)

func main() {
	var cfg server.Config
	flag.StringVar(&cfg.Engine.Addr, "addr", "127.0.0.1:9300", "")
	pp := flag.String("pprof", "127.0.0.1:6060", "")
	flag.DurationVar(&cfg.Mesh.LatencyInterval, "latency-interval", mesh.DefaultLatencyInterval, "")
	flag.Parse()
	cfg.Engine.MaxMessageSize = engine.DefaultMaxMessageSize
	cfg.Engine.MaxPendingBytes = engine.DefaultMaxPendingBytes
	cfg.Engine.IdleTimeout = -1
	cfg.Engine.HandshakeTimeout = engine.DefaultHandshakeTimeout
	cfg.Mesh.Path = mesh.DefaultPath
	cfg.Mesh.PingInterval = mesh.DefaultPingInterval
	cfg.Mesh.MaxMissedPongs = mesh.DefaultMaxMissedPongs
	cfg.Bench = true
	go func() { log.Println(http.ListenAndServe(*pp, nil)) }()
	node, err := server.Start(cfg)
	if err != nil {
		log.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	_ = node
	os.Exit(0)
}
GO
	go build -o /tmp/mfpp "./${d##*/}"; rc=$?; rm -rf "$d"; [ $rc = 0 ] || exit 1
fi
/tmp/mfpp -addr $A -pprof 127.0.0.1:6060 -latency-interval 1h >"$OUT/mfpp.log" 2>&1 &
PIDS+=($!); pid=$!
wait_port $A
grep -E '^Slab|^SUnreclaim' /proc/meminfo >"$OUT/heap-$N.kern0"; cat /proc/net/sockstat >>"$OUT/heap-$N.kern0"
$MFB idle -addr $A -conns $N -workers 2 -sample-at $N -duration 15s -progress -1s >"$OUT/heap-$N.bench" 2>&1 &
bpid=$!
for _ in $(seq 1 120); do [ "$(conns_on $A)" = "$N" ] && break; sleep 0.5; done
sleep 3
curl -s -o "$OUT/heap-$N.pprof" "http://127.0.0.1:6060/debug/pprof/heap?gc=1"
curl -s "http://$A/metrics" >"$OUT/heap-$N.metrics"
echo "conns $(conns_on $A) rss_kB $(rssk $pid)" >"$OUT/heap-$N.rss"
grep -E '^Slab|^SUnreclaim' /proc/meminfo >"$OUT/heap-$N.kern1"; cat /proc/net/sockstat >>"$OUT/heap-$N.kern1"
wait $bpid
stop_all
