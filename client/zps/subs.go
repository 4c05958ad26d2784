package zps

import (
	"fmt"
	"slices"
	"sync"
	"time"

	wire "github.com/meshfast/meshfast/protocol/zps"
)

// ackInterval is how often acknowledgements are sent at most: each
// room's highest handled sequence, once per interval, rather than a
// message per event (the gateway counts every message against its rate
// limit).
const ackInterval = 100 * time.Millisecond

// Subscription is one subscribe of a Client: a room, or a scope:* pattern.
// It lasts until Unsubscribe or the client's Close, across reconnects: the
// client subscribes again after each, from the last sequence it received
// in each room.
type Subscription struct {
	c        *Client
	pattern  string
	wildcard bool
	types    []string
	h        Handler
	from     uint64
	hasFrom  bool

	// Client.mu
	closed bool
	rooms  map[string]*roomState
}

// roomState is what a subscription tracks of one room.
type roomState struct {
	started  bool   // last is known
	last     uint64 // the last sequence queued for the handler
	buf      map[uint64]*Event
	replayAt time.Time
	timer    *time.Timer
}

// SubscribeOption adjusts a Subscribe.
type SubscribeOption func(*Subscription)

// FromSequence starts the subscription after seq (the document's
// fromSequence) rather than after the subscriber's acknowledged cursor.
func FromSequence(seq uint64) SubscribeOption {
	return func(s *Subscription) { s.from, s.hasFrom = seq, true }
}

// WithEventTypes delivers only events of these types. The server filters,
// so the sequences a filtered subscription sees have holes: it does not
// look for gaps (after a reconnect it still resumes from its last
// sequence, and the server still sends each event once, in order).
func WithEventTypes(types ...string) SubscribeOption {
	return func(s *Subscription) { s.types = slices.Clone(types) }
}

// Subscribe subscribes to room (or a scope:* pattern) with h, now if the
// client is connected, else as soon as it is. A room starts after the
// subscriber's acknowledged cursor unless FromSequence says otherwise; a
// pattern is live only. Each room's events reach h once each, in sequence
// order, one at a time (for every subscription of the client), gaps
// filled by replay. A second Subscribe to the same room or pattern
// replaces the first. The server's refusal is reported to OnError.
func (c *Client) Subscribe(room string, h Handler, opts ...SubscribeOption) (*Subscription, error) {
	_, wildcard, err := wire.ParsePattern(room)
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("zps client: subscribe %q: no handler", room)
	}
	s := &Subscription{c: c, pattern: room, wildcard: wildcard, h: h, rooms: make(map[string]*roomState)}
	for _, o := range opts {
		o(s)
	}
	if wildcard {
		s.hasFrom = false
	} else if s.hasFrom {
		s.rooms[room] = &roomState{started: true, last: s.from}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	m := c.byRoom
	if wildcard {
		m = c.byScope
	}
	key := room
	if wildcard {
		key = wire.ScopeOf(room)
	}
	if old := m[key]; old != nil {
		old.closeLocked()
	}
	m[key] = s
	if c.cn != nil {
		s.resubscribe(c.cn)
	}
	return s, nil
}

// Unsubscribe ends the subscription: no handler call starts for it once
// it returns.
func (s *Subscription) Unsubscribe() {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.closed {
		return
	}
	s.closeLocked()
	m, key := c.byRoom, s.pattern
	if s.wildcard {
		m, key = c.byScope, wire.ScopeOf(s.pattern)
	}
	if m[key] == s {
		delete(m, key)
		if c.cn != nil {
			c.cn.send(wire.AppendUnsubscribe(nil, s.pattern), &pending{kind: wire.TypeUnsubscribed})
		}
	}
}

// LastSequence is the last sequence of room the subscription has queued
// for its handler (0 before any).
func (s *Subscription) LastSequence(room string) uint64 {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if rs := s.rooms[room]; rs != nil {
		return rs.last
	}
	return 0
}

func (s *Subscription) closeLocked() {
	s.closed = true
	for _, rs := range s.rooms {
		if rs.timer != nil {
			rs.timer.Stop()
		}
	}
}

