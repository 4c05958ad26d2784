package engine

import (
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"time"
)

// Defaults of Options fields. Each names the field it fills.
const (
	// DefaultAddr is the default of Options.Addr.
	DefaultAddr = ":8080"
	// DefaultMaxMessageSize is the default of Options.MaxMessageSize (1 MiB).
	DefaultMaxMessageSize = 1 << 20
	// DefaultMaxHeaderBytes is the default of Options.MaxHeaderBytes.
	DefaultMaxHeaderBytes = 8 << 10
	// DefaultMaxPendingBytes is the default of Options.MaxPendingBytes (4 MiB).
	DefaultMaxPendingBytes = 4 << 20
	// DefaultHandshakeTimeout is the default of Options.HandshakeTimeout.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultIdleTimeout is the default of Options.IdleTimeout.
	DefaultIdleTimeout = 90 * time.Second
	// DefaultPingInterval is the default of Options.PingInterval.
	DefaultPingInterval = 30 * time.Second
	// DefaultCloseTimeout is the default of Options.CloseTimeout.
	DefaultCloseTimeout = 2 * time.Second
	// DefaultTickInterval is the default of Options.TickInterval.
	DefaultTickInterval = 250 * time.Millisecond
	// DefaultSweepPeriod is the default of Options.SweepPeriod.
	DefaultSweepPeriod = time.Second
	// DefaultReadBufferCap is the default of Options.ReadBufferCap.
	DefaultReadBufferCap = 64 << 10
	// DefaultReservedFiles is the default of Options.ReservedFiles.
	DefaultReservedFiles = 128
	// DefaultMaxPausedBytes is the default of Options.MaxPausedBytes (4 MiB),
	// raised to MaxMessageSize + ReadBufferCap + 14 when that is larger.
	DefaultMaxPausedBytes = 4 << 20
)

