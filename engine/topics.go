package engine

import (
	"hash/maphash"
	"sync"
)

// topicSet is one loop's subscribers of one topic: a dense slice for
// iteration speed plus an index for O(1) removal.
type topicSet struct {
	conns []*Conn
	index map[*Conn]int32
}

// topicIndex maps a topic to the loops that have subscribers, so a publish
// posts only to loops that care. It is sharded; a shard lock is taken on the
// first join and last leave of a topic on a loop, and briefly (read) per
// publish — never while writing to a socket.
type topicIndex struct {
	seed   maphash.Seed
	shards [64]topicShard
}

type topicShard struct {
	mu    sync.RWMutex
	loops map[string]uint64 // bit i set: loop i has subscribers
	_     [40]byte          // keep shards on separate cache lines
}

func (ti *topicIndex) init() {
	ti.seed = maphash.MakeSeed()
	for i := range ti.shards {
		ti.shards[i].loops = make(map[string]uint64)
	}
}

func (ti *topicIndex) shard(topic string) *topicShard {
	return &ti.shards[maphash.String(ti.seed, topic)&63]
}

func (ti *topicIndex) set(topic string, loop int, on bool) {
	s := ti.shard(topic)
	s.mu.Lock()
	m := s.loops[topic]
	if on {
		m |= 1 << uint(loop)
	} else {
		m &^= 1 << uint(loop)
	}
	if m == 0 {
		delete(s.loops, topic)
	} else {
		s.loops[topic] = m
	}
	s.mu.Unlock()
}

func (ti *topicIndex) get(topic string) uint64 {
	s := ti.shard(topic)
	s.mu.RLock()
	m := s.loops[topic]
	s.mu.RUnlock()
	return m
}

// subscribe adds c to topic on its loop. Loop only.
func (l *loop) subscribe(c *Conn, topic string) bool {
	ts := l.topics[topic]
	if ts == nil {
		ts = &topicSet{index: make(map[*Conn]int32)}
		l.topics[topic] = ts
		l.e.topicIdx.set(topic, l.idx, true)
	}
	if _, ok := ts.index[c]; ok {
		return false
	}
	ts.index[c] = int32(len(ts.conns))
	ts.conns = append(ts.conns, c)
	c.topics = append(c.topics, topic)
	return true
}

// unsubscribe removes c from topic on its loop. Loop only.
func (l *loop) unsubscribe(c *Conn, topic string) bool {
	if !l.dropMember(c, topic) {
		return false
	}
	for i, t := range c.topics {
		if t == topic {
			last := len(c.topics) - 1
			c.topics[i] = c.topics[last]
			c.topics[last] = ""
			c.topics = c.topics[:last]
			break
		}
	}
	return true
}

func (l *loop) dropMember(c *Conn, topic string) bool {
	ts := l.topics[topic]
	if ts == nil {
		return false
	}
	i, ok := ts.index[c]
	if !ok {
		return false
	}
	last := int32(len(ts.conns) - 1)
	moved := ts.conns[last]
	ts.conns[i] = moved
	ts.index[moved] = i
	ts.conns[last] = nil
	ts.conns = ts.conns[:last]
	delete(ts.index, c)
	if len(ts.conns) == 0 {
		delete(l.topics, topic)
		l.e.topicIdx.set(topic, l.idx, false)
	}
	return true
}

// unsubscribeAll drops c from every topic; used when it closes.
func (l *loop) unsubscribeAll(c *Conn) {
	for i, t := range c.topics {
		l.dropMember(c, t)
		c.topics[i] = ""
	}
	c.topics = nil
}

// flushChunk is how many subscribers a broadcast queues before flushing
// them: small enough that they are still in cache when written, large
// enough that the flush loop is cheap.
const flushChunk = 256

// publishLocal queues f for every local subscriber of topic, except the
// connection ids in exclude.
func (l *loop) publishLocal(topic string, f *Frame, exclude []uint64) {
	ts := l.topics[topic]
	if ts == nil {
		return
	}
	l.beginWalk()
	// Walk backwards: a connection closed by a failing write or a slow
	// consumer is removed by swapping the last member into its place, which
	// has already been visited.
	for i := len(ts.conns) - 1; i >= 0; i-- {
		if i >= len(ts.conns) {
			continue
		}
		c := ts.conns[i]
		if c.state != stateOpen || (exclude != nil && excluded(exclude, c.id)) {
			continue
		}
		if b := f.bytesFor(c.kind); b != nil {
			_ = l.queueShared(c, b)
		}
	}
	l.endWalk()
}

// publishRun queues the frames of consecutive publish tasks to one topic,
// subscriber by subscriber, flushing every flushChunk subscribers.
func (l *loop) publishRun(topic string, run []task) {
	ts := l.topics[topic]
	if ts == nil {
		return
	}
	l.beginWalk()
	n := 0
	for i := len(ts.conns) - 1; i >= 0; i-- {
		if i >= len(ts.conns) {
			continue
		}
		c := ts.conns[i]
		if c.state != stateOpen {
			continue
		}
		for k := range run {
			if b := run[k].frame.bytesFor(c.kind); b != nil && c.state == stateOpen {
				_ = l.queueShared(c, b)
			}
		}
		if n++; n == flushChunk {
			n = 0
			l.flushEarly()
		}
	}
	l.endWalk()
}

// beginWalk and endWalk bracket a walk over a topic's members. A
// handler's OnClose may touch topic tables, so while a walk runs it is
// deferred to the walk's end; the engine's own bookkeeping is not.
func (l *loop) beginWalk() { l.walking++ }

func (l *loop) endWalk() {
	l.walking--
	if l.walking > 0 {
		return
	}
	for len(l.deferred) > 0 {
		c := l.deferred[0]
		l.deferred[0] = nil
		l.deferred = l.deferred[1:]
		c.route.h.OnClose(c, c.takeCloseInfo())
	}
	l.deferred = l.deferred[:0]
}

// publishAll queues f for every open connection served by h (any, if h is
// nil) except those in exclude, walking the loop's connection list: a
// broadcast to everyone needs no topic, so idle connections carry no
// membership for it.
func (l *loop) publishAll(f *Frame, exclude []uint64, h Handler) {
	l.beginWalk()
	n := 0
	for i := len(l.conns) - 1; i >= 0; i-- {
		if i >= len(l.conns) {
			continue
		}
		c := l.conns[i]
		if c.state != stateOpen || (h != nil && c.route.h != h && c.route.alias != h) || (exclude != nil && excluded(exclude, c.id)) {
			continue
		}
		if b := f.bytesFor(c.kind); b != nil {
			_ = l.queueShared(c, b)
		}
		if n++; n == flushChunk {
			n = 0
			l.flushEarly()
		}
	}
	l.endWalk()
}
