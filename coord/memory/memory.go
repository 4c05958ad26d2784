package memory

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfast/meshfast/coord"
)

// numShards is the number of shards of each sharded map. A power of two.
const numShards = 32

// Memory is the embedded, in-process Coordinator. Several server nodes in one
// process may share one Memory, which then behaves like one Redis shared by
// them. Safe for concurrent use; see the package documentation for the lock
// order.
type Memory struct {
	opts Options
	seed maphash.Seed
	base time.Time // origin of the int64 deadlines (monotonic when Now is time.Now)
	// realClock: Now is time.Now, so a deadline is also a point in real time.
	realClock bool
	seq       atomic.Uint64

	conns   [numShards]connShard
	rooms   [numShards]roomShard
	records [numShards]recordShard
	history [numShards]historyShard
	topics  [numShards]topicShard

	nodesMu sync.Mutex // leaf, or after a connShard.mu
	nodes   map[string]*nodeState

	subID atomic.Uint64
	queue chan delivery

	expMu       sync.Mutex // leaf
	expHandlers []expHandler
	expID       uint64

	// The sweeper sleeps until the earliest deadline it knows of (or for
	// good if there is none): an idle server must not wake up ten times a
	// second for nothing. sleepUntil is that deadline, math.MinInt64 while
	// it is being worked out; arming an earlier one, or any while it is
	// worked out, sends on wake.
	sleepUntil atomic.Int64
	wake       chan struct{} // capacity 1
	sweeps     atomic.Uint64 // sweeps run by the sweeper

	closed    atomic.Bool
	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

var (
	_ coord.Coordinator   = (*Memory)(nil)
	_ coord.Admin         = (*Memory)(nil)
	_ coord.LocalRegistry = (*Memory)(nil)
)

// New returns a running Memory coordinator with its sweeper and dispatcher
// goroutines. Call Close to stop them.
func New(opts Options) *Memory {
	realClock := opts.Now == nil
	opts = opts.withDefaults()
	m := &Memory{
		realClock: realClock,
		opts:      opts,
		seed:      maphash.MakeSeed(),
		base:      opts.Now(),
		nodes:     make(map[string]*nodeState),
		queue:     make(chan delivery, opts.QueueSize),
		done:      make(chan struct{}),
		wake:      make(chan struct{}, 1),
	}
	m.sleepUntil.Store(math.MinInt64)
	for i := range numShards {
		m.conns[i].m = make(map[string]*connState)
		m.rooms[i].m = make(map[string]*roomState)
		m.rooms[i].next = math.MaxInt64
		m.records[i].m = make(map[string]*record)
		m.history[i].m = make(map[string]*history)
		m.topics[i].m = make(map[string][]subscriber)
	}
	m.wg.Add(2)
	go m.sweeper()
	go m.dispatcher()
	return m
}

// Close stops the sweeper and the dispatcher and waits for them; queued
// messages and unreported expiries are dropped. Later calls of any method
// return coord.ErrClosed. Close is idempotent and must not be called from a
// handler.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		close(m.done)
		m.wg.Wait()
	})
	return nil
}

// check returns the error a method must fail with before doing anything.
func (m *Memory) check(ctx context.Context) error {
	if m.closed.Load() {
		return coord.ErrClosed
	}
	return ctx.Err()
}

// nowNanos returns the clock as nanoseconds since m.base.
func (m *Memory) nowNanos() int64 { return int64(m.opts.Now().Sub(m.base)) }

// deadline returns the deadline of a TTL starting now.
func deadline(now int64, ttl time.Duration) int64 {
	if d := now + int64(ttl); d > now {
		return d
	}
	return math.MaxInt64
}

func (m *Memory) shardOf(s string) uint64 { return maphash.String(m.seed, s) & (numShards - 1) }

func (m *Memory) connShard(id string) *connShard     { return &m.conns[m.shardOf(id)] }
func (m *Memory) roomShard(room string) *roomShard   { return &m.rooms[m.shardOf(room)] }
func (m *Memory) recordShard(id string) *recordShard { return &m.records[m.shardOf(id)] }
func (m *Memory) historyShard(ch string) *historyShard {
	return &m.history[m.shardOf(ch)]
}
func (m *Memory) topicShard(topic string) *topicShard { return &m.topics[m.shardOf(topic)] }

func errEmpty(op, what string) error {
	return fmt.Errorf("coord/memory: %s: empty %s: %w", op, what, coord.ErrInvalidArgument)
}