// resubscribe sends the subscription on cn from where it got. Client.mu.
func (s *Subscription) resubscribe(cn *conn) {
	from, has := s.from, s.hasFrom
	if rs := s.rooms[s.pattern]; !s.wildcard && rs != nil && rs.started {
		from, has = rs.last, true
	}
	cn.send(wire.AppendSubscribe(nil, s.pattern, s.types, from, has), &pending{kind: wire.TypeSubscribed})
}

// reset forgets what was buffered out of order on a lost connection: the
// next one sends it again, in order. Client.mu.
func (s *Subscription) reset() {
	for _, rs := range s.rooms {
		rs.buf = nil
		rs.replayAt = time.Time{}
		if rs.timer != nil {
			rs.timer.Stop()
			rs.timer = nil
		}
	}
}

// delivery is one event for one subscription's handler: a durable one
// (s, ev) or an ephemeral one (es, eev).
type delivery struct {
	s   *Subscription
	ev  *Event
	es  *EphemeralSubscription
	eev *EphemeralEvent
}

// onEvents takes events of cn (live ones, or a replay's of room) to the
// subscriptions they belong to, in order. Reader goroutine.
func (c *Client) onEvents(cn *conn, replayRoom string, evs []Event, replay bool) {
	c.mu.Lock()
	if c.cur != cn {
		c.mu.Unlock()
		return // a connection the client has left
	}
	var out []delivery
	for i := range evs {
		ev := &evs[i]
		if s := c.byRoom[ev.Room]; s != nil {
			out = s.offer(cn, ev, out)
		}
		if s := c.byScope[wire.ScopeOf(ev.Room)]; s != nil {
			out = s.offer(cn, ev, out)
		}
	}
	if replay {
		// The page may leave a gap behind (more than a page was missing):
		// ask again.
		for _, s := range []*Subscription{c.byRoom[replayRoom], c.byScope[wire.ScopeOf(replayRoom)]} {
			if s != nil {
				if rs := s.rooms[replayRoom]; rs != nil && len(rs.buf) > 0 {
					s.requestReplay(cn, replayRoom, rs)
				}
			}
		}
	}
	c.mu.Unlock()
	c.q.push(out)
}

// offer takes one event of the subscription's: queued for the handler if
// it is the next of its room, kept if it comes early (with a replay asked
// for the gap), dropped if it was seen. Client.mu.
func (s *Subscription) offer(cn *conn, ev *Event, out []delivery) []delivery {
	if s.closed {
		return out
	}
	rs := s.rooms[ev.Room]
	if rs == nil {
		rs = &roomState{}
		s.rooms[ev.Room] = rs
	}
	if !rs.started {
		// The first event: the server started where it was asked to.
		rs.started, rs.last = true, ev.Sequence-1
	}
	if len(s.types) > 0 {
		if ev.Sequence > rs.last {
			rs.last = ev.Sequence
			out = append(out, delivery{s: s, ev: ev})
		}
		return out
	}
	switch {
	case ev.Sequence <= rs.last:
		return out
	case ev.Sequence == rs.last+1:
		out = append(out, delivery{s: s, ev: ev})
		rs.last++
		for len(rs.buf) > 0 {
			nx := rs.buf[rs.last+1]
			if nx == nil {
				break
			}
			delete(rs.buf, rs.last+1)
			out = append(out, delivery{s: s, ev: nx})
			rs.last++
		}
		for seq := range rs.buf {
			if seq <= rs.last {
				delete(rs.buf, seq)
			}
		}
	default:
		if len(rs.buf) < s.c.o.MaxBufferedEventsPerRoom {
			if rs.buf == nil {
				rs.buf = make(map[uint64]*Event)
			}
			rs.buf[ev.Sequence] = ev
		}
		s.requestReplay(cn, ev.Room, rs)
	}
	return out
}

