package gateway

import (
	"context"
	"errors"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/streams"
	"github.com/meshfast/meshfast/protocol/zps"
)

// Fan-out. A node follows a room (or a scope:* pattern) once, whatever
// the number of its connections subscribed: one streams Listen (or
// ListenScope), whose events a shard goroutine encodes once, as
// {"type":"event","data":…}, into one engine.Frame, and publishes to the
// room's engine topics, which every event loop writes to its own
// subscribers. A room has one engine topic per distinct eventTypes filter
// among its subscribers, so a filter costs a topic, not a per-connection
// check; an event is encoded once whatever the number of topics.
//
// Joining mid-stream. A subscriber that starts after sequence S must get
// exactly the events after S, in order, while the room's events keep
// coming. Its worker reads (S, P] from the store, P being the last
// sequence the shard has published, and sends it; the shard keeps the
// room's latest events encoded (the ring), so the worker reads until what
// it has sent reaches the ring, then hands the connection to the shard.
// The ring holds events only while a catch-up of the room is in progress
// (room.catching), so that rooms without joiners hold nothing; a
// catch-up counts itself before it reads where the room is, so an event
// the shard did not keep is one the catch-up reads from the store.
// The shard, between two of the room's events, posts one task to the
// connection's loop that writes what the ring holds after the worker's
// position and subscribes the connection to the topic, and waits for the
// loop to run it before it publishes the room's next event. The loop runs
// its tasks in order, so the catch-up pages, posted by the worker before
// the hand-off, come before the ring's events, which come before every
// later publish; and waiting for the loop matters because Engine.Publish
// posts only to loops that already have subscribers of the topic. A join
// at a position the shard has not reached yet (a client that saw events on
// a node further ahead) waits in the shard until the room gets there.
//
// Everything a room's fan-out state holds belongs to its shard goroutine;
// the rest reaches it through the shard's inbox. Waiting for a join's loop
// stalls the shard's rooms for one loop round trip; the joins of one inbox
// batch are run together, so a reconnect storm costs one round trip per
// batch, not per connection.

// room is a node's following of one room or scope:* pattern.
type room struct {
	g        *Gateway
	key      string // the room, or the pattern
	wildcard bool
	sh       *shard

	// Set once by acquire before ready is closed.
	ready chan struct{}
	err   error
	stop  func()
	refs  int // Gateway.roomsMu

	// last is the last sequence published to the topics, base the
	// sequence before the ring's first event: the ring holds every event
	// the node published in (base, last]. Written by the shard, read by
	// catch-ups.
	last atomic.Uint64
	base atomic.Uint64
	// catching counts the room's catch-ups in progress: the ring keeps
	// events only while there are some, so an idle room holds none.
	catching atomic.Int32

	// The shard's.
	started           bool
	dropped           bool
	ring              []ringEntry // circular once full, ringLen entries from ringHead
	ringHead, ringLen int
	topics            []*topic
	parked            []*join // joins ahead of last
}

type ringEntry struct {
	seq uint64
	typ string
	f   *engine.Frame
}

// topic is one engine topic of a room: its subscribers with one eventTypes
// filter (none: every event).
type topic struct {
	name  string
	types []string
}

// topicName is the engine topic of room key's subscribers with filter
// types (in any order). Engine topics are per engine, shared with Mesh:
// the prefix is one Mesh never uses.
func topicName(key string, types []string) string {
	if len(types) == 0 {
		return "zps\x00" + key
	}
	t := slices.Clone(types)
	slices.Sort(t)
	t = slices.Compact(t)
	return "zps\x00" + key + "\x00" + strings.Join(t, "\x00")
}

// join is a connection handed to a shard at position pos of a room: it
// has been sent every event up to pos.
type join struct {
	c     *conn
	r     *room
	topic string
	types []string
	pos   uint64
	done  chan joinResult // capacity 1
	// set by the shard when it runs the join
	frames []*engine.Frame
}

type joinResult int

const (
	joined    joinResult = iota
	needStore            // pos is behind the ring: read more from the store
	joinGone             // the connection or the room went away
)

type shard struct {
	g    *Gateway
	mu   sync.Mutex
	in   []item
	wake chan struct{}
	stop bool
	done chan struct{}
}

type itemKind uint8

const (
	itemEvent itemKind = iota
	itemStart
	itemJoin
	itemForget
	itemDrop
)

type item struct {
	kind itemKind
	r    *room
	ev   *streams.Event
	j    *join
	c    *conn
	pos  uint64
	done chan struct{}
}

func (g *Gateway) shardOf(key string) *shard {
	return g.shards[maphash.String(g.seed, key)%uint64(len(g.shards))]
}

