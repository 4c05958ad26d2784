package client

import (
	"context"
	"crypto/tls"
	"math/rand/v2"
	"net"
	"net/http"
	"time"
)

// Defaults of the Options fields. Each names the field it is the default of;
// the zero value of a field means its default.
const (
	// DefaultPingTimeout is the default of Options.PingTimeout, Mesh's
	// pingTimeout. It should match the server's ping interval (30s in Mesh
	// and meshfast).
	DefaultPingTimeout = 30 * time.Second
	// DefaultMaxMissedPings is the default of Options.MaxMissedPings, Mesh's
	// maxMissedPings.
	DefaultMaxMissedPings = 1
	// DefaultReconnectDelay is the default of Options.ReconnectDelay, the
	// base of the reconnect backoff.
	DefaultReconnectDelay = 100 * time.Millisecond
	// DefaultMaxReconnectDelay is the default of Options.MaxReconnectDelay,
	// the cap of the reconnect backoff.
	DefaultMaxReconnectDelay = 5 * time.Second
	// DefaultCommandTimeout is the default of Options.CommandTimeout, Mesh's
	// command timeout.
	DefaultCommandTimeout = 30 * time.Second
	// DefaultDialTimeout is the default of Options.DialTimeout.
	DefaultDialTimeout = 10 * time.Second
	// DefaultWriteTimeout is the default of Options.WriteTimeout.
	DefaultWriteTimeout = 10 * time.Second
)

// Options configures a Client. The zero value works: every zero field takes
// the Default constant named after it.
type Options struct {
	// PingTimeout is the length of one window of the dead-server watchdog
	// (wire.md 5.3). The watchdog starts when a connection opens and ticks
	// every PingTimeout; a server ping resets the count of missed windows
	// but does not restart the ticker. When more than MaxMissedPings windows
	// in a row pass without a ping, the connection is considered dead: it is
	// closed and, unless NoReconnect is set, the client reconnects. Zero
	// means DefaultPingTimeout; a negative value turns the watchdog off.
	PingTimeout time.Duration

	// MaxMissedPings is how many consecutive ping windows may pass without a
	// server ping. Zero means DefaultMaxMissedPings (1: a ping must arrive
	// within roughly two PingTimeouts); a negative value means none may be
	// missed.
	MaxMissedPings int

	// NoReconnect turns automatic reconnection off (Mesh's shouldReconnect,
	// which defaults to true). A lost connection then leaves the client
	// Offline.
	NoReconnect bool

	// ReconnectDelay is the base of the exponential reconnect backoff:
	// before attempt n (1-based) the client waits a random duration in
	// [b/2, b] with b = min(ReconnectDelay·2^(n-1), MaxReconnectDelay).
	// Zero means DefaultReconnectDelay. (Mesh waits a constant 2s and
	// retries the first time at once; the jitter keeps clients of a
	// restarted server from reconnecting in lockstep.)
	ReconnectDelay time.Duration

	// MaxReconnectDelay caps the backoff. Zero means DefaultMaxReconnectDelay.
	MaxReconnectDelay time.Duration

	// MaxReconnectAttempts is the number of attempts, the first included,
	// after which the client gives up, goes Offline and calls the
	// OnReconnectFailed handlers. Zero means no limit (Mesh's Infinity).
	MaxReconnectAttempts int

	// CommandTimeout bounds each command when its context has no earlier
	// deadline, including the time spent waiting for a connection while
	// reconnecting. Zero means DefaultCommandTimeout.
	CommandTimeout time.Duration

	// DialTimeout bounds each connection attempt: TCP (and TLS) dial plus
	// the WebSocket handshake. Zero means DefaultDialTimeout.
	DialTimeout time.Duration

	// WriteTimeout bounds each socket write; a write that takes longer
	// closes the connection. Zero means DefaultWriteTimeout.
	WriteTimeout time.Duration

	// Header holds extra HTTP headers sent with the WebSocket handshake
	// (cookies, authorization).
	Header http.Header

	// TLSConfig is used for wss:// URLs; nil means the default configuration.
	TLSConfig *tls.Config

	// Dialer, if set, opens the TCP connection instead of the default
	// net.Dialer (network is always "tcp"). TCPKeepAlive does not apply to
	// it.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

	// TCPKeepAlive is the TCP keepalive period of the default dialer. Zero
	// (the default) turns TCP keepalive off: liveness is Mesh's application
	// ping, and keepalive probes only add traffic.
	TCPKeepAlive time.Duration

	// AwaitConnectionID makes Connect, and every reconnect, wait for the
	// server's mesh/assign-id push before the client counts as Online, so
	// that ConnectionID is known when Connect returns. The client asks for
	// it in its upgrade request (protocol.AssignIDParam) and meshfast sends
	// it right after the handshake; Mesh 48b41c9 never does, so leave this
	// off against a Mesh server or Connect waits until its context ends.
	AwaitConnectionID bool

	// Logf, if set, receives diagnostics: undecodable frames, failed
	// reconnect attempts, subscriptions the server refused to restore.
	Logf func(format string, args ...any)
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.PingTimeout == 0 {
		o.PingTimeout = DefaultPingTimeout
	}
	if o.MaxMissedPings == 0 {
		o.MaxMissedPings = DefaultMaxMissedPings
	} else if o.MaxMissedPings < 0 {
		o.MaxMissedPings = 0
	}
	if o.ReconnectDelay <= 0 {
		o.ReconnectDelay = DefaultReconnectDelay
	}
	if o.MaxReconnectDelay <= 0 {
		o.MaxReconnectDelay = DefaultMaxReconnectDelay
	}
	if o.MaxReconnectDelay < o.ReconnectDelay {
		o.MaxReconnectDelay = o.ReconnectDelay
	}
	if o.MaxReconnectAttempts < 0 {
		o.MaxReconnectAttempts = 0
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = DefaultCommandTimeout
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Dialer == nil {
		ka := o.TCPKeepAlive
		if ka <= 0 {
			ka = -1 // off
		}
		d := &net.Dialer{KeepAlive: ka}
		o.Dialer = d.DialContext
	}
	return o
}

// backoff returns the wait before reconnect attempt n (1-based): a random
// duration in [b/2, b], b = min(base·2^(n-1), max).
func (o *Options) backoff(n int) time.Duration {
	b := o.ReconnectDelay
	for i := 1; i < n && b < o.MaxReconnectDelay; i++ {
		b *= 2
	}
	b = min(b, o.MaxReconnectDelay)
	half := b / 2
	return half + rand.N(b-half+1)
}

func (c *Client) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf("client: "+format, args...)
	}
}
