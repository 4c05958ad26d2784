package mesh

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/engine"
)

// subscriptions owns the fact "connection c receives name through route r"
// on all three layers it lives on, and is the only code that changes them:
//
//   - the connection's set (connActive.subs): which route, if any, c
//     receives each (source, name) through; this is the truth the other
//     two layers follow;
//   - the node's coordinator subscription to the source's topic for name
//     (for a durable channel, its listener on the stream, durable.go),
//     shared by every local connection that holds it and counted by
//     reference (nodeSub);
//   - the engine topic of the route on c's loop.
//
// Every (source, name) in a connection's set holds exactly one node
// reference: take retains one before the entry appears, and whoever
// removes the entry (release, releaseAll) drops one after, so a cleanup
// racing a take can neither miss a reference nor drop one twice. The
// engine side is made to follow the set on the loop (sync), so whatever
// order concurrent takes and releases reach the loop in, the loop ends as
// the set says.
type subscriptions struct {
	s    *Server
	mu   sync.Mutex // guards node; never held across a coordinator call or a wait
	node map[subKey]*nodeSub
}

// subKey names one subscribable thing: a source and a name in it.
type subKey struct {
	src  *source
	name string
}

// nodeSub is the node's coordinator subscription to one subKey, or, for
// a source with attach, what attach returned.
type nodeSub struct {
	refs  int           // subs.mu
	ready chan struct{} // closed once sub, room and err are set
	sub   coord.Subscription
	room  *durableRoom
	err   error
}

// unsubscribe ends what retain started for ns. Any goroutine but a loop's.
func (x *subscriptions) unsubscribe(ctx context.Context, ns *nodeSub) error {
	if ns.room != nil {
		ns.room.close()
		return nil
	}
	return x.s.co.Unsubscribe(ctx, ns.sub)
}

// errSubscriptionChanged: a concurrent take or release of the same thing
// on the same connection won the race before this take reached the loop.
var errSubscriptionChanged = errors.New("mesh: subscription changed concurrently")

func (x *subscriptions) init(s *Server) {
	x.s = s
	x.node = make(map[subKey]*nodeSub)
}

// take makes c receive name through r, switching it from another route of
// the same source if c had one, and returns once c's loop has it: a
// publish made after take returns reaches c. Taking what c already has is
// a no-op that still waits for the loop. Any goroutine but a loop.
func (x *subscriptions) take(ctx context.Context, c *Connection, r *route, name string) error {
	return x.takeWith(ctx, c, r, name, nil)
}

// takeWith is take, calling prepare (if not nil) once the node holds its
// reference to name and before c's loop changes c's engine topics: what
// prepare sets up is in place before c receives anything through r.
func (x *subscriptions) takeWith(ctx context.Context, c *Connection, r *route, name string, prepare func()) error {
	key := subKey{r.src, name}
	a := c.activate()
	a.mu.Lock()
	cur, done := a.subs[key], a.subsDone
	a.mu.Unlock()
	if done {
		return errConnectionGone
	}
	if cur != r {
		if err := x.retain(ctx, key); err != nil {
			return err
		}
		if prepare != nil {
			prepare()
		}
		a.mu.Lock()
		if a.subsDone { // cleanup took the set meanwhile
			a.mu.Unlock()
			x.release(context.WithoutCancel(ctx), key)
			return errConnectionGone
		}
		_, had := a.subs[key]
		if a.subs == nil {
			a.subs = make(map[subKey]*route)
		}
		a.subs[key] = r
		a.mu.Unlock()
		if had {
			x.release(ctx, key) // the entry already held a reference
		}
	} else if prepare != nil {
		prepare()
	}
	var now *route
	if !c.c.DoWait(func(ec *engine.Conn) { now = x.sync(ec, c, key) }) {
		return errConnectionGone // cleanup releases what the set holds
	}
	if now != r {
		return errSubscriptionChanged
	}
	return nil
}

// release drops a node reference taken by retain, unsubscribing the node
// from the coordinator with the last one.
func (x *subscriptions) release(ctx context.Context, key subKey) {
	x.mu.Lock()
	ns := x.node[key]
	if ns == nil {
		x.mu.Unlock()
		return
	}
	ns.refs--
	if ns.refs > 0 {
		x.mu.Unlock()
		return
	}
	delete(x.node, key)
	x.mu.Unlock()
	<-ns.ready
	if ns.err == nil {
		if err := x.unsubscribe(ctx, ns); err != nil {
			x.s.log.Warn("mesh: unsubscribing the node failed", "kind", key.src.kind, "name", key.name, "err", err)
		}
	}
}

