package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/streams"
	"github.com/meshfast/meshfast/protocol/zps"
)

// Ephemeral events over the gateway (an extension: the document's client
// has publishEphemeral and subscribeEphemeral, its wire protocol lists no
// messages for them; protocol/zps says which meshfast uses). They are
// fan-out only, at most once, in no particular order across publishers:
// a node follows a room or pattern once (streams.ListenEphemeral), encodes
// each event once, as {"type":"ephemeral","data":…}, and publishes it to
// the engine topics of its subscribers' eventTypes filters. A subscriber
// joins its topic directly: there is no position to join at.

// eroom is a node's following of one room or pattern's ephemeral events.
type eroom struct {
	key   string
	ready chan struct{}
	err   error
	stop  func()
	refs  int                     // Gateway.roomsMu
	tops  atomic.Pointer[[]topic] // copy on write under Gateway.roomsMu
}

// esub is one ephemeral subscription of a connection.
type esub struct {
	r     *eroom
	topic string
}

// ephTopicName is the engine topic of pattern's ephemeral subscribers
// with filter types.
func ephTopicName(pattern string, types []string) string {
	return "zpse" + topicName(pattern, types)[len("zps"):]
}

// acquireEph returns the node's following of pattern's ephemeral events,
// with a topic for types, starting it with the first reference.
func (g *Gateway) acquireEph(ctx context.Context, pattern string, types []string) (*eroom, string, error) {
	name := ephTopicName(pattern, types)
	g.roomsMu.Lock()
	if g.closed {
		g.roomsMu.Unlock()
		return nil, "", errClosed
	}
	r := g.erooms[pattern]
	fresh := r == nil
	if fresh {
		r = &eroom{key: pattern, ready: make(chan struct{})}
		r.tops.Store(&[]topic{})
		g.erooms[pattern] = r
	}
	r.refs++
	if tops := *r.tops.Load(); !slices.ContainsFunc(tops, func(t topic) bool { return t.name == name }) {
		next := append(slices.Clip(tops), topic{name: name, types: slices.Clone(types)})
		r.tops.Store(&next)
	}
	g.roomsMu.Unlock()
	if !fresh {
		select {
		case <-r.ready:
		case <-ctx.Done():
			g.releaseEph(r)
			return nil, "", ctx.Err()
		}
		if r.err != nil {
			g.releaseEph(r)
			return nil, "", r.err
		}
		return r, name, nil
	}
	r.stop, r.err = g.st.ListenEphemeral(ctx, pattern, func(ev *streams.EphemeralEvent) { g.fanEphemeral(r, ev) })
	close(r.ready)
	if r.err != nil {
		err := r.err
		g.releaseEph(r)
		return nil, "", err
	}
	return r, name, nil
}

// fanEphemeral encodes ev once and publishes it to r's topics. It runs on
// the coordinator's goroutine: it only posts to the loops.
func (g *Gateway) fanEphemeral(r *eroom, ev *streams.EphemeralEvent) {
	f := engine.AcquireFrame()
	f.SetPayload(engine.OpText, zps.AppendEphemeralMessage(f.PayloadBuf(), ev))
	for _, t := range *r.tops.Load() {
		if matchType(t.types, ev.Type) {
			g.e.Publish(t.name, f, nil)
		}
	}
	f.Release()
}

// releaseEph drops a reference taken by acquireEph. Any goroutine but a
// loop.
func (g *Gateway) releaseEph(r *eroom) {
	g.roomsMu.Lock()
	r.refs--
	last := r.refs == 0
	if last && g.erooms[r.key] == r {
		delete(g.erooms, r.key)
	}
	g.roomsMu.Unlock()
	if !last {
		return
	}
	<-r.ready
	if r.stop != nil {
		r.stop()
	}
}

func (c *conn) subscribeEphemeral(ctx context.Context, m *zps.ClientMessage) {
	g := c.g
	pattern := m.Room
	if _, ok := c.maySubscribe(ctx, m); !ok {
		return
	}
	c.mu.Lock()
	old := c.esubs[pattern]
	over := old == nil && c.full()
	if old != nil {
		delete(c.esubs, pattern)
	}
	c.mu.Unlock()
	if over {
		c.refuseFull()
		return
	}
	if old != nil {
		c.leaveEph(old)
	}
	r, name, err := g.acquireEph(ctx, pattern, m.EventTypes)
	if err != nil {
		c.failed(pattern, err)
		return
	}
	s := &esub{r: r, topic: name}
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		g.releaseEph(r)
		return
	}
	if c.esubs == nil {
		c.esubs = make(map[string]*esub)
	}
	c.esubs[pattern] = s
	c.mu.Unlock()
	c.ec.DoWait(func(ec *engine.Conn) { g.e.Subscribe(ec, name) })
	c.reply(zps.AppendEphemeralReply(nil, zps.TypeSubscribed, pattern))
}

func (c *conn) leaveEph(s *esub) {
	c.ec.DoWait(func(ec *engine.Conn) { c.g.e.Unsubscribe(ec, s.topic) })
	c.g.releaseEph(s.r)
}

func (c *conn) unsubscribeEphemeral(m *zps.ClientMessage) {
	c.mu.Lock()
	s := c.esubs[m.Room]
	delete(c.esubs, m.Room)
	c.mu.Unlock()
	if s != nil {
		c.leaveEph(s)
	}
	c.reply(zps.AppendEphemeralReply(nil, zps.TypeUnsubscribed, m.Room))
}

// publishEphemeral is governed as publish is: client publishing on,
// the scopes, Authorize's publish, the middleware (ephemeralPublish).
func (c *conn) publishEphemeral(ctx context.Context, m *zps.ClientMessage) {
	if !c.g.o.Limits.AllowClientPublish {
		c.refuse(zps.CodePublishDisabled, "Client publish is disabled")
		return
	}
	e := &m.Event
	if _, _, err := zps.ParseRoom(e.Room); err != nil {
		c.refuse(zps.CodeInvalidMessage, "Invalid message: "+trimZps(err))
		return
	}
	if !c.allowed(ctx, e.Room, ActionPublish) {
		return
	}
	if err := c.g.st.PublishEphemeral(ctx, streams.EphemeralMessage{Room: e.Room, Type: e.Type, Payload: e.Payload}); err != nil {
		if errors.Is(err, streams.ErrReservedType) {
			c.refuse(zps.CodeInvalidMessage, fmt.Sprintf("Invalid message: event type %q is reserved for presence", e.Type))
			return
		}
		c.failed(e.Room, err)
		return
	}
	c.reply(zps.AppendEphemeralReply(nil, zps.TypeAck, e.Room))
}

// releaseEphs ends a closed connection's ephemeral subscriptions (their
// engine topics went with the connection).
func (g *Gateway) releaseEphs(es map[string]*esub) {
	for _, s := range es {
		g.releaseEph(s.r)
	}
}