// Options configures an Engine. The zero value works: every zero field takes
// the default named beside it.
type Options struct {
	// Addr is the TCP address to listen on, "host:port". Zero means DefaultAddr.
	// Use "127.0.0.1:0" for a free port; Engine.Addr reports the bound one.
	Addr string

	// Loops is the number of event loops, at most 64. Zero means one per
	// CPU, at most 64.
	Loops int

	// ReusePort gives every loop its own listening socket (SO_REUSEPORT) so
	// that it accepts its own connections, instead of one acceptor handing
	// each new connection to a loop: a handshake costs the server 10–20%
	// less CPU (perf/results.md). The kernel spreads connections over the
	// loops by address hash. Serve refuses a port something already listens
	// on, as without it; once bound, another process of the same user could
	// still join the port on purpose, which is why the zero value is off
	// (cmd/meshfast turns it on). Linux; elsewhere gnet keeps one acceptor.
	ReusePort bool

	// MaxConnections caps the accepted TCP connections, those still in
	// their handshake and plain HTTP requests included: a connection
	// accepted past it is closed at once, before anything is read from it
	// (Stats.RefusedMaxConnections). Zero means no limit of its own; the
	// cap derived from the file limit (ReservedFiles) applies either way.
	MaxConnections int

	// MaxConnectionsPerIP caps the accepted TCP connections from one
	// client address (the TCP peer's: behind a reverse proxy, the proxy's,
	// so set the limit there). A connection past it is closed as soon as it
	// is accepted, before anything is read from it, like one past
	// MaxConnections (Stats.RefusedPerIP). Zero means no such limit.
	MaxConnectionsPerIP int

	// ReservedFiles is how many of the process's file descriptors
	// (RLIMIT_NOFILE, read when Serve starts) the engine leaves for
	// everything but client connections: the event loops' epoll and
	// eventfd descriptors and listening sockets are counted on top (at most
	// three per loop and three more); the reserve is for the application (a
	// coordinator's connections, files, logs, the Go runtime's own). TCP
	// connections past the limit less both are closed at once, as past
	// MaxConnections (Stats.RefusedFileLimit), so that connections alone
	// can never run the process out of descriptors: an accept that fails
	// for want of one stops upstream gnet altogether (third_party/gnet
	// backs off and retries instead). Zero means DefaultReservedFiles.
	ReservedFiles int

	// MaxMessageSize is the largest message (after reassembly of fragments)
	// a client may send; larger ones close the connection with 1009.
	// Zero means DefaultMaxMessageSize.
	MaxMessageSize int

	// MaxHeaderBytes caps the HTTP request head; past it the request is
	// answered 431 and closed. Zero means DefaultMaxHeaderBytes.
	MaxHeaderBytes int

	// MaxPendingBytes caps the bytes queued for one connection that the
	// kernel has not accepted yet. Past it the connection is closed at once
	// with ReasonSlowConsumer, and what was queued for it is dropped. One
	// frame queued while nothing else is waiting for the connection is
	// admitted whatever its size (see loop.admit). Zero means
	// DefaultMaxPendingBytes.
	MaxPendingBytes int

	// SlowConsumerCode is the close code written to a slow consumer. It is
	// written behind what the socket still holds, which is exactly what the
	// client has not read, and the socket is closed without waiting: a
	// client that has stopped reading does not see it, only the connection
	// ending (usually a reset). It reaches a client that catches up before
	// the kernel gives up on the connection. Zero means CloseTryAgainLater
	// (1013).
	SlowConsumerCode CloseCode

	// MaxPausedBytes bounds the unparsed input a connection may hold while
	// its reading is paused (Conn.PauseReading). With third_party/gnet a
	// paused connection's socket is not read, so what the client sends
	// waits in the kernel and TCP slows it down, and the bound is never
	// reached. Upstream gnet keeps reading into the connection's inbound
	// buffer: past the bound the connection is closed with 1008
	// (ReasonLimit). Zero means DefaultMaxPausedBytes, or MaxMessageSize +
	// ReadBufferCap + 14 (one frame in progress and one read) if larger,
	// which is also the least it may be.
	MaxPausedBytes int

	// HandshakeTimeout closes a connection whose HTTP request (head, and
	// body if it has one) is not complete in time. Zero means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration

	// IdleTimeout closes a WebSocket connection from which nothing has been
	// read for this long. Zero means DefaultIdleTimeout; negative disables it.
	IdleTimeout time.Duration

	// PingInterval sends a WebSocket ping to a connection that has been
	// silent this long, so live clients answer before IdleTimeout.
	// Zero means DefaultPingInterval; negative disables pings.
	PingInterval time.Duration

	// CloseTimeout is how long the engine waits for the peer's close frame
	// after sending its own. Zero means DefaultCloseTimeout.
	CloseTimeout time.Duration

	// TickInterval is the timer resolution of every loop. Zero means
	// DefaultTickInterval.
	TickInterval time.Duration

	// SweepPeriod is how often each connection's timers are looked at; a
	// loop visits 1/(SweepPeriod/TickInterval) of its connections per tick,
	// so no connection owns a timer. Zero means DefaultSweepPeriod.
	SweepPeriod time.Duration

	// ReadBufferCap is gnet's per-loop read buffer. Zero means DefaultReadBufferCap.
	ReadBufferCap int

	// PublishLatency, if set, is called on a loop after it has written a
	// published or broadcast frame to its subscribers, with the time since
	// Publish (or Broadcast) was called: publish-to-write latency, once per
	// frame per loop, not per subscriber. It must not block.
	PublishLatency func(loop int, d time.Duration)

	// Logger receives operational log lines, each at its level: debug for
	// what a client caused and the engine handled (a refused connection),
	// info for what an operator may want to know (gnet's start), warn for
	// a failure the engine survived, error for one that stops it. Lines a
	// client can cause at will are rate-limited (internal/ratelog). Nil
	// means no logging.
	Logger *slog.Logger
}