func (sh *shard) post(it item) bool {
	sh.mu.Lock()
	if sh.stop {
		sh.mu.Unlock()
		return false
	}
	sh.in = append(sh.in, it)
	sh.mu.Unlock()
	select {
	case sh.wake <- struct{}{}:
	default:
	}
	return true
}

// acquire returns the node's following of key (a room, or a scope:*
// pattern when wildcard), starting it with the first reference: it
// returns once the room's Listen is attached and the shard knows its
// position.
func (g *Gateway) acquire(ctx context.Context, key string, wildcard bool) (*room, error) {
	g.roomsMu.Lock()
	if g.closed {
		g.roomsMu.Unlock()
		return nil, errClosed
	}
	r := g.rooms[key]
	if r != nil {
		r.refs++
		g.roomsMu.Unlock()
		select {
		case <-r.ready:
		case <-ctx.Done():
			g.release(r)
			return nil, ctx.Err()
		}
		if r.err != nil {
			g.release(r)
			return nil, r.err
		}
		return r, nil
	}
	r = &room{g: g, key: key, wildcard: wildcard, sh: g.shardOf(key), ready: make(chan struct{}), refs: 1}
	g.rooms[key] = r
	g.roomsMu.Unlock()

	var pos uint64
	var err error
	onEvent := func(ev *streams.Event) { r.sh.post(item{kind: itemEvent, r: r, ev: ev}) }
	if wildcard {
		r.stop, err = g.st.ListenScope(ctx, zps.ScopeOf(key), onEvent)
	} else {
		pos, r.stop, err = g.st.Listen(ctx, key, onEvent)
	}
	if err == nil {
		started := make(chan struct{})
		if r.sh.post(item{kind: itemStart, r: r, pos: pos, done: started}) {
			<-started
		} else {
			err = errClosed
		}
	}
	r.err = err
	close(r.ready)
	if err != nil {
		g.release(r)
		return nil, err
	}
	return r, nil
}

// release drops a reference taken by acquire; the last one stops the
// room's Listen and frees what the shard holds for it. Any goroutine but a
// loop (stopping a Listen waits for the hub).
func (g *Gateway) release(r *room) {
	g.roomsMu.Lock()
	r.refs--
	last := r.refs == 0
	if last && g.rooms[r.key] == r {
		delete(g.rooms, r.key)
	}
	g.roomsMu.Unlock()
	if !last {
		return
	}
	<-r.ready
	if r.stop != nil {
		r.stop()
	}
	r.sh.post(item{kind: itemDrop, r: r})
}

func (sh *shard) run() {
	defer close(sh.done)
	var pending []*join
	for {
		<-sh.wake
		sh.mu.Lock()
		items, stop := sh.in, sh.stop
		sh.in = nil
		sh.mu.Unlock()
		for i := range items {
			it := &items[i]
			if it.kind == itemEvent && len(pending) > 0 {
				// Joins first: the room's next event must find them
				// subscribed.
				sh.runJoins(pending)
				pending = pending[:0]
			}
			switch it.kind {
			case itemEvent:
				pending = sh.publish(it.r, it.ev, pending)
			case itemStart:
				r := it.r
				if !r.started {
					r.started = true
					r.last.Store(it.pos)
					r.base.Store(it.pos)
				}
				close(it.done)
			case itemJoin:
				pending = sh.join(it.j, pending)
			case itemForget:
				sh.forget(it.r, it.c)
			case itemDrop:
				sh.drop(it.r)
			}
			*it = item{}
		}
		if len(pending) > 0 {
			sh.runJoins(pending)
			pending = pending[:0]
		}
		if stop {
			sh.abandon()
			return
		}
	}
}

// abandon ends the joins parked in the shard's rooms, at Close: nothing
// will publish their rooms' events any more.
func (sh *shard) abandon() {
	sh.g.roomsMu.Lock()
	var rooms []*room
	for _, r := range sh.g.rooms {
		if r.sh == sh {
			rooms = append(rooms, r)
		}
	}
	sh.g.roomsMu.Unlock()
	for _, r := range rooms {
		for _, j := range r.parked {
			j.done <- joinGone
		}
		r.parked = nil
	}
}

