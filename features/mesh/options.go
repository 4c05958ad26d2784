package mesh

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/streams"
	"github.com/meshfast/meshfast/perf"
	"github.com/meshfast/meshfast/protocol"
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
	// DefaultAuthTimeout is the default of Options.AuthTimeout.
	DefaultAuthTimeout = 10 * time.Second
	// DefaultNodeTTL is the default of Options.NodeTTL.
	DefaultNodeTTL = 10 * time.Second
)

// Options configures a Server. The zero value works.
type Options struct {
	// Path is the request path Mesh clients connect to. Zero means DefaultPath.
	Path string

	// Coordinator holds the state shared between nodes. Nil means a new
	// in-memory coordinator owned (and closed) by the server: one node.
	Coordinator coord.Coordinator

	// Streams keeps the durable channels (ExposeDurableChannel): their
	// messages, sequences and history. Nil means one the server makes at
	// the first durable exposure, on memory storage and the Coordinator's
	// pub/sub, and closes: right for one node, which is why it is refused
	// with a Coordinator whose registry is not in-process (Redis). Several
	// nodes need a Streams on a store they share (Redis Streams), made
	// with this Coordinator as its PubSub; the server does not close one it
	// was given.
	Streams *streams.Streams

	// NodeID names this node in the coordinator. Zero means a random id.
	NodeID string

	// NodeTTL is how long this node counts as alive after its last
	// heartbeat (sent every third of it). Every node's janitor removes,
	// about every half NodeTTL, the connections, rooms and presence of the
	// nodes whose heartbeat lapsed (a process killed with SIGKILL), so
	// their clients leave rooms and presence on the other nodes within
	// about 1.6 NodeTTL: within the presence TTL if NodeTTL is at most 5/8
	// of it (the defaults: 10 s and 30 s). A node whose own heartbeat lapsed
	// while it lived (the backend out of reach, the process paused) writes
	// its state back at its next heartbeat. Zero means DefaultNodeTTL.
	NodeTTL time.Duration

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

	// MaxRoomsPerConnection caps the rooms one connection may join with
	// mesh/join-room; past it a join is answered with code ELIMIT. Rooms a
	// server adds it to (AddToRoom) count but are not refused. Zero means
	// no limit.
	MaxRoomsPerConnection int

	// MaxSubscriptionsPerConnection caps the channel, record and presence
	// subscriptions one connection may hold; past it a subscribe command is
	// answered with code ELIMIT. Zero means no limit.
	MaxSubscriptionsPerConnection int

	// CommandRate is how many commands per second one connection may send
	// on average (a token bucket of CommandBurst tokens, full at connect);
	// a command past it is answered at once, in turn, with code ELIMIT
	// (limits.go says why an error and not a slow-down). Pongs and latency
	// answers are not commands. Zero means no limit.
	CommandRate float64

	// CommandBurst is the command rate's bucket: how many commands a
	// connection may send at once after a quiet spell. Zero means
	// CommandRate rounded up (one second's worth), at least 1.
	CommandBurst int

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

	// AssignID says when a connection is told its id with a
	// "mesh/assign-id" push right after it opens. The zero value,
	// AssignIDOnRequest, sends it to clients that ask for it in the
	// upgrade request (protocol.AssignIDParam), as meshfast's Go client
	// does; Mesh's JavaScript client never asks, and would hand the push to
	// its "message" listeners as if the application had sent it.
	AssignID AssignIDMode

	// Metrics, if set, receives the server's trackers and counters:
	// mesh_command_seconds (time from a command's arrival to its reply),
	// mesh_latency_rtt_seconds (latency probe round trips), and command
	// and error counts.
	Metrics *perf.Metrics

	// Authenticate, if set, decides for each WebSocket handshake on Path
	// whether to upgrade it, and who the connection is: it sees the request
	// (headers, cookies, query string, Origin, path, remote address) and
	// returns the connection's Identity, or an error that refuses the
	// upgrade with an HTTP status (see Authenticator for the rules). It
	// runs on the event loop and must not block; an I/O-bound check goes
	// in Identity.Verify. Nil accepts every handshake, anonymous, as Mesh
	// does.
	Authenticate Authenticator

	// AuthTimeout bounds Identity.Verify: a connection not verified in
	// time is closed with 1008. Zero means DefaultAuthTimeout.
	AuthTimeout time.Duration

	// AllowedOrigins, if not empty, refuses with 403 every handshake whose
	// Origin header is present and matches none of them, before
	// Authenticate runs. An entry is an exact origin, "https://app.example.com"
	// (scheme, host and the port if not the scheme's default: what browsers
	// send, no path and no trailing slash), or a pattern whose host starts
	// with "*.", "https://*.example.com", which matches every subdomain (at
	// any depth) but not example.com itself. Matching ignores case. The
	// Origin "null" (sandboxed frames, file: pages) passes only if listed,
	// and listing it lets in every such page.
	//
	// A handshake without an Origin header is let through: browsers always
	// send one on a WebSocket handshake, so its absence means a program
	// that is not a browser, and such a program can send any Origin it
	// likes anyway. The allow-list protects browser users from other sites
	// opening connections in their name (cross-site WebSocket hijacking,
	// with their cookies); keeping other programs out is Authenticate's
	// job. Empty (the default, as in Mesh) allows every origin.
	AllowedOrigins []string

	// Private closes the doors Mesh leaves open (README, "Open by
	// default"): with it, a client may join only rooms exposed with
	// ExposeRoom or ExposeRoomPattern (whose guard allows it), read only
	// its own connection's metadata unless GuardConnectionMetadata's guard
	// allows more, and read a room's metadata only while a member unless
	// GuardRoomMetadata's guard allows more. Channels, records and presence
	// need an exposure either way.
	Private bool

	// Logger receives operational log lines, each at its level: debug for
	// what a client caused (a malformed payload's detail), info for
	// connection refusals (one line each), warn for failures the server survived (a coordinator error), error
	// for bugs (a panicking handler or guard). Nil means none.
	Logger *slog.Logger
}

