#!/usr/bin/env bash
# campaign.sh SCENARIO [REP]: one bounded, loopback-only run of the perf
# campaign; output in $OUT/SCENARIO-REP.txt (default /tmp/mfres). Every
# server started here is killed by PID on exit (lib.sh's trap).
cd "$(dirname "$0")/../.." || exit 1
. perf/scripts/lib.sh
S=$1 R=${2:-1}
F="$OUT/$S-$R.txt"
A=127.0.0.1:9300 B=127.0.0.1:9400
run() { echo "\$ $*" | sed "s#$MFB#/tmp/mfb#"; timeout 400 "$@" 2>&1 | grep -v '^  *[0-9.]*s  ' ; }
{
stamp
case $S in
connect10k|connect19k|connect10krp|connect19krp|connect10kacc|connect19kacc)
	# ...rp: -reuseport (one listening socket per loop; the default since
	# it was made one); ...acc: -reuseport=false (one acceptor)
	n=${S#connect}; n=${n%rp}; n=${n%acc}; n=${n%k}000
	case $S in *rp) start_mf $A -reuseport;; *acc) start_mf $A -reuseport=false;; *) start_mf $A;; esac
	run $MFB connect -addr $A -conns $n -workers 2 -floor -progress -1s -out "$OUT/$S-$R.json"
	;;
idle|idle1h)
	if [ $S = idle1h ]; then start_mf $A -latency-interval 1h; else start_mf $A; fi
	mfpid=$LASTPID
	start_baseline $B
	perf/scripts/poll.sh $A $mfpid 120 "$OUT/$S-$R.poll" & poller=$!
	run $MFB idle -addr $A -baseline-addr $B -conns 19000 -workers 2 -sample-at 10000,19000 -duration 12s -progress -1s -out "$OUT/$S-$R.json"
	kill $poller 2>/dev/null
	;;
idlesse)
	# the same as idle, every held connection a Server-Sent Events stream
	start_mf $A; mfpid=$LASTPID
	run $MFB idle -addr $A -conns 19000 -workers 2 -sample-at 10000,19000 -duration 12s -sse 1 -progress -1s -out "$OUT/$S-$R.json"
	;;
fanoutsse|fanoutssehi)
	# 1000 subscribers, half of them SSE streams, half WebSockets, on one channel:
	# each transport's deliveries/s in the same run; ...hi at 2,000 publishes/s
	start_mf $A; mfpid=$LASTPID
	if [ $S = fanoutsse ]; then
		run $MFB fanout -addr $A -conns 1000 -rate 20 -sse 0.5 -duration 10s -drain 5s -progress -1s -out "$OUT/$S-$R.json"
	else
		run $MFB fanout -addr $A -conns 1000 -publishers 4 -rate 2000 -sse 0.5 -duration 5s -drain 15s -progress -1s -out "$OUT/$S-$R.json"
	fi
	;;
rpc100|rpc1000)
	n=${S#rpc}
	start_mf $A; start_baseline $B
	run $MFB rpc -addr $A -baseline-addr $B -conns $n -duration 8s -progress -1s -out "$OUT/$S-$R.json"
	;;
fanout5k|fanout10k|fanout1k)
	case $S in fanout5k) n=5000 rate=8;; fanout10k) n=10000 rate=4;; fanout1k) n=1000 rate=20;; esac
	d=10
	start_mf $A; mfpid=$LASTPID; start_baseline $B
	perf/scripts/poll.sh $A $mfpid 200 "$OUT/$S-$R.poll" & poller=$!
	run $MFB fanout -addr $A -baseline-addr $B -conns $n -rate $rate -duration ${d}s -drain 5s \
		-ceiling -ceiling-rate $rate -rounds $((rate * d)) -writers 2 -progress -1s -out "$OUT/$S-$R.json"
	kill $poller 2>/dev/null
	;;
fanouthi|fanouthicl)
	# high publish rate, 1000 subscribers: 4 publishers at 2,000 publishes/s in all (fanouthi),
	# or 64 closed-loop publishers (fanouthicl)
	start_mf $A; mfpid=$LASTPID
	perf/scripts/poll.sh $A $mfpid 200 "$OUT/$S-$R.poll" & poller=$!
	if [ $S = fanouthi ]; then
		run $MFB fanout -addr $A -conns 1000 -publishers 4 -rate 2000 -duration 5s -drain 15s -progress -1s -out "$OUT/$S-$R.json"
	else
		run $MFB fanout -addr $A -conns 1000 -publishers 64 -rate -1 -messages 20000 -duration 8s -drain 15s -progress -1s -out "$OUT/$S-$R.json"
	fi
	kill $poller 2>/dev/null
	;;
fanoutsat)
	# saturation: offered 5000 x 100/s = 500k deliveries/s, more than any of the three sustains
	# on this box when quiet (200k/s was enough when it was loaded); the ceiling writes back to
	# back (one frame per write)
	start_mf $A; mfpid=$LASTPID; start_baseline $B
	perf/scripts/poll.sh $A $mfpid 200 "$OUT/$S-$R.poll" & poller=$!
	run $MFB fanout -addr $A -baseline-addr $B -conns 5000 -rate 100 -duration 8s -drain 10s \
		-ceiling -rounds 60 -writers 2 -progress -1s -out "$OUT/$S-$R.json"
	kill $poller 2>/dev/null
	;;
zps10k|mesh10k)
	# 10,000 subscribers, 10 publishes/s of 64-byte payloads, the same shape twice: durable
	# events over the zero-pub-sub gateway (each stored, sequenced, fanned out; zps10k) and a
	# Mesh channel (mesh10k). The gateway lets the bench's publishers publish, unthrottled.
	export MESHFAST_STREAMS_GATEWAY_ALLOW_CLIENT_PUBLISH=true MESHFAST_STREAMS_GATEWAY_MAX_MESSAGES_PER_WINDOW=0 \
		MESHFAST_STREAMS_GATEWAY_MAX_CONNECTIONS=0
	start_mf $A; mfpid=$LASTPID
	run $MFB fanout -addr $A -protocol ${S%10k} -conns 10000 -rate 10 -duration 10s -drain 5s -progress -1s -out "$OUT/$S-$R.json"
	;;
ceiling)
	run $MFB ceiling -conns 10000 -writers 2 -rounds 20 -duration 10s -progress -1s -out "$OUT/$S-$R.json"
	;;
sim1|sim2)
	run $MFB sim -sim-conns 1000000 -publishes 20 -sim-loops ${S#sim}
	;;
*) echo "unknown scenario $S" >&2; exit 2;;
esac
echo "# end $(date -u +%FT%TZ) load: $(uptime | sed 's/.*load average: //')"
} >"$F" 2>&1
stop_all
cat "$F"
