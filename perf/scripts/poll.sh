#!/usr/bin/env bash
# poll.sh ADDR PID SECONDS OUTFILE: every 0.5 s, one line of server-side
# figures: unix time, connections (server's /metrics), VmRSS kB, Go heap
# objects bytes, Go runtime total mapped bytes, goroutines, writes, frames out.
addr=$1 pid=$2 secs=$3 out=$4
end=$((SECONDS + secs))
echo "t conns rss_kB heap_obj_B go_total_B goroutines writes frames_out" >"$out"
while [ $SECONDS -lt $end ] && kill -0 "$pid" 2>/dev/null; do
	m=$(curl -s --max-time 2 "http://$addr/metrics")
	rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null)
	echo "$m" | awk -v t="$(date +%s.%N)" -v rss="$rss" '
		$1=="meshfast_connections"{c=$2} $1=="go_memory_classes_heap_objects_bytes"{h=$2}
		$1=="go_memory_classes_total_bytes"{tot=$2} $1=="go_goroutines"{g=$2}
		$1=="meshfast_writes_total"{w=$2} $1=="meshfast_frames_out_total"{f=$2}
		END{printf "%s %d %s %.0f %.0f %d %.0f %.0f\n", t, c, rss, h, tot, g, w, f}' >>"$out"
	sleep 0.5
done
