package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/perf"
	"github.com/meshfast/meshfast/protocol/zps"
)

// Defaults of Options and Limits, each named after its field. The limits'
// are the document's (its createWebSocketGateway example).
const (
	// DefaultPath is where meshfast serves the gateway beside Mesh's "/".
	DefaultPath = "/zps"

	DefaultMaxConnections         = 10000
	DefaultMaxSubscriptions       = 128
	DefaultMaxPayloadBytes        = 64 << 10
	DefaultMaxMessagesPerWindow   = 100
	DefaultRateLimitWindow        = time.Second
	DefaultInitTimeout            = 10 * time.Second
	DefaultHeartbeatInterval      = 30 * time.Second
	DefaultHeartbeatTimeout       = 10 * time.Second
	DefaultMaxSocketBufferedBytes = 1 << 20

	// DefaultRecentEvents is how many of a room's latest events a node
	// keeps encoded, so that a subscriber whose catch-up from the store
	// ends a little behind the live stream takes the rest from memory.
	DefaultRecentEvents = 256
	// DefaultCatchUpBatch is the page of a subscribe's catch-up from the
	// store.
	DefaultCatchUpBatch = 500
	// DefaultReplayLimit is the limit of a replay_request that names none.
	DefaultReplayLimit = 100
	// DefaultMaxReplayLimit is the most events one replay answer holds.
	DefaultMaxReplayLimit = 1000
	// DefaultQueueSize is how many messages of one connection may wait for
	// its worker; at this many the node stops reading the connection until
	// half are done, so a fast client is slowed by TCP, not refused.
	DefaultQueueSize = 64
	// DefaultRequestTimeout bounds one message's work (a store round
	// trip, the application's hooks).
	DefaultRequestTimeout = 10 * time.Second
)

// Options configures a Gateway. The zero value works: the document's
// limits, no authentication, every scope, client publishing off.
type Options struct {
	// Path is the WebSocket path. Empty means DefaultPath.
	Path string
	// Limits: see Limits.
	Limits Limits
	// Auth: see Auth.
	Auth Auth
	// AllowedOrigins, if not empty, refuses with 403 every handshake whose
	// Origin (what a browser sends) matches none of them; the forms are
	// engine.ParseOrigins'. A handshake without Origin comes from no
	// browser page and is left to Auth.
	AllowedOrigins []string
	// Metrics receives the gateway's series (meshfast_zps_*). Nil means a
	// registry of its own.
	Metrics *perf.Metrics
	// Logger: nil discards.
	Logger *slog.Logger

	// Shards is the number of goroutines that fan events out (a room
	// always goes to the same one). Zero means GOMAXPROCS.
	Shards int
	// RecentEvents: see DefaultRecentEvents.
	RecentEvents int
	// CatchUpBatch: see DefaultCatchUpBatch (at most store.MaxLimit).
	CatchUpBatch int
	// ReplayLimit and MaxReplayLimit: see their defaults.
	ReplayLimit    int
	MaxReplayLimit int
	// QueueSize: see DefaultQueueSize.
	QueueSize int
	// RequestTimeout: see DefaultRequestTimeout.
	RequestTimeout time.Duration
}

// Limits are the document's gateway limits. A zero field takes its
// default; a negative one turns the limit off (AllowClientPublish is a
// plain switch, off by default as in the document).
type Limits struct {
	// MaxConnections: a connection past it is told CodeTooManyConnections
	// and closed.
	MaxConnections int
	// MaxSubscriptions per connection (rooms and scope:* patterns): a
	// subscribe past it is refused with CodeTooManySubscriptions.
	MaxSubscriptions int
	// MaxPayloadBytes: a message longer than this is dropped and answered
	// CodePayloadTooLarge (the engine's MaxMessageSize, above it, closes
	// the connection).
	MaxPayloadBytes int
	// MaxMessagesPerWindow per RateLimitWindow and connection: a message
	// past it is dropped and answered CodeRateLimited.
	MaxMessagesPerWindow int
	RateLimitWindow      time.Duration
	// InitTimeout: a connection that has not sent init by then is told
	// CodeInitTimeout and closed.
	InitTimeout time.Duration
	// HeartbeatInterval: a connection silent this long is sent a
	// WebSocket ping; one that then stays silent HeartbeatTimeout more is
	// closed. The resolution is the engine's SweepPeriod.
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration
	// MaxSocketBufferedBytes: a connection that owes its client more than
	// this is closed as a slow consumer (1013), whatever the engine's
	// MaxPendingBytes; a subscribe's catch-up paces itself by it.
	MaxSocketBufferedBytes int
	// AllowClientPublish lets clients publish (the document's default is
	// off: applications publish from their backend).
	AllowClientPublish bool
}