// withDefaults fills zero fields with their defaults. Anything else is left
// as given, for Validate to judge: a negative size must be refused, not
// replaced.
func (o Options) withDefaults() Options {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.Loops == 0 {
		o.Loops = defaultLoops(runtime.NumCPU())
	}
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxPendingBytes == 0 {
		o.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if o.ReservedFiles == 0 {
		o.ReservedFiles = DefaultReservedFiles
	}
	if o.SlowConsumerCode == 0 {
		o.SlowConsumerCode = CloseTryAgainLater
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.CloseTimeout == 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	if o.TickInterval == 0 {
		o.TickInterval = DefaultTickInterval
	}
	if o.SweepPeriod == 0 {
		o.SweepPeriod = DefaultSweepPeriod
	}
	if o.SweepPeriod > 0 && o.SweepPeriod < o.TickInterval {
		o.SweepPeriod = o.TickInterval
	}
	if o.ReadBufferCap == 0 {
		o.ReadBufferCap = DefaultReadBufferCap
	}
	if o.MaxPausedBytes == 0 && o.MaxMessageSize > 0 && o.ReadBufferCap > 0 {
		o.MaxPausedBytes = max(DefaultMaxPausedBytes, o.minPausedBytes())
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// defaultLoops is Options.Loops's default on a machine with cpus CPUs: one
// loop each, up to what Validate allows.
func defaultLoops(cpus int) int { return min(cpus, maxLoops) }

// minPausedBytes is the input a paused connection may hold on any gnet: a
// frame in progress of the largest size, and the read that brought the
// message that paused it.
func (o Options) minPausedBytes() int { return o.MaxMessageSize + o.ReadBufferCap + maxHeaderSize }

// Validate reports settings the engine cannot run with. Serve calls it on
// the options as given to New, defaults filled in; zero fields are fine.
func (o Options) Validate() error {
	if o.Loops < 0 || o.Loops > maxLoops {
		return fmt.Errorf("%w: Loops %d: 1 to %d", ErrInvalidOptions, o.Loops, maxLoops)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"MaxConnections", o.MaxConnections}, {"MaxConnectionsPerIP", o.MaxConnectionsPerIP},
		{"MaxMessageSize", o.MaxMessageSize},
		{"MaxHeaderBytes", o.MaxHeaderBytes}, {"MaxPendingBytes", o.MaxPendingBytes},
		{"MaxPausedBytes", o.MaxPausedBytes}, {"ReservedFiles", o.ReservedFiles},
		{"ReadBufferCap", o.ReadBufferCap},
	} {
		if f.v < 0 {
			return fmt.Errorf("%w: %s %d is negative", ErrInvalidOptions, f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"HandshakeTimeout", o.HandshakeTimeout}, {"CloseTimeout", o.CloseTimeout},
		{"TickInterval", o.TickInterval}, {"SweepPeriod", o.SweepPeriod},
	} {
		if f.v < 0 {
			return fmt.Errorf("%w: %s %v is negative", ErrInvalidOptions, f.name, f.v)
		}
	}
	if o.ReusePort {
		if _, _, err := net.SplitHostPort(o.Addr); err != nil {
			return fmt.Errorf("%w: ReusePort needs host:port, not %q", ErrInvalidOptions, o.Addr)
		}
	}
	if o.MaxPendingBytes > maxPendingBytes {
		return fmt.Errorf("%w: MaxPendingBytes %d over %d", ErrInvalidOptions, o.MaxPendingBytes, maxPendingBytes)
	}
	if o.MaxHeaderBytes > 0 && o.MaxHeaderBytes < 256 {
		return fmt.Errorf("%w: MaxHeaderBytes %d under 256", ErrInvalidOptions, o.MaxHeaderBytes)
	}
	if o.MaxPausedBytes > 0 && o.MaxMessageSize > 0 && o.MaxPausedBytes < o.minPausedBytes() {
		return fmt.Errorf("%w: MaxPausedBytes %d under MaxMessageSize + ReadBufferCap + 14 (%d)",
			ErrInvalidOptions, o.MaxPausedBytes, o.minPausedBytes())
	}
	if o.SlowConsumerCode != 0 && !validCloseCode(o.SlowConsumerCode) {
		return fmt.Errorf("%w: SlowConsumerCode %d is not a code a server may send", ErrInvalidOptions, o.SlowConsumerCode)
	}
	return nil
}

// maxPendingBytes bounds Options.MaxPendingBytes: a connection keeps its
// queued and unsent byte counts in an int32 each (half its range, so a count
// plus an admitted frame never overflows).
const maxPendingBytes = 1 << 30

// maxLoops bounds Options.Loops: the topic index keeps one bit per loop.
const maxLoops = 64
