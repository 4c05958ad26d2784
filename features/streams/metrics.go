package streams

import (
	"time"

	"github.com/meshfast/meshfast/perf"
)

// metrics are the feature's figures, registered on a perf.Metrics (the
// node's /metrics) under meshfast_streams_*.
type metrics struct {
	reg *perf.Metrics

	published      *perf.Counter // events stored by this node's publishes
	duplicates     *perf.Counter // publishes that found their id stored
	fanoutErrors   *perf.Counter // stored events whose live publish failed
	received       *perf.Counter // events the hub delivered in order, once per room
	delivered      *perf.Counter // events handed to subscription handlers
	acked          *perf.Counter
	replayed       *perf.Counter // events returned by Replay and CatchUp, and read by subscriptions' catch-up
	gaps           *perf.Counter // gaps the hub read from the store
	liveDuplicates *perf.Counter // live events the hub had already delivered
	liveDropped    *perf.Counter // live events dropped by a full inbox (read back from the store)
	queueOverflows *perf.Counter // subscriptions that fell behind and caught up from the store
	errors         *perf.Counter // handler, middleware-at-delivery and store errors of subscriptions
	snapshotUsage  *perf.Counter // snapshots read (GetSnapshot, snapshot sync)
	ephPublished   *perf.Counter
	ephDelivered   *perf.Counter
	ephDropped     *perf.Counter // ephemeral events a full subscription queue dropped
	replayLatency  *perf.Tracker // one store read of Replay, CatchUp and catch-up
}

func newMetrics(reg *perf.Metrics, s *Streams) *metrics {
	if reg == nil {
		reg = perf.NewMetrics()
	}
	c := func(name, help string) *perf.Counter { return reg.Counter("meshfast_streams_"+name, help) }
	m := &metrics{
		reg:            reg,
		published:      c("published_total", "Durable events this node stored."),
		duplicates:     c("duplicates_total", "Publishes whose event id was already stored (idempotent)."),
		fanoutErrors:   c("fanout_errors_total", "Stored events whose live fan-out failed (subscribers read them from the store)."),
		received:       c("received_total", "Durable events this node received in sequence order, once per room."),
		delivered:      c("delivered_total", "Durable events handed to subscription handlers."),
		acked:          c("acked_total", "Acknowledgements recorded."),
		replayed:       c("replayed_total", "Events read back from the store (replay, catch-up)."),
		gaps:           c("gaps_total", "Sequence gaps this node filled from the store."),
		liveDuplicates: c("live_duplicates_total", "Live events this node had already delivered."),
		liveDropped:    c("live_dropped_total", "Live events dropped by a full hub inbox and read back from the store."),
		queueOverflows: c("queue_overflows_total", "Times a subscription's queue overflowed and it caught up from the store."),
		errors:         c("errors_total", "Errors of subscriptions: handlers, middleware at delivery, store reads."),
		snapshotUsage:  c("snapshot_usage_total", "Snapshots read (getSnapshot and snapshot sync)."),
		ephPublished:   c("ephemeral_published_total", "Ephemeral events published by this node."),
		ephDelivered:   c("ephemeral_delivered_total", "Ephemeral events handed to handlers."),
		ephDropped:     c("ephemeral_dropped_total", "Ephemeral events dropped by a full subscription queue."),
		replayLatency: reg.Tracker("meshfast_streams_replay_seconds",
			"Latency of one store read of a replay or catch-up.", perf.Options{}),
	}
	reg.GaugeFunc("meshfast_streams_active_rooms", "Rooms this node orders live events for.",
		func() float64 { return float64(s.hub.activeRooms.Load()) })
	reg.GaugeFunc("meshfast_streams_active_listeners", "Live listeners (subscriptions' rooms and patterns) on this node.",
		func() float64 { return float64(s.hub.activeListeners.Load()) })
	reg.GaugeFunc("meshfast_streams_subscriptions", "Open durable subscriptions on this node.",
		func() float64 { return float64(s.subscriptions.Load()) })
	return m
}

// Stats is the document's snapshotMetrics(): this node's figures now.
type Stats struct {
	Published         uint64
	DuplicatesDropped uint64 // publishes answered with the stored event
	Received          uint64
	Delivered         uint64
	Acked             uint64
	Replayed          uint64
	GapsDetected      uint64
	Errors            uint64
	SnapshotUsage     uint64
	QueueOverflows    uint64
	ActiveRooms       int
	ActiveListeners   int
	Subscriptions     int
	// ReplayLatency is the latency of store reads of replays and
	// catch-ups since start.
	ReplayLatency perf.Summary
}

// Stats returns the node's figures (snapshotMetrics in the document).
func (s *Streams) Stats() Stats {
	m := s.m
	return Stats{
		Published:         m.published.Load(),
		DuplicatesDropped: m.duplicates.Load(),
		Received:          m.received.Load(),
		Delivered:         m.delivered.Load(),
		Acked:             m.acked.Load(),
		Replayed:          m.replayed.Load(),
		GapsDetected:      m.gaps.Load(),
		Errors:            m.errors.Load(),
		SnapshotUsage:     m.snapshotUsage.Load(),
		QueueOverflows:    m.queueOverflows.Load(),
		ActiveRooms:       int(s.hub.activeRooms.Load()),
		ActiveListeners:   int(s.hub.activeListeners.Load()),
		Subscriptions:     int(s.subscriptions.Load()),
		ReplayLatency:     m.replayLatency.Snapshot().Summary(),
	}
}

// Metrics returns the registry the feature's metrics are on.
func (s *Streams) Metrics() *perf.Metrics { return s.m.reg }

func (m *metrics) replayRead(start time.Time) { m.replayLatency.Record(time.Since(start)) }
