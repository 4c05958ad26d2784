package redis

import (
	"sync/atomic"

	"github.com/meshfast/meshfast/coord"
)

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

// Metrics is Stats as coord.Metric values, for /metrics (coord.Observed):
// round trips, pipeline sizes (commands per write: commands_total over
// writes_total), errors, pub/sub drops and the rest.
func (c *Coordinator) Metrics() []coord.Metric {
	s := c.Stats()
	counter := func(name, help string, v uint64) coord.Metric {
		return coord.Metric{Name: "meshfast_redis_" + name + "_total", Help: help, Counter: true, Value: float64(v)}
	}
	gauge := func(name, help string, v uint64) coord.Metric {
		return coord.Metric{Name: "meshfast_redis_" + name, Help: help, Value: float64(v)}
	}
	return []coord.Metric{
		counter("round_trips", "Calls that waited for Redis (one Do or DoMulti each).", s.RoundTrips),
		counter("commands", "Commands those calls carried.", s.Commands),
		gauge("max_pipeline", "Most commands one call carried.", s.MaxBatch),
		counter("writes", "Write syscalls on Redis connections (an auto-pipeline flush each); commands_total/writes_total is the mean pipeline size.", s.Writes),
		counter("reads", "Read syscalls on Redis connections.", s.Reads),
		counter("errors", "Calls that failed (Redis unreachable, an error reply, a context that ended).", s.Errors),
		counter("pubsub_received", "Messages read from pub/sub connections.", s.PubSubReceived),
		counter("pubsub_dropped", "Pub/sub messages dropped because their delivery queue was full.", s.PubSubDropped),
		counter("pubsub_connects", "Pub/sub connections established, reconnects included.", s.PubSubConnects),
		counter("reconnects", "Pub/sub connections that came back after a loss (the node re-registers its state).", s.Reconnects),
		counter("resubscribed", "Topics subscribed again on a new pub/sub connection.", s.Resubscribed),
		gauge("subscribed", "Topics this node is subscribed to in Redis, lingering ones included.", s.Subscribed),
		counter("dissolved", "Lingering topics unsubscribed after the unsubscribe delay.", s.Dissolved),
		counter("probes", "Delivery probes published by idle pub/sub connections.", s.Probes),
		counter("probe_restarts", "Pub/sub connections replaced because a probe did not come back.", s.ProbeRestarts),
		counter("topology_refreshes", "Re-reads of the cluster's slot map.", s.TopologyRefreshes),
		counter("script_loads", "Script reloads after a NOSCRIPT reply.", s.ScriptLoads),
		counter("sweeps", "Presence sweeps run by this node.", s.Sweeps),
		counter("expiries", "Presence expiries this node won and reported.", s.Expiries),
	}
}
