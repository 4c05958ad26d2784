package mesh

import (
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/perf"
)

// Defaults of Options fields.
const (
	// DefaultPath is the default of Options.Path.
	DefaultPath = "/"
	// DefaultPingInterval is the default of Options.PingInterval (Mesh's 30 s).
	DefaultPingInterval = 30 * time.Second
	// DefaultLatencyInterval is the default of Options.LatencyInterval (Mesh's 5 s).
	DefaultLatencyInterval = 5 * time.Second
	// DefaultMaxMissedPongs is the default of Options.MaxMissedPongs (Mesh's 1).
	DefaultMaxMissedPongs = 1
	// DefaultMaxQueuedCommands is the default of Options.MaxQueuedCommands.
	DefaultMaxQueuedCommands = 64
	// DefaultMaxQueuedBytes is the default of Options.MaxQueuedBytes.
	DefaultMaxQueuedBytes = 1 << 20
	// DefaultWorkers is the default of Options.Workers.
	DefaultWorkers = 64
	// DefaultMaxInFlight is the default of Options.MaxInFlight.
	DefaultMaxInFlight = 100_000
	// DefaultCoordTimeout is the default of Options.CoordTimeout.
	DefaultCoordTimeout = 5 * time.Second
)

// Options configures a Server. The zero value works.
type Options struct {
	// Path is the request path Mesh clients connect to. Zero means DefaultPath.
	Path string

	// Coordinator holds the state shared between nodes. Nil means a new
	// in-memory coordinator owned (and closed) by the server: one node.
	Coordinator coord.Coordinator

	// NodeID names this node in the coordinator. Zero means a random id.
	NodeID string

	// PingInterval is how often each connection gets a "ping" push.
	// Zero means DefaultPingInterval; negative disables pings.
	PingInterval time.Duration

	// LatencyInterval is how often each connection gets a "latency" report
	// and a "latency:request" probe. Zero means DefaultLatencyInterval;
	// negative disables them.
	LatencyInterval time.Duration

	// MaxMissedPongs closes a connection after this many pings in a row go
	// unanswered (closed at ping number MaxMissedPongs+2, as in Mesh).
	// Zero means DefaultMaxMissedPongs; negative means 0.
	MaxMissedPongs int

	// MaxQueuedCommands bounds the commands one connection may have queued
	// or running. A connection's commands run one after another in arrival
	// order; one that sends faster than they complete is slowed down, not
	// refused: at this many, the server stops reading it (TCP backpressure)
	// until half of them are done. Zero means DefaultMaxQueuedCommands.
	MaxQueuedCommands int

	// MaxQueuedBytes bounds the payload bytes of a connection's queued or
	// running commands in the same way (one command is always admitted, so
	// a connection holds at most this plus one message). Zero means
	// DefaultMaxQueuedBytes.
	MaxQueuedBytes int

	// MaxInFlight caps the commands queued or running across the server, a
	// guard against overload that the per-connection bounds do not cover
	// (many connections each with a full queue). Past it a command is
	// answered, in its turn, with code EBUSY; a client sees it only when the
	// whole server is that far behind. Zero means DefaultMaxInFlight.
	MaxInFlight int

	// Workers caps the goroutines that register new connections with the
	// coordinator, clean up after closed ones and run the OnConnection and
	// OnDisconnection hooks. They start when work queues up and exit when
	// it is done, so a burst of handshakes costs a few goroutine starts, not
	// one per connection. A hook that blocks occupies a worker. (With the
	// embedded memory coordinator and no OnConnection hook, registrations
	// skip the workers and run on the loop; see the package doc.) Zero means
	// DefaultWorkers.
	Workers int

	// CoordTimeout bounds each coordinator call made on behalf of a client.
	// Zero means DefaultCoordTimeout.
	CoordTimeout time.Duration

	// NoAssignID turns off the "mesh/assign-id" push that tells each
	// connection its id right after it opens (Mesh's JS client ignores it;
	// meshfast's Go client uses it).
	NoAssignID bool

	// Metrics, if set, receives the server's trackers and counters:
	// mesh_command_seconds (time from a command's arrival to its reply),
	// mesh_latency_rtt_seconds (latency probe round trips), and command
	// and error counts.
	Metrics *perf.Metrics

	// Logf receives operational log lines. Nil means none.
	Logf func(format string, args ...any)
}

func (o Options) withDefaults() Options {
	if o.Path == "" {
		o.Path = DefaultPath
	}
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.LatencyInterval == 0 {
		o.LatencyInterval = DefaultLatencyInterval
	}
	if o.MaxMissedPongs == 0 {
		o.MaxMissedPongs = DefaultMaxMissedPongs
	} else if o.MaxMissedPongs < 0 {
		o.MaxMissedPongs = 0
	}
	if o.MaxQueuedCommands <= 0 {
		o.MaxQueuedCommands = DefaultMaxQueuedCommands
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.CoordTimeout <= 0 {
		o.CoordTimeout = DefaultCoordTimeout
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}