// drop ends c's subscription to name in src, through whichever route; it
// reports whether c had one. The engine stops delivering once c's loop
// runs the change, which is before anything posted to c after drop returns
// (a reply) is written. Any goroutine.
func (x *subscriptions) drop(ctx context.Context, c *Connection, src *source, name string) bool {
	a := c.active.Load()
	if a == nil {
		return false
	}
	key := subKey{src, name}
	a.mu.Lock()
	_, had := a.subs[key]
	delete(a.subs, key)
	a.mu.Unlock()
	if !had {
		return false
	}
	c.c.Do(func(ec *engine.Conn) { x.sync(ec, c, key) })
	x.release(ctx, key)
	return true
}

// dropAll is a closed connection's cleanup: it takes c's set, so that no
// take adds to it any more, and drops the node reference of each entry.
// The engine already forgot the closed connection's topics.
func (x *subscriptions) dropAll(ctx context.Context, c *Connection) {
	a := c.activate() // the set must be closed where a racing take will look
	a.mu.Lock()
	subs := a.subs
	a.subs, a.subsDone = nil, true
	a.mu.Unlock()
	for key := range subs {
		x.release(ctx, key)
	}
}

// sync makes c's engine topics for key what c's set says: subscribed to
// the route the set holds, to none of the source's others. It returns that
// route (nil: none). Loop only.
func (x *subscriptions) sync(ec *engine.Conn, c *Connection, key subKey) *route {
	a := c.active.Load()
	a.mu.Lock()
	cur := a.subs[key]
	a.mu.Unlock()
	for _, r := range key.src.routes {
		if r == cur {
			x.s.e.Subscribe(ec, r.engineTopic(key.name))
		} else {
			x.s.e.Unsubscribe(ec, r.engineTopic(key.name))
		}
	}
	return cur
}

// holds reports the route c receives name in src through, nil if none.
func (x *subscriptions) holds(c *Connection, src *source, name string) *route {
	a := c.active.Load()
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.subs[subKey{src, name}]
}

// retain takes a node reference on key, subscribing the node in the
// coordinator on the first one, and returns once the subscription is live.
func (x *subscriptions) retain(ctx context.Context, key subKey) error {
	x.mu.Lock()
	ns := x.node[key]
	if ns != nil {
		ns.refs++
		x.mu.Unlock()
		select {
		case <-ns.ready:
		case <-ctx.Done():
			x.release(context.WithoutCancel(ctx), key)
			return ctx.Err()
		}
		if ns.err != nil {
			x.release(context.WithoutCancel(ctx), key)
			return ns.err
		}
		return nil
	}
	ns = &nodeSub{refs: 1, ready: make(chan struct{})}
	x.node[key] = ns
	x.mu.Unlock()
	topic := key.name
	if key.src.attach != nil {
		ns.room, ns.err = key.src.attach(x.s, ctx, key.src, key.name)
	} else {
		topic = key.src.coordTopic(key.name)
		ns.sub, ns.err = x.s.co.Subscribe(ctx, topic, key.src.deliver(x.s, key.src, key.name))
	}
	close(ns.ready)
	if ns.err != nil {
		x.mu.Lock()
		if x.node[key] == ns {
			delete(x.node, key)
		}
		x.mu.Unlock()
		return fmt.Errorf("mesh: subscribe %q: %w", topic, ns.err)
	}
	return nil
}

// room returns the node's durableRoom for the durable channel name. The
// caller must hold a node reference to it (a connection's set does while
// it holds the channel), which keeps it from being replaced.
func (x *subscriptions) room(name string) *durableRoom {
	x.mu.Lock()
	defer x.mu.Unlock()
	if ns := x.node[subKey{durableSource, name}]; ns != nil {
		return ns.room
	}
	return nil
}

// closeAll drops every node subscription, at Close.
func (x *subscriptions) closeAll(ctx context.Context) {
	x.mu.Lock()
	subs := x.node
	x.node = make(map[subKey]*nodeSub)
	x.mu.Unlock()
	for _, ns := range subs {
		<-ns.ready
		if ns.err == nil {
			_ = x.unsubscribe(ctx, ns)
		}
	}
}

// TopicCounts is how many rooms, channels, presence rooms and records this
// node has local subscribers for.
type TopicCounts struct {
	Rooms, Channels, Presence, Records int
}

// LocalTopics counts what this node's connections are subscribed to.
func (s *Server) LocalTopics() TopicCounts {
	var tc TopicCounts
	s.subs.mu.Lock()
	defer s.subs.mu.Unlock()
	for key := range s.subs.node {
		if key.src.tally != nil {
			key.src.tally(&tc)
		}
	}
	return tc
}
