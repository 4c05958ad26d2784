// Package perf measures meshfast: latency histograms that hot paths record
// into, a metrics registry rendered as Prometheus text or health JSON, and
// a coarse clock for per-message timestamps. It opens no sockets; the engine
// serves the bytes it produces.
//
// # Latency
//
// A Tracker is a set of HDR histograms (github.com/HdrHistogram/hdrhistogram-go),
// one per shard, merged only when read. Event loops record into their own
// shard with RecordOn and never contend; other goroutines use Record, which
// uses the current P's shard. A recorder whose shard is being merged by a
// reader moves to a free one instead of waiting. Recording never allocates. The default range is 1µs to
// 60s at 3 significant digits (0.1% error); out-of-range values are clamped,
// never dropped.
//
// Snapshot returns a Histogram: a private merged copy with quantiles, mean
// and count. Histograms encode to the standard HdrHistogram V2 form (and to
// JSON carrying it), so the load generator can merge results from several
// processes losslessly with DecodeHistogram and Histogram.Merge.
//
// # Metrics
//
// Metrics registers counters, gauges (plain or func-backed) and trackers.
// Registration is for startup and returns values the hot path updates with
// one atomic operation and no registry lock. WritePrometheus renders text
// exposition format 0.0.4, trackers as summaries in seconds; WriteJSON
// renders a compact digest for /health. RegisterRuntime adds goroutine,
// heap and RSS gauges read from runtime/metrics and /proc/self/statm, without
// runtime.ReadMemStats' stop-the-world. OnScrape registers a collector that
// runs once per scrape before the func-backed values are read, so several
// series computed from one expensive source read it once.
//
// # Clock
//
// CoarseClock keeps an atomic timestamp refreshed every millisecond by one
// goroutine, so a lastSeen stamp costs one atomic load. SystemClock is the
// precise path and ManualClock the test double; all satisfy Clock.
//
// # Usage
//
//	m := perf.NewMetrics()
//	m.RegisterRuntime()
//	conns := m.Gauge("meshfast_connections", "Open WebSocket connections.")
//	msgs := m.ShardedCounter("meshfast_messages_in_total", "Messages received.", loops)
//	lat := m.Tracker("meshfast_command_duration_seconds", "Command latency.",
//		perf.Options{Shards: loops}, perf.Label{Name: "kind", Value: "command"})
//
//	// On event loop i, per message:
//	start := time.Now()
//	msgs.AddOn(i, 1)
//	handle(msg)
//	lat.RecordOn(i, int64(time.Since(start)))
//
//	// In the HTTP handler the engine serves:
//	buf = m.WritePrometheus(buf[:0])
//
// # Concurrency
//
// Every exported method of Tracker, Metrics, Counter, ShardedCounter, Gauge,
// CoarseClock, SystemClock and ManualClock is safe from any goroutine.
// Tracker recording locks one shard; a reader locks each shard in turn, so
// a scrape never blocks all recorders at once. Metrics serializes
// registration and scrapes on one mutex that the hot path never takes;
// func-backed metrics run under it and must not block or call back into the
// registry.
//
// Histogram is the exception: it is a single-owner value (a snapshot, or
// the load generator's accumulator) with no lock. Do not share one between
// goroutines without synchronization.
package perf
