package mesh

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfast/meshfast/engine"
)

// Connection is one Mesh client connection. Exported methods are safe from
// any goroutine.
//
// It is allocated per connection and most connections sit idle, so every
// one of them pays its size class: keep it within 80 bytes
// (TestIdleConnectionSize). What only a connection that has done something
// needs lives in connActive.
type Connection struct {
	// id is the Mesh id: it carries the engine connection's id, so finding
	// a local connection by it is a parse and an engine lookup (connid.go).
	id string
	c  *engine.Conn // its Handler is this node's Server (see server)

	// active is made by whichever goroutine first needs it (the loop at the
	// first command, a subscription or presence from a command or a Server
	// method, cleanup at close) and never replaced, so everyone that
	// touches it shares one mu and one subsDone.
	active atomic.Pointer[connActive]

	// auth is set for an authenticated connection (auth.go): in OnOpen,
	// or by Identity.Verify's goroutine before any command runs.
	auth atomic.Pointer[connAuth]

	life   atomic.Int32 // lifeRegistering, lifeRegistered, lifeClosedEarly or lifeRefused
	closed atomic.Bool

	// liveness, loop only (packed beside the atomics: an idle connection's
	// size class is what it costs)
	alive       bool
	wantsID     bool         // asked for mesh/assign-id (Options.AssignID); set in OnOpen
	missedPongs uint16       // saturates: past 65,534 allowed, never closed for them
	latencyMs   atomic.Int32 // last measured round trip (ms), read by Latency from any goroutine
	latencyAt   int64        // when the last latency:request went out (unix ns)
	nextPing    int64
	nextLatency int64
}

// server is the Server c belongs to: the engine connection's handler. It
// is not kept in Connection, whose size class every idle connection pays.
func (c *Connection) server() *Server { return (*Server)(c.c.Handler().(*handler)) }

// connActive is the part of a Connection that an idle one never needs: it
// holds nothing until the connection runs a command, subscribes or becomes
// present somewhere.
type connActive struct {
	// ctx ends when the connection closes. It is set once, on the loop,
	// when the first command arrives, before that command is queued, and
	// only cancelled after (on the loop, in OnClose), so it needs no lock
	// even though connActive may have been made elsewhere.
	ctx    context.Context
	cancel context.CancelFunc

	// The command queue (queue.go). qmu is taken alone, never across a
	// handler or a coordinator call.
	qmu          sync.Mutex
	queue        []queued // waiting commands, the next at qhead
	qhead        int
	running      bool  // a runner goroutine is draining queue, or held is set
	held         bool  // no runner may start until release (auth.go)
	paused       bool  // reading is paused until the queue drains to half
	pending      int32 // commands queued or running, concurrent ones too
	peak         int32 // highest pending seen (tests check the bound with it)
	pendingBytes int   // their payloads' bytes

	// The command rate's token bucket (limits.go). Loop only: dispatch
	// reads and writes them, nothing else does.
	rateTokens float64
	rateAt     int64 // unix ns of the last refill, 0: never

	// mu guards subs, subsDone and present. It is held only around map
	// work, never across a wait; the loop takes it too (subscriptions.sync,
	// presence.onPong).
	mu       sync.Mutex
	subsDone bool                     // cleanup has taken subs; no more may be added
	subs     map[subKey]*route        // what it receives, and through which route (subscriptions.go)
	present  map[string]time.Duration // tracked rooms it is present in, with their TTL
	// meta is the connection's metadata as this node last set it, nil if
	// it set none: what recovery writes back (recover.go).
	meta []byte
}

// activate returns c's connActive, making it if c has none. The CAS makes
// racing callers agree on one: a second one would hide subscriptions from
// cleanup.
func (c *Connection) activate() *connActive {
	if a := c.active.Load(); a != nil {
		return a
	}
	a := new(connActive)
	if c.active.CompareAndSwap(nil, a) {
		return a
	}
	return c.active.Load()
}

// setPresent records (ttl > 0) or forgets (ttl == 0) presence in room, for
// the TTL refreshes pongs trigger.
func (c *Connection) setPresent(room string, ttl time.Duration) {
	var a *connActive
	if ttl == 0 {
		if a = c.active.Load(); a == nil {
			return // never present anywhere
		}
	} else {
		a = c.activate()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if ttl == 0 {
		delete(a.present, room)
		return
	}
	if a.present == nil {
		a.present = make(map[string]time.Duration)
	}
	a.present[room] = ttl
}

// keepMetadata remembers meta (not copied: the caller's and never
// modified) as what this node last set for c.
func (c *Connection) keepMetadata(meta []byte) {
	a := c.activate()
	a.mu.Lock()
	a.meta = meta
	a.mu.Unlock()
}

// Registration states (Connection.life): the connection is registered with
// the coordinator off the loop; if it closes first, whoever finishes
// registering does the cleanup, so cleanup never runs before registration.
const (
	lifeRegistering int32 = iota
	lifeRegistered
	lifeClosedEarly
	lifeRefused // Identity.Verify refused it: never registered, nothing to clean up
)

// registered reports whether the coordinator knows the connection.
func (c *Connection) registered() bool { return c.life.Load() == lifeRegistered }

// ID is the connection's Mesh id ("conn-…").
func (c *Connection) ID() string { return c.id }

// RemoteAddr is the client's address.
func (c *Connection) RemoteAddr() net.Addr { return c.c.RemoteAddr() }

// IsDead reports whether the connection has closed (Mesh's isDead).
func (c *Connection) IsDead() bool { return c.closed.Load() }

// Latency is the last measured round trip of a latency probe.
func (c *Connection) Latency() time.Duration {
	return time.Duration(c.latencyMs.Load()) * time.Millisecond
}

// Send pushes {"command": command, "payload": payload} to this connection
// only. payload is encoded as JSON (json.RawMessage is sent as is).
func (c *Connection) Send(command string, payload any) error {
	f, err := encodePush(command, payload)
	if err != nil {
		return err
	}
	c.c.Send(f)
	f.Release()
	return nil
}

// Close closes the connection with a normal close.
func (c *Connection) Close() { c.c.CloseAsync(engine.CloseNormal, "") }

// Engine returns the engine connection underneath.
func (c *Connection) Engine() *engine.Conn { return c.c }
