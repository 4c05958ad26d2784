package client

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Status is the state of a Client's connection.
type Status int32

// The four states of Mesh's client (common/status).
const (
	// Offline: no connection and none being made. The state of a new
	// client, of a closed one, after a failed Connect, after a loss with
	// reconnection off, and after reconnecting gave up.
	Offline Status = iota
	// Connecting: Connect is dialing (and, with AwaitConnectionID, waiting
	// for the connection id).
	Connecting
	// Online: connected; commands are sent at once.
	Online
	// Reconnecting: the connection was lost and the client is making a new
	// one and restoring its rooms and subscriptions on it. Commands wait.
	Reconnecting
)

// String returns the status in upper case, as Mesh's enum names it.
func (s Status) String() string {
	switch s {
	case Offline:
		return "OFFLINE"
	case Connecting:
		return "CONNECTING"
	case Online:
		return "ONLINE"
	case Reconnecting:
		return "RECONNECTING"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// Client is a connection to a Mesh (or meshfast) server that survives
// reconnects. Create it with New, start it with Connect, end it with Close.
// All methods are safe to call from any goroutine, callbacks included.
type Client struct {
	url  string
	opts Options

	nextID    atomic.Int64 // last request id used; ids are never reused
	latencyNs atomic.Int64 // last latency push

	stop       context.Context // canceled by Close; bounds background work
	stopCancel context.CancelFunc
	wg         sync.WaitGroup // reader, writer, reconnect and resync goroutines
	done       chan struct{}  // closed when Close has finished and the last event ran

	mu            sync.Mutex
	status        Status
	stateCh       chan struct{}        // closed and replaced when status, conn or connID change
	conn          atomic.Pointer[conn] // current connection; stored only with mu held
	connID        string
	closed        bool
	reconnecting  bool               // a reconnect loop is running
	offlineErr    error              // what a command gets while Offline
	connectErr    error              // outcome of the last failed Connect, for its waiters
	cancelConnect context.CancelFunc // aborts a Connect in progress

	// What the client has joined and subscribed to, restored after a
	// reconnect. Guarded by mu; the subscription objects' own mutable
	// fields belong to the event goroutine (see records.go).
	rooms    map[string]struct{}
	channels map[string]*channelSub
	records  map[string]*recordSub
	presence map[string]*presenceSub
	states   map[string]presenceState

	events dispatcher
	h      handlers
}

// New returns a client for the server at url (ws:// or wss://). It does
// not connect and starts no goroutine; call Connect. The zero Options work.
func New(url string, o Options) *Client {
	c := &Client{
		url:        url,
		opts:       o.withDefaults(),
		done:       make(chan struct{}),
		stateCh:    make(chan struct{}),
		offlineErr: ErrNotConnected,
		rooms:      make(map[string]struct{}),
		channels:   make(map[string]*channelSub),
		records:    make(map[string]*recordSub),
		presence:   make(map[string]*presenceSub),
		states:     make(map[string]presenceState),
	}
	c.stop, c.stopCancel = context.WithCancel(context.Background())
	c.events.cond.L = &c.events.mu
	return c
}

// Status returns the connection state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// ConnectionID returns the id the server gave the current connection in
// its mesh/assign-id push, or "" if there is no connection or the server
// has not sent one (Mesh 48b41c9 never does). Each connection, after a
// reconnect too, has a new id.
func (c *Client) ConnectionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connID
}

// Latency returns the last round-trip time the server reported in a
// latency push, or 0 before the first one.
func (c *Client) Latency() time.Duration {
	return time.Duration(c.latencyNs.Load())
}

// Done returns a channel that is closed once Close has finished and every
// event queued before it (ending with OnClose and OnDisconnect) has been
// delivered. Close itself waits for that too, unless it is called from a
// callback.
func (c *Client) Done() <-chan struct{} { return c.done }

// notifyLocked wakes everyone waiting for a change of state. mu is held.
func (c *Client) notifyLocked() {
	close(c.stateCh)
	c.stateCh = make(chan struct{})
}

func (c *Client) setStatusLocked(s Status) {
	c.status = s
	c.notifyLocked()
}

// Connect opens the connection. It returns nil at once if the client is
// Online, and waits for the outcome if it is already Connecting or
// Reconnecting. From Offline it dials once (no retry: a failed first
// connection is the caller's to handle, as in Mesh) and returns a
// *DialError if that fails. On success the status is Online and the
// OnConnect handlers are queued. With Options.AwaitConnectionID it also
// waits for the server's mesh/assign-id push. ctx bounds the whole call;
// Options.DialTimeout bounds the dial and handshake.
//
// If the client had joined rooms or subscribed before it went Offline
// (reconnection off, or given up), Connect restores them as a reconnect
// does, before it returns. Connect after Close returns ErrClosed.
func (c *Client) Connect(ctx context.Context) error {
	waited := false
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return ErrClosed
		}
		switch c.status {
		case Online:
			c.mu.Unlock()
			return nil
		case Connecting, Reconnecting:
			ch := c.stateCh
			c.mu.Unlock()
			select {
			case <-ch:
				waited = true
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if waited {
			// The attempt we waited for failed.
			err := c.connectErr
			if err == nil {
				err = c.offlineErr
			}
			c.mu.Unlock()
			return err
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		c.cancelConnect = cancel
		c.connectErr = nil
		c.setStatusLocked(Connecting)
		c.mu.Unlock()
		return c.connect(ctx)
	}
}

// connect is Connect from Connecting on.
func (c *Client) connect(ctx context.Context) error {
	cn, err := c.dial(ctx)
	if err == nil {
		if !c.install(cn) {
			return ErrClosed
		}
		err = c.establish(ctx, cn, false)
		if err != nil {
			cn.close(err, false)
		}
	}
	if err == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancelConnect = nil
	if c.closed {
		return ErrClosed
	}
	c.connectErr = err
	c.setStatusLocked(Offline)
	return err
}

// install makes cn the current connection and starts its goroutines. It
// reports false, closing cn, if the client was closed meanwhile.
func (c *Client) install(cn *conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		cn.nc.Close()
		return false
	}
	c.conn.Store(cn)
	c.connID = ""
	c.wg.Add(2)
	go cn.readLoop()
	go cn.writeLoop()
	c.notifyLocked()
	return true
}

// establish brings a freshly installed connection Online: it waits for the
// connection id if asked to, restores rooms and subscriptions, then
// announces the connection.
func (c *Client) establish(ctx context.Context, cn *conn, reconnect bool) error {
	if c.opts.AwaitConnectionID {
		if err := c.waitConnectionID(ctx, cn); err != nil {
			return err
		}
	}
	if err := c.restore(ctx, cn); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if c.conn.Load() != cn {
		return ErrConnectionLost
	}
	c.reconnecting = false
	c.cancelConnect = nil
	c.setStatusLocked(Online)
	c.emit(&c.h.connect)
	if reconnect {
		c.emit(&c.h.reconnect)
	}
	return nil
}

// waitConnectionID waits for the mesh/assign-id push on cn, for at most
// Options.DialTimeout.
func (c *Client) waitConnectionID(ctx context.Context, cn *conn) error {
	t := time.NewTimer(c.opts.DialTimeout)
	defer t.Stop()
	for {
		c.mu.Lock()
		if c.conn.Load() != cn {
			c.mu.Unlock()
			return ErrConnectionLost
		}
		if c.connID != "" {
			c.mu.Unlock()
			return nil
		}
		ch := c.stateCh
		c.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			return &DialError{URL: c.url, Err: errNoConnectionID}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// setConnectionID records the id of cn, if cn is still current.
func (c *Client) setConnectionID(cn *conn, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn.Load() == cn {
		c.connID = id
		c.notifyLocked()
	}
}

// Close ends the client for good. It first lets the events already queued
// be delivered, then stops reconnecting, fails waiting commands with
// ErrClosed, sends the server a close frame and closes the connection. If a connection was open the OnClose handlers are queued,
// then, if the client was Online or Reconnecting, the OnDisconnect
// handlers. Close waits for the client's goroutines to exit and for every
// queued event to be delivered, a callback running at the time included,
// except when it is called from a callback: it then returns without
// waiting for the events still queued, which are delivered after that
// callback returns; Done reports the end. (A callback must not wait for a
// Close running on another goroutine: that Close waits for the callback.) Close on a client that never connected, or a
// second Close, does nothing and returns nil.
func (c *Client) Close() error {
	// Deliver what is already queued while the state it was queued in
	// still holds, so that an OnConnect just before Close sees Online.
	c.events.drain()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	announced := c.status == Online
	disconnect := c.status == Online || c.status == Reconnecting
	cn := c.conn.Load()
	c.stopCancel()
	if c.cancelConnect != nil {
		c.cancelConnect()
	}
	c.offlineErr = ErrClosed
	c.setStatusLocked(Offline)
	c.mu.Unlock()

	if cn != nil {
		cn.sendClose()
		cn.close(ErrClosed, true)
	}
	c.wg.Wait()

	c.mu.Lock()
	if announced {
		c.emit(&c.h.close)
	}
	if disconnect {
		c.emit(&c.h.disconnect)
	}
	c.events.post(func() { close(c.done) })
	c.mu.Unlock()
	c.events.drain()
	return nil
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}