// Auth is the document's gateway auth: a token on init, the scopes rooms
// may belong to, and a per-room decision for each action. Every action
// also passes the streams middleware (subscribe through
// Streams.Intercept; publish, replay and ack through the Streams calls
// themselves), which may refuse it as well.
type Auth struct {
	// JWT, if set, verifies the token init carries and returns its claims
	// (the document's auth.jwt): an init without a token, or with one it
	// refuses, is answered CodeUnauthorized and the connection closed. Nil
	// takes every connection, and ignores a token. It runs on a worker
	// goroutine and may block (up to RequestTimeout).
	JWT func(ctx context.Context, token string) (map[string]any, error)
	// Scopes, if not empty, are the only scopes rooms may have: any other
	// is refused with CodeAccessDenied, for every action.
	Scopes []string
	// Authorize, if set, decides each action on a room (the document's
	// auth.authorize): false refuses it with CodeAccessDenied; an error
	// refuses it with CodeServerError. A scope:* subscription is
	// authorized on the pattern itself. It runs on a worker goroutine and
	// may block (up to RequestTimeout).
	Authorize func(ctx context.Context, a Access) (bool, error)
}

// Action is what Authorize is asked about: the document's four.
type Action string

// The actions.
const (
	ActionSubscribe Action = "subscribe"
	ActionPublish   Action = "publish"
	ActionReplay    Action = "replay"
	ActionAck       Action = "ack"
)

// Access is one question to Authorize (the document's ctx).
type Access struct {
	SubscriberID string
	// Claims are what Auth.JWT returned; nil without it.
	Claims map[string]any
	// Room is a room, or for a subscribe a scope:* pattern.
	Room   string
	Action Action
}

// Validate reports options that conflict or are out of range.
func (o Options) Validate() error {
	if o.Path != "" && !strings.HasPrefix(o.Path, "/") {
		return fmt.Errorf("%w: path %q does not start with /", ErrInvalidOptions, o.Path)
	}
	if o.Shards < 0 || o.RecentEvents < 0 || o.CatchUpBatch < 0 || o.ReplayLimit < 0 || o.MaxReplayLimit < 0 ||
		o.QueueSize < 0 || o.RequestTimeout < 0 {
		return fmt.Errorf("%w: negative option", ErrInvalidOptions)
	}
	if o.CatchUpBatch > 10000 || o.MaxReplayLimit > 10000 {
		return fmt.Errorf("%w: CatchUpBatch and MaxReplayLimit are at most 10000", ErrInvalidOptions)
	}
	d := o.withDefaults()
	if d.ReplayLimit > d.MaxReplayLimit {
		return fmt.Errorf("%w: ReplayLimit %d above MaxReplayLimit %d", ErrInvalidOptions, d.ReplayLimit, d.MaxReplayLimit)
	}
	l := d.Limits
	if l.RateLimitWindow <= 0 && l.MaxMessagesPerWindow > 0 {
		return fmt.Errorf("%w: a rate limit needs a window", ErrInvalidOptions)
	}
	if l.HeartbeatInterval > 0 && l.HeartbeatTimeout <= 0 {
		return fmt.Errorf("%w: a heartbeat needs a timeout", ErrInvalidOptions)
	}
	for _, s := range o.Auth.Scopes {
		if sc, wc, err := zps.ParsePattern(s + ":*"); err != nil || !wc || sc != s {
			return fmt.Errorf("%w: scope %q", ErrInvalidOptions, s)
		}
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
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Shards == 0 {
		o.Shards = runtime.GOMAXPROCS(0)
	}
	if o.RecentEvents == 0 {
		o.RecentEvents = DefaultRecentEvents
	}
	if o.CatchUpBatch == 0 {
		o.CatchUpBatch = DefaultCatchUpBatch
	}
	if o.ReplayLimit == 0 {
		o.ReplayLimit = DefaultReplayLimit
	}
	if o.MaxReplayLimit == 0 {
		o.MaxReplayLimit = DefaultMaxReplayLimit
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	o.Limits = o.Limits.withDefaults()
	return o
}

// withDefaults fills zeros with defaults and turns negatives into 0, which
// below means "no limit".
func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = 0
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = 0
		}
	}
	def(&l.MaxConnections, DefaultMaxConnections)
	def(&l.MaxSubscriptions, DefaultMaxSubscriptions)
	def(&l.MaxPayloadBytes, DefaultMaxPayloadBytes)
	def(&l.MaxMessagesPerWindow, DefaultMaxMessagesPerWindow)
	defDur(&l.RateLimitWindow, DefaultRateLimitWindow)
	defDur(&l.InitTimeout, DefaultInitTimeout)
	defDur(&l.HeartbeatInterval, DefaultHeartbeatInterval)
	defDur(&l.HeartbeatTimeout, DefaultHeartbeatTimeout)
	def(&l.MaxSocketBufferedBytes, DefaultMaxSocketBufferedBytes)
	return l
}

// Finest returns the shortest of the gateway's timers (init timeout,
// heartbeat interval and timeout), 0 if none is on: the engine's sweep
// must look at connections at least about that often for them to fire in
// time.
func (o Options) Finest() time.Duration {
	l := o.Limits.withDefaults()
	finest := time.Duration(0)
	for _, d := range []time.Duration{l.InitTimeout, l.HeartbeatInterval, l.HeartbeatTimeout} {
		if d > 0 && (finest == 0 || d < finest) {
			finest = d
		}
	}
	return finest
}

// ErrInvalidOptions wraps what Validate refuses.
var ErrInvalidOptions = errors.New("gateway: invalid options")
