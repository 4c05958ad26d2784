package redis

import "sync/atomic"

// Stats is a snapshot of the coordinator's counters, all cumulative since
// New. They are the figures /metrics exports (round trips, pipeline sizes,
// errors, pub/sub drops).
type Stats struct {
	// RoundTrips counts the calls that waited for Redis (one Do or one
	// DoMulti each, whatever number of commands it carried), Commands the
	// commands they carried, MaxBatch the largest of them.
	RoundTrips uint64
	Commands   uint64
	MaxBatch   uint64
	// Writes and Reads count the write and read syscalls on every Redis
	// connection. Writes is what auto-pipelining saves: concurrent calls
	// share one write, so Commands/Writes is the mean pipeline size.
	Writes uint64
	Reads  uint64
	// Errors counts calls that failed (Redis unreachable, an error reply,
	// a context that ended).
	Errors uint64

	// PubSubReceived counts messages read from the pub/sub connections,
	// PubSubDropped those dropped because their worker's queue was full.
	PubSubReceived uint64
	PubSubDropped  uint64
	// PubSubConnects counts pub/sub connections established (the first
	// ones and every reconnect); Resubscribed the topics subscribed again
	// on a new connection.
	PubSubConnects uint64
	Resubscribed   uint64
	// Reconnects counts the connections that came back after a loss, each
	// reported to the OnReconnect handlers.
	Reconnects uint64
	// Probes counts delivery probes published by idle pub/sub connections,
	// ProbeRestarts the connections replaced because a probe did not come
	// back (see Options.ProbeInterval).
	Probes        uint64
	ProbeRestarts uint64
	// Subscribed is the number of topics this node is subscribed to in
	// Redis now, lingering ones (no handler, UnsubscribeDelay) included;
	// Dissolved counts the lingering topics dropped after the delay.
	Subscribed uint64
	Dissolved  uint64
	// TopologyRefreshes counts re-reads of a cluster's slot map.
	TopologyRefreshes uint64

	// ScriptLoads counts script reloads after a NOSCRIPT reply (a Redis
	// that restarted, or a new master).
	ScriptLoads uint64

	// Sweeps counts presence sweeps by this node, Expiries the expiries it
	// won (and reported to its handler, if any).
	Sweeps   uint64
	Expiries uint64
}

type stats struct {
	roundTrips, commands, maxBatch, writes, reads, errors atomic.Uint64
	psReceived, psDropped, psConnects, resubscribed       atomic.Uint64
	reconnects, dissolved, probes, probeRestarts          atomic.Uint64
	topology, sweeps, expiries, scriptLoads               atomic.Uint64
}

func (s *stats) roundTrip(n int) {
	s.roundTrips.Add(1)
	s.commands.Add(uint64(n))
	for {
		m := s.maxBatch.Load()
		if uint64(n) <= m || s.maxBatch.CompareAndSwap(m, uint64(n)) {
			return
		}
	}
}

// Stats returns a snapshot of the counters. Safe from any goroutine.
func (c *Coordinator) Stats() Stats {
	s := &c.st
	return Stats{
		RoundTrips:        s.roundTrips.Load(),
		Commands:          s.commands.Load(),
		MaxBatch:          s.maxBatch.Load(),
		Writes:            s.writes.Load(),
		Reads:             s.reads.Load(),
		Errors:            s.errors.Load(),
		PubSubReceived:    s.psReceived.Load(),
		PubSubDropped:     s.psDropped.Load(),
		PubSubConnects:    s.psConnects.Load(),
		Resubscribed:      s.resubscribed.Load(),
		Reconnects:        s.reconnects.Load(),
		Probes:            s.probes.Load(),
		ProbeRestarts:     s.probeRestarts.Load(),
		Subscribed:        uint64(c.ps.count()),
		Dissolved:         s.dissolved.Load(),
		TopologyRefreshes: s.topology.Load(),
		ScriptLoads:       s.scriptLoads.Load(),
		Sweeps:            s.sweeps.Load(),
		Expiries:          s.expiries.Load(),
	}
}
