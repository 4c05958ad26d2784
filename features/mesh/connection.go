package mesh

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"strconv"
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
	id string
	// seq is the open order on this node. The engine's Conn.ID is in
	// accept order, which handshakes finishing out of order can differ
	// from, so it cannot stand in.
	seq uint64
	c   *engine.Conn // its Handler is this node's Server (see server)

	// active is made by whichever goroutine first needs it (the loop at the
	// first command, a subscription or presence from a command or a Server
	// method, cleanup at close) and never replaced, so everyone that
	// touches it shares one mu and one topicsDone.
	active atomic.Pointer[connActive]

	life   atomic.Int32 // lifeRegistering, lifeRegistered or lifeClosedEarly
	closed atomic.Bool

	// liveness, loop only (packed beside the atomics: an idle connection's
	// size class is what it costs)
	alive       bool
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
	running      bool  // a runner goroutine is draining queue
	paused       bool  // reading is paused until the queue drains to half
	pending      int32 // commands queued or running, concurrent ones too
	peak         int32 // highest pending seen (tests check the bound with it)
	pendingBytes int   // their payloads' bytes

	mu         sync.Mutex               // guards topics, topicsDone and present
	topicsDone bool                     // cleanup has taken topics; no more may be added
	topics     map[string]struct{}      // node topics this connection holds a reference on
	present    map[string]time.Duration // tracked rooms it is present in, with their TTL
}

// activate returns c's connActive, making it if c has none. The CAS makes
// racing callers agree on one: a second one would hide topics from cleanup.
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

// Registration states (Connection.life): the connection is registered with
// the coordinator off the loop; if it closes first, whoever finishes
// registering does the cleanup, so cleanup never runs before registration.
const (
	lifeRegistering int32 = iota
	lifeRegistered
	lifeClosedEarly
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

// holdTopic records that this connection holds a reference on a node
// topic; it reports false if it already did, or if the connection is gone.
func (c *Connection) holdTopic(t string) bool {
	a := c.activate()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.topicsDone {
		return false
	}
	if a.topics == nil {
		a.topics = make(map[string]struct{})
	}
	if _, ok := a.topics[t]; ok {
		return false
	}
	a.topics[t] = struct{}{}
	return true
}

func (c *Connection) dropTopic(t string) bool {
	a := c.active.Load()
	if a == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.topics[t]; !ok {
		return false
	}
	delete(a.topics, t)
	return true
}

// heldTopics takes the topics for cleanup and closes the set. It makes
// connActive if there is none yet: topicsDone has to be where a holdTopic
// racing with cleanup will look.
func (c *Connection) heldTopics() []string {
	a := c.activate()
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.topics))
	for t := range a.topics {
		out = append(out, t)
	}
	a.topics = nil
	a.topicsDone = true
	return out
}

// idGen makes Mesh-style connection ids: "conn-" + base36 milliseconds +
// a hex counter + random hex, unique per process and opaque to clients.
type idGen struct {
	counter atomic.Uint64
	rnd     string
}

func newIDGen() *idGen {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &idGen{rnd: hex.EncodeToString(b[:])}
}

func (g *idGen) next() string {
	n := g.counter.Add(1)
	var b [48]byte // one allocation per id: the string
	buf := append(b[:0], "conn-"...)
	buf = strconv.AppendInt(buf, time.Now().UnixMilli(), 36)
	mark := len(buf)
	buf = strconv.AppendUint(buf, n&0xffffff, 16)
	if pad := 6 - (len(buf) - mark); pad > 0 { // zero-pad the counter to 6 digits
		buf = append(buf, "000000"[:pad]...)
		copy(buf[mark+pad:], buf[mark:len(buf)-pad])
		copy(buf[mark:mark+pad], "000000")
	}
	buf = append(buf, g.rnd...)
	buf = strconv.AppendUint(buf, n%32, 10)
	return string(buf)
}