// publish encodes ev once and publishes it to r's topics, keeps it in
// the ring, and moves the joins it was waiting for to pending.
func (sh *shard) publish(r *room, ev *streams.Event, pending []*join) []*join {
	if r.dropped {
		return pending
	}
	if !r.started { // the first event can come before the position
		r.started = true
		r.base.Store(ev.Sequence - 1)
	}
	if !r.wildcard && ev.Sequence <= r.last.Load() {
		return pending // already published
	}
	f := engine.AcquireFrame()
	f.SetPayload(engine.OpText, zps.AppendEventMessage(f.PayloadBuf(), ev))
	for _, t := range r.topics {
		if matchType(t.types, ev.Type) {
			sh.g.e.Publish(t.name, f, nil)
		}
	}
	sh.g.m.events.Inc()
	if r.wildcard {
		f.Release()
		return pending
	}
	if r.catching.Load() == 0 {
		// Nobody is catching up: nothing needs the ring (a catch-up that
		// starts now reads this event from the store, see catchUp).
		r.clearRing()
		f.Release()
		r.base.Store(ev.Sequence)
	} else {
		r.push(ringEntry{seq: ev.Sequence, typ: ev.Type, f: f}, sh.g.o.RecentEvents)
	}
	r.last.Store(ev.Sequence)
	if len(r.parked) > 0 {
		kept := r.parked[:0]
		for _, j := range r.parked {
			if j.pos <= ev.Sequence {
				pending = sh.join(j, pending)
			} else {
				kept = append(kept, j)
			}
		}
		clear(r.parked[len(kept):])
		r.parked = kept
	}
	return pending
}

// push keeps e in the ring, the oldest entry going when it holds n: the
// ring grows to n only while a room has catch-ups in progress.
func (r *room) push(e ringEntry, n int) {
	if r.ringLen == n {
		old := &r.ring[r.ringHead]
		r.base.Store(old.seq)
		old.f.Release()
		*old = ringEntry{}
		r.ringHead = (r.ringHead + 1) % n
		r.ringLen--
	}
	if len(r.ring) < n { // still growing: the entries are r.ring[0:ringLen]
		r.ring = append(r.ring, e)
	} else {
		r.ring[(r.ringHead+r.ringLen)%n] = e
	}
	r.ringLen++
}

// clearRing releases the ring's frames.
func (r *room) clearRing() {
	for i := 0; i < r.ringLen; i++ {
		e := &r.ring[(r.ringHead+i)%len(r.ring)]
		e.f.Release()
		*e = ringEntry{}
	}
	r.ring, r.ringLen, r.ringHead = nil, 0, 0
}

func matchType(types []string, typ string) bool {
	return len(types) == 0 || slices.Contains(types, typ)
}

// join decides what to do with j: park it (ahead of last), send it back
// to the store (behind the ring), or add it to pending with the ring's
// events it still needs.
func (sh *shard) join(j *join, pending []*join) []*join {
	r := j.r
	if r.dropped || j.c.isClosed() {
		j.done <- joinGone
		return pending
	}
	if !slices.ContainsFunc(r.topics, func(t *topic) bool { return t.name == j.topic }) {
		r.topics = append(r.topics, &topic{name: j.topic, types: j.types})
	}
	if r.wildcard {
		return append(pending, j)
	}
	switch last := r.last.Load(); {
	case j.pos > last:
		r.parked = append(r.parked, j)
		return pending
	case j.pos < r.base.Load():
		j.done <- needStore
		return pending
	}
	n := len(r.ring)
	for i := 0; i < r.ringLen; i++ {
		e := &r.ring[(r.ringHead+i)%n]
		if e.seq > j.pos && matchType(j.types, e.typ) {
			e.f.Retain()
			j.frames = append(j.frames, e.f)
		}
	}
	return append(pending, j)
}

// runJoins makes each pending join's loop write its ring events and
// subscribe it, and waits for all of them.
func (sh *shard) runJoins(pending []*join) {
	run := func(j *join) {
		ran := j.c.ec.DoWait(func(ec *engine.Conn) {
			for _, f := range j.frames {
				_ = ec.WriteFrame(f)
			}
			sh.g.e.Subscribe(ec, j.topic)
		})
		for _, f := range j.frames {
			f.Release()
		}
		j.frames = nil
		if ran {
			j.done <- joined
		} else {
			j.done <- joinGone
		}
	}
	if len(pending) == 1 {
		run(pending[0])
		return
	}
	var wg sync.WaitGroup
	for _, j := range pending {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(j)
		}()
	}
	wg.Wait()
}

// forget ends c's joins parked in r (c closed or left).
func (sh *shard) forget(r *room, c *conn) {
	kept := r.parked[:0]
	for _, j := range r.parked {
		if j.c == c {
			j.done <- joinGone
		} else {
			kept = append(kept, j)
		}
	}
	clear(r.parked[len(kept):])
	r.parked = kept
}

// drop frees what the shard holds for r, whose last reference is gone.
func (sh *shard) drop(r *room) {
	r.dropped = true
	r.clearRing()
	for _, j := range r.parked {
		j.done <- joinGone
	}
	r.parked = nil
}

// errClosed: the gateway is closing.
var errClosed = errors.New("gateway: closed")