func errTTL(op string, ttl time.Duration) error {
	return fmt.Errorf("coord/memory: %s: ttl %v: %w", op, ttl, coord.ErrInvalidArgument)
}

// clone returns a copy of b with len == cap, so that an append by a reader
// cannot write into the stored array.
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	c := make([]byte, len(b))
	copy(c, b)
	return c
}

// keys returns the keys of a set.
func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// seqID is an id with its registration sequence, for ordered listings.
type seqID struct {
	id  string
	seq uint64
}

func sortedBySeq(ids []seqID) []string {
	slices.SortFunc(ids, func(a, b seqID) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	out := make([]string, len(ids))
	for i, s := range ids {
		out[i] = s.id
	}
	return out
}

// sweeper is the one goroutine that expires presence entries and states.
// It sweeps when the earliest known deadline is due, at most once per
// SweepInterval, and otherwise sleeps: with nothing that can expire it
// never wakes. With an injected clock (tests) deadlines say nothing about
// real time, so while anything is pending it sweeps every SweepInterval.
func (m *Memory) sweeper() {
	defer m.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	var last time.Time // the last sweep, real time
	sweep := true
	for {
		// Every deadline armed from here until sleepUntil is stored wakes
		// us again, so none is missed between the scan and the store.
		m.sleepUntil.Store(math.MinInt64)
		var next int64
		if sweep {
			next = m.sweep()
			m.sweeps.Add(1)
			last = time.Now()
		} else {
			next = m.earliest()
		}
		m.sleepUntil.Store(next)
		if next != math.MaxInt64 {
			at := last.Add(m.opts.SweepInterval)
			if m.realClock {
				at = later(at, m.base.Add(time.Duration(next)))
			}
			t.Reset(time.Until(at))
		} else {
			t.Stop()
		}
		select {
		case <-m.done:
			return
		case <-t.C:
			sweep = true
		case <-m.wake:
			sweep = false // re-plan; sweep only when the timer says so
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// armLocked notes deadline d of an entry of rs for the sweeper and wakes it
// if it sleeps past d, or is working out when to wake next (it may have
// scanned rs already: it then plans again). rs.mu is held.
func (m *Memory) armLocked(rs *roomShard, d int64) {
	rs.armLocked(d)
	if u := m.sleepUntil.Load(); u == math.MinInt64 || d < u {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// earliest is the earliest deadline of any shard (a lower bound; math.MaxInt64
// if none).
func (m *Memory) earliest() int64 {
	next := int64(math.MaxInt64)
	for i := range m.rooms {
		rs := &m.rooms[i]
		rs.mu.RLock()
		next = min(next, rs.next)
		rs.mu.RUnlock()
	}
	return next
}

// sweep removes every lapsed presence entry and presence state, reports
// each expiry to the first registered handler and returns the earliest
// remaining deadline (math.MaxInt64 if none). No lock is held while the
// handler runs.
func (m *Memory) sweep() (next int64) {
	now := m.nowNanos()
	next = math.MaxInt64
	var expired []coord.Expiry
	for i := range m.rooms {
		var n int64
		expired, n = m.rooms[i].sweep(now, expired)
		next = min(next, n)
	}
	if len(expired) == 0 {
		return
	}
	m.expMu.Lock()
	var h coord.ExpiryHandler
	if len(m.expHandlers) > 0 {
		h = m.expHandlers[0].h
	}
	m.expMu.Unlock()
	if h == nil {
		return
	}
	at := m.opts.Now()
	for _, e := range expired {
		if m.closed.Load() {
			return
		}
		e.At = at
		h(e)
	}
	return next
}

type expHandler struct {
	id uint64
	h  coord.ExpiryHandler
}

// OnPresenceExpiry implements coord.Presence. Every expiry goes to the
// earliest registered handler that is still registered.
func (m *Memory) OnPresenceExpiry(h coord.ExpiryHandler) (remove func()) {
	if h == nil {
		return func() {}
	}
	m.expMu.Lock()
	m.expID++
	id := m.expID
	m.expHandlers = append(m.expHandlers, expHandler{id: id, h: h})
	m.expMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.expMu.Lock()
			m.expHandlers = slices.DeleteFunc(m.expHandlers, func(e expHandler) bool { return e.id == id })
			m.expMu.Unlock()
		})
	}
}