// requestReplay asks for room's events after the last one, at most once
// per ReplayThrottle (a timer asks later). Client.mu.
func (s *Subscription) requestReplay(cn *conn, room string, rs *roomState) {
	c := s.c
	if wait := time.Until(rs.replayAt.Add(c.o.ReplayThrottle)); wait > 0 {
		if rs.timer == nil {
			rs.timer = time.AfterFunc(wait, func() { c.retryGap(s, room) })
		}
		return
	}
	rs.replayAt = time.Now()
	cn.send(wire.AppendReplayRequest(nil, room, rs.last, c.o.ReplayLimit), &pending{kind: wire.TypeReplay})
}

// retryGap asks again for a gap still open after the throttle.
func (c *Client) retryGap(s *Subscription, room string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rs := s.rooms[room]
	if rs == nil || s.closed {
		return
	}
	rs.timer = nil
	if len(rs.buf) > 0 && c.cur != nil {
		s.requestReplay(c.cur, room, rs)
	}
}

// deliveryQueue hands events from the reader to the handlers' goroutine.
// push blocks while max wait, so that a slow handler slows the reading
// down instead of growing the queue.
type deliveryQueue struct {
	mu     sync.Mutex
	space  *sync.Cond
	items  []delivery
	max    int
	closed bool
	wake   chan struct{}
}

func newDeliveryQueue(max int) *deliveryQueue {
	q := &deliveryQueue{max: max, wake: make(chan struct{}, 1)}
	q.space = sync.NewCond(&q.mu)
	return q
}

func (q *deliveryQueue) push(ds []delivery) {
	if len(ds) == 0 {
		return
	}
	q.mu.Lock()
	for len(q.items) >= q.max && !q.closed {
		q.space.Wait()
	}
	if !q.closed {
		q.items = append(q.items, ds...)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *deliveryQueue) take() ([]delivery, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	q.space.Broadcast()
	return items, q.closed
}

func (q *deliveryQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.items = nil
	q.space.Broadcast()
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// deliverLoop runs the handlers, one event at a time, and sends the
// acknowledgements.
func (c *Client) deliverLoop() {
	defer close(c.qdone)
	for {
		<-c.q.wake
		for {
			items, closed := c.q.take()
			if closed {
				return
			}
			if len(items) == 0 {
				break
			}
			for _, d := range items {
				if d.es != nil {
					c.mu.Lock()
					closed := d.es.closed
					c.mu.Unlock()
					if !closed && c.stop.Err() == nil {
						c.handling.Store(true)
						d.es.h(c.stop, d.eev)
						c.handling.Store(false)
					}
					continue
				}
				c.mu.Lock()
				closed := d.s.closed
				c.mu.Unlock()
				if closed || c.stop.Err() != nil {
					continue
				}
				c.handling.Store(true)
				err := d.s.h(c.stop, d.ev)
				c.handling.Store(false)
				if err != nil {
					c.report(fmt.Errorf("zps client: handler of %s #%d: %w", d.ev.Room, d.ev.Sequence, err))
					continue
				}
				if !c.o.NoAck {
					c.noteAck(d.ev.Room, d.ev.Sequence)
				}
			}
		}
	}
}

// noteAck records a handled event and sends the acknowledgements, at most
// once per ackInterval.
func (c *Client) noteAck(room string, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq > c.acks[room] {
		c.acks[room] = seq
	}
	if c.cn == nil || c.ackT != nil {
		return
	}
	if wait := time.Until(c.ackAt.Add(ackInterval)); wait > 0 {
		c.ackT = time.AfterFunc(wait, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.ackT = nil
			if c.cn != nil && c.stop.Err() == nil {
				c.sendAcksLocked(c.cn)
			}
		})
		return
	}
	c.sendAcksLocked(c.cn)
}

// sendAcksLocked sends each room's highest handled sequence. Client.mu.
func (c *Client) sendAcksLocked(cn *conn) {
	for room, seq := range c.acks {
		cn.send(wire.AppendAck(nil, room, seq), &pending{kind: wire.TypeAck})
		delete(c.acks, room)
	}
	c.ackAt = time.Now()
}
