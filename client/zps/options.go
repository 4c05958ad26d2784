package zps

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"time"
)

// Defaults of the Options fields, each named after its field. Where the
// document's client has the option, the default is its.
const (
	// DefaultReconnectDelay is the base of the reconnect backoff (the
	// document's reconnectDelayMs).
	DefaultReconnectDelay = time.Second
	// DefaultMaxReconnectDelay caps the backoff.
	DefaultMaxReconnectDelay = 30 * time.Second
	// DefaultMaxBufferedEventsPerRoom is how many out-of-order events a
	// subscription holds while it waits for a gap's replay.
	DefaultMaxBufferedEventsPerRoom = 1000
	// DefaultReplayThrottle is the least time between two replay requests
	// for one room.
	DefaultReplayThrottle = 500 * time.Millisecond
	// DefaultMaxQueuedMessages is how many publishes may wait for the
	// connection to open.
	DefaultMaxQueuedMessages = 1000
	// DefaultReplayLimit is the page a gap's replay asks for.
	DefaultReplayLimit = 100
	// DefaultMaxPendingEvents is how many received events may wait for the
	// handlers before the client stops reading the connection (TCP then
	// slows the server down, which closes a connection that falls too far
	// behind; the client resumes from its last sequence).
	DefaultMaxPendingEvents = 10000
	// DefaultDialTimeout bounds a connection attempt, the WebSocket
	// handshake and init included.
	DefaultDialTimeout = 10 * time.Second
	// DefaultWriteTimeout bounds one write to the socket.
	DefaultWriteTimeout = 10 * time.Second
)

// Options configures a Client. The zero value works but for
// SubscriberID, which without one is random (cursors then belong to no
// one who comes back).
type Options struct {
	// SubscriberID names this subscriber (a device, a worker): the server
	// keeps its acknowledged sequence per room under it.
	SubscriberID string
	// Token is sent with init. TokenFunc, if set, is called before each
	// connection instead (a token that expires).
	Token     string
	TokenFunc func(ctx context.Context) (string, error)

	// NoReconnect turns reconnection off: a lost connection leaves the
	// client closed (Done).
	NoReconnect bool
	// ReconnectDelay is the base of the backoff: before attempt n the
	// client waits a random time in [b/2, b], b = min(ReconnectDelay·2^(n-1),
	// MaxReconnectDelay).
	ReconnectDelay    time.Duration
	MaxReconnectDelay time.Duration

	// MaxBufferedEventsPerRoom, ReplayThrottle, MaxQueuedMessages,
	// ReplayLimit, MaxPendingEvents: see their defaults.
	MaxBufferedEventsPerRoom int
	ReplayThrottle           time.Duration
	MaxQueuedMessages        int
	ReplayLimit              int
	MaxPendingEvents         int

	// NoAck turns acknowledgements off: the client then never moves the
	// server's cursors.
	NoAck bool

	// OnError receives what goes wrong that no call returns: the server's
	// refusal of a subscription, a handler's error, a lost connection.
	OnError func(error)
	// OnReconnect is called each time a connection after the first is
	// ready and every subscription has been sent again.
	OnReconnect func()

	DialTimeout  time.Duration
	WriteTimeout time.Duration
	// Header is sent with the WebSocket handshake.
	Header http.Header
	// Dialer, if set, opens the TCP connection (a proxy, a test's fault
	// injection).
	Dialer    func(ctx context.Context, network, addr string) (net.Conn, error)
	TLSConfig *tls.Config
}

func (o Options) withDefaults() Options {
	if o.SubscriberID == "" {
		o.SubscriberID = "go-" + rand.Text()[:12]
	}
	if o.ReconnectDelay <= 0 {
		o.ReconnectDelay = DefaultReconnectDelay
	}
	if o.MaxReconnectDelay <= 0 {
		o.MaxReconnectDelay = DefaultMaxReconnectDelay
	}
	if o.MaxBufferedEventsPerRoom <= 0 {
		o.MaxBufferedEventsPerRoom = DefaultMaxBufferedEventsPerRoom
	}
	if o.ReplayThrottle <= 0 {
		o.ReplayThrottle = DefaultReplayThrottle
	}
	if o.MaxQueuedMessages <= 0 {
		o.MaxQueuedMessages = DefaultMaxQueuedMessages
	}
	if o.ReplayLimit <= 0 {
		o.ReplayLimit = DefaultReplayLimit
	}
	if o.MaxPendingEvents <= 0 {
		o.MaxPendingEvents = DefaultMaxPendingEvents
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	return o
}

func (o *Options) backoff(n int) time.Duration {
	b := o.ReconnectDelay
	for i := 1; i < n && b < o.MaxReconnectDelay; i++ {
		b *= 2
	}
	b = min(b, o.MaxReconnectDelay)
	half := b / 2
	return half + mrand.N(b-half+1)
}
