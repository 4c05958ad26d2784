package engine

import (
	"fmt"
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
)

// Options configures an Engine. The zero value works: every zero field takes
// the default named beside it.
type Options struct {
	// Addr is the TCP address to listen on, "host:port". Zero means DefaultAddr.
	// Use "127.0.0.1:0" for a free port; Engine.Addr reports the bound one.
	Addr string

	// Loops is the number of event loops. Zero means one per CPU.
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

	// MaxConnections refuses upgrades past this many open WebSocket and
	// stream connections with 503. Zero means no limit.
	MaxConnections int

	// MaxMessageSize is the largest message (after reassembly of fragments)
	// a client may send; larger ones close the connection with 1009.
	// Zero means DefaultMaxMessageSize.
	MaxMessageSize int

	// MaxHeaderBytes caps the HTTP request head; past it the request is
	// answered 431 and closed. Zero means DefaultMaxHeaderBytes.
	MaxHeaderBytes int

	// MaxPendingBytes caps the bytes queued for one connection that the
	// kernel has not accepted yet. Past it the connection is closed with
	// ReasonSlowConsumer and SlowConsumerCode. Zero means DefaultMaxPendingBytes.
	MaxPendingBytes int

	// SlowConsumerCode is the close code sent to a slow consumer.
	// Zero means CloseTryAgainLater (1013).
	SlowConsumerCode CloseCode

	// HandshakeTimeout closes a connection whose HTTP request head is not
	// complete in time. Zero means DefaultHandshakeTimeout.
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

	// Logf receives operational log lines. Nil means no logging.
	Logf func(format string, args ...any)
}

func (o Options) withDefaults() Options {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.Loops <= 0 {
		o.Loops = runtime.NumCPU()
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxPendingBytes <= 0 {
		o.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if o.SlowConsumerCode == 0 {
		o.SlowConsumerCode = CloseTryAgainLater
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	if o.TickInterval <= 0 {
		o.TickInterval = DefaultTickInterval
	}
	if o.SweepPeriod <= 0 {
		o.SweepPeriod = DefaultSweepPeriod
	}
	if o.SweepPeriod < o.TickInterval {
		o.SweepPeriod = o.TickInterval
	}
	if o.ReadBufferCap <= 0 {
		o.ReadBufferCap = DefaultReadBufferCap
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

// Validate reports conflicting settings. It is called by New's caller or by
// Serve; zero fields are fine.
func (o Options) Validate() error {
	if o.Loops > maxLoops {
		return fmt.Errorf("%w: Loops %d over %d", ErrInvalidOptions, o.Loops, maxLoops)
	}
	if o.MaxMessageSize < 0 || o.MaxHeaderBytes < 0 || o.MaxPendingBytes < 0 || o.MaxConnections < 0 {
		return fmt.Errorf("%w: negative size limit", ErrInvalidOptions)
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
	return nil
}

// maxPendingBytes bounds Options.MaxPendingBytes: a connection keeps its
// queued and unsent byte counts in an int32 each (half its range, so a count
// plus an admitted frame never overflows).
const maxPendingBytes = 1 << 30

// maxLoops bounds Options.Loops: the topic index keeps one bit per loop.
const maxLoops = 64