// ErrInvalidOptions is wrapped by every error Options.Validate returns.
var ErrInvalidOptions = errors.New("mesh: invalid options")

// Validate reports options New would refuse: a Path no request can match,
// a negative bound or timeout (zero means the default; a negative value is
// a mistake, not "off"), or an AllowedOrigins entry no browser would send.
// New calls it first; a program that builds Options from a file or flags
// can call it to report a mistake before starting anything.
func (o Options) Validate() error {
	if p := o.Path; p != "" {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("%w: Path %q does not start with \"/\" (did you mean \"/%s\"?)", ErrInvalidOptions, p, p)
		}
		for i := 0; i < len(p); i++ {
			if c := p[i]; c <= ' ' || c == 0x7f || c == '?' || c == '#' {
				return fmt.Errorf("%w: Path %q: a request path has no query, fragment, space or control character", ErrInvalidOptions, p)
			}
		}
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxQueuedCommands", int64(o.MaxQueuedCommands)},
		{"MaxQueuedBytes", int64(o.MaxQueuedBytes)},
		{"MaxInFlight", int64(o.MaxInFlight)},
		{"Workers", int64(o.Workers)},
		{"CoordTimeout", int64(o.CoordTimeout)},
		{"AuthTimeout", int64(o.AuthTimeout)},
		{"MaxRoomsPerConnection", int64(o.MaxRoomsPerConnection)},
		{"MaxSubscriptionsPerConnection", int64(o.MaxSubscriptionsPerConnection)},
		{"CommandBurst", int64(o.CommandBurst)},
		{"NodeTTL", int64(o.NodeTTL)},
	} {
		if f.v < 0 {
			return fmt.Errorf("%w: %s is negative (zero means the default)", ErrInvalidOptions, f.name)
		}
	}
	if o.CommandRate < 0 || math.IsNaN(o.CommandRate) || math.IsInf(o.CommandRate, 0) {
		return fmt.Errorf("%w: CommandRate %v: a finite number, 0 or more", ErrInvalidOptions, o.CommandRate)
	}
	if _, err := engine.ParseOrigins(o.AllowedOrigins); err != nil {
		return fmt.Errorf("%w: AllowedOrigins: %w", ErrInvalidOptions, err)
	}
	return nil
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
	if o.AuthTimeout <= 0 {
		o.AuthTimeout = DefaultAuthTimeout
	}
	if o.CommandRate > 0 && o.CommandBurst <= 0 {
		o.CommandBurst = int(math.Max(1, math.Ceil(o.CommandRate)))
	}
	if o.NodeTTL <= 0 {
		o.NodeTTL = DefaultNodeTTL
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// AssignIDMode says when a connection gets the mesh/assign-id push
// (Options.AssignID).
type AssignIDMode uint8

// AssignID modes.
const (
	// AssignIDOnRequest pushes the id when the upgrade request has the
	// query parameter protocol.AssignIDParam.
	AssignIDOnRequest AssignIDMode = iota
	// AssignIDAlways pushes the id to every connection.
	AssignIDAlways
	// AssignIDNever never pushes it.
	AssignIDNever
)

// wantsID reports whether a connection upgraded with r gets the push.
// Loop only (r is valid during OnOpen).
func (m AssignIDMode) wantsID(r *engine.Request) bool {
	switch m {
	case AssignIDAlways:
		return true
	case AssignIDOnRequest:
		return r != nil && r.HasQuery(protocol.AssignIDParam)
	}
	return false
}
