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
type Connection struct {
	id  string
	seq uint64 // open order on this node
	c   *engine.Conn
	s   *Server

	inflight atomic.Int32
	life     atomic.Int32 // lifeRegistering, lifeRegistered or lifeClosedEarly
	closed   atomic.Bool

	// liveness, loop only (packed beside the atomics: an idle connection's
	// size class is what it costs)
	alive       bool
	topicsDone  bool // cleanup has taken topics; no more may be added (mu)
	missedPongs int32
	latencyAt   int64 // when the last latency:request went out (unix ns)
	latencyMs   int64
	nextPing    int64
	nextLatency int64

	// ctx ends when the connection closes. It is made on the loop when the
	// first command arrives (most of an idle connection's life has none)
	// and cancelled on the loop in OnClose, so it needs no lock.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex               // guards topics, topicsDone and present
	topics  map[string]struct{}      // node topics this connection holds a reference on
	present map[string]time.Duration // tracked rooms it is present in, with their TTL
}

// setPresent records (ttl > 0) or forgets (ttl == 0) presence in room, for
// the TTL refreshes pongs trigger.
func (c *Connection) setPresent(room string, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ttl == 0 {
		delete(c.present, room)
		return
	}
	if c.present == nil {
		c.present = make(map[string]time.Duration)
	}
	c.present[room] = ttl
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
	return time.Duration(atomic.LoadInt64(&c.latencyMs)) * time.Millisecond
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
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.topicsDone {
		return false
	}
	if c.topics == nil {
		c.topics = make(map[string]struct{})
	}
	if _, ok := c.topics[t]; ok {
		return false
	}
	c.topics[t] = struct{}{}
	return true
}

func (c *Connection) dropTopic(t string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.topics[t]; !ok {
		return false
	}
	delete(c.topics, t)
	return true
}

func (c *Connection) heldTopics() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.topics))
	for t := range c.topics {
		out = append(out, t)
	}
	c.topics = nil
	c.topicsDone = true
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
