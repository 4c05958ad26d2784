package mesh

import (
	"time"

	"github.com/meshfast/meshfast/perf"
)

// metrics are the server's trackers and counters; every method is a no-op
// when Options.Metrics is nil.
type metrics struct {
	on          bool
	commands    *perf.Counter
	errors      *perf.Counter
	coordErrors *perf.Counter
	refusals    *perf.Counter
	limits      map[string]*perf.Counter // by limit (limits.go)
	recoveries  *perf.Counter
	deadNodes   *perf.Counter
	deadConns   *perf.Counter
	cmdTime     *perf.Tracker
	rtt         *perf.Tracker
}

func (m *metrics) init(reg *perf.Metrics) {
	if reg == nil {
		return
	}
	m.on = true
	m.commands = reg.Counter("mesh_commands_total", "Commands dispatched.")
	m.errors = reg.Counter("mesh_command_errors_total", "Commands answered with an error payload.")
	m.coordErrors = reg.Counter("mesh_coord_errors_total", "Commands failed by a coordinator error (logged, answered as an error).")
	m.refusals = reg.Counter("mesh_connections_refused_total", "Connections refused by the Origin allow-list or authentication, before or after the upgrade.")
	m.limits = make(map[string]*perf.Counter)
	for _, l := range []string{limitRate, limitRooms, limitSubscriptions} {
		m.limits[l] = reg.Counter("mesh_limit_refusals_total", "Commands refused by a per-connection limit (code ELIMIT).",
			perf.Label{Name: "limit", Value: l})
	}
	m.recoveries = reg.Counter("mesh_recoveries_total", "Times this node wrote its connections, rooms and presence back after the coordinator reconnected.")
	m.deadNodes = reg.Counter("mesh_dead_nodes_removed_total", "Dead nodes (heartbeat lapsed) whose state this node's janitor removed.")
	m.deadConns = reg.Counter("mesh_dead_node_connections_removed_total", "Connections of dead nodes this node's janitor removed.")
	m.cmdTime = reg.Tracker("mesh_command_seconds", "Time from a command's arrival on the loop to its reply.", perf.Options{})
	m.rtt = reg.Tracker("mesh_latency_rtt_seconds", "Round trip of latency:request to latency:response per connection.", perf.Options{})
}

func (m *metrics) command(d time.Duration, err error) {
	if !m.on {
		return
	}
	m.commands.Inc()
	if err != nil {
		m.errors.Inc()
	}
	m.cmdTime.Record(d)
}

func (m *metrics) latency(loop int, ns int64) {
	if m.on {
		m.rtt.RecordOn(loop, ns)
	}
}

func (m *metrics) coordError() {
	if m.on {
		m.coordErrors.Inc()
	}
}

func (m *metrics) limited(limit string) {
	if m.on {
		m.limits[limit].Inc()
	}
}

func (m *metrics) recovery() {
	if m.on {
		m.recoveries.Inc()
	}
}

func (m *metrics) deadNode(conns int) {
	if m.on {
		m.deadNodes.Inc()
		m.deadConns.Add(uint64(conns))
	}
}

func (m *metrics) refused() {
	if m.on {
		m.refusals.Inc()
	}
}
