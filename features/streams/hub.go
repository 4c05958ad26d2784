package streams

import (
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfast/meshfast/features/streams/store"
	"github.com/meshfast/meshfast/protocol/zps"
)

// The hub is the node's live side: it turns the events that arrive over
// pub/sub, in whatever order publishers on different nodes sent them, into
// each room's events in sequence order, exactly once, and hands them to
// the room's local listeners (and to the scope:* listeners of its scope).
//
// A room's state belongs to one shard goroutine, chosen by the room's
// name; everything else reaches it by posting to the shard's inbox (one
// owner, no lock on the state). For each room the shard keeps pos, the
// last sequence delivered: every listener attached at position P receives
// exactly the events after P, in order. An event after pos+1 waits in
// pending; a gap that lasts GapTimeout (its event was published on another
// node and is still on its way, or was lost), or that pending cannot hold,
// is read from the store, which holds every sequence up to its head (the
// store's contract), so nothing is skipped except what retention removed.
// A room idle since the last tick is compared with its head in the store
// every TailCheckInterval, and every room after the coordinator
// reconnected, so that an event whose live publish was lost with nothing
// after it is delivered too.
//
// Listeners are called on the shard goroutine and must not block: they
// copy or queue what they need (a subscription queues the event; the
// gateway, features/streams/gateway, posts it to its fan-out shard, which
// encodes a frame once and publishes it to the room's engine topic).
type hub struct {
	s      *Streams
	seed   maphash.Seed
	shards []*shard

	scopeMu sync.RWMutex
	scopes  map[string][]*listener // scope → its scope:* listeners; slices are replaced, never changed

	activeRooms     atomic.Int64
	activeListeners atomic.Int64

	ctx    context.Context // canceled by stop: the store reads of fills and checks
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// listener receives one room's (or one scope's) events in order.
type listener struct {
	fn func(*Event)
}

type shard struct {
	h *hub

	mu       sync.Mutex
	inbox    []item
	spare    []item
	events   int                 // live events in inbox
	suspects map[string]struct{} // rooms whose events a full inbox dropped
	stopped  bool
	wake     chan struct{} // capacity 1

	// The rest belongs to the shard goroutine.
	rooms    map[string]*roomState
	gaps     map[*roomState]struct{} // rooms waiting for a gap to fill
	gapTimer *time.Timer
	gapArmed bool
	now      time.Time // at the start of the current batch
}

type roomState struct {
	room, scope string
	ready       bool // pos is known
	initing     bool // the head is being read
	pos         uint64
	pending     map[uint64]*Event
	listeners   []*listener
	waiting     []waiter
	filling     bool
	gapAt       time.Time // when to read a gap; zero: none
	checkedPos  uint64    // pos at the previous tail check
	checking    bool
	lastEvent   time.Time
}

type waiter struct {
	l     *listener
	reply chan attachResult
}

type attachResult struct {
	pos uint64
	err error
}

type itemKind uint8

const (
	itemEvent itemKind = iota
	itemAttach
	itemDetach
	itemInit
	itemFill
	itemHeads
	itemGapTick
	itemCheckAll
	itemBarrier
)

type item struct {
	kind  itemKind
	ev    *Event
	room  string
	l     *listener
	reply chan attachResult
	head  uint64
	page  store.Page
	rooms []string
	heads []uint64
	err   error
}

func newHub(s *Streams) *hub {
	h := &hub{s: s, seed: maphash.MakeSeed(), scopes: make(map[string][]*listener)}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.shards = make([]*shard, s.opts.Workers)
	for i := range h.shards {
		h.shards[i] = &shard{h: h, wake: make(chan struct{}, 1), rooms: make(map[string]*roomState),
			gaps: make(map[*roomState]struct{}), suspects: make(map[string]struct{})}
	}
	return h
}

func (h *hub) start() {
	for _, sh := range h.shards {
		h.wg.Add(1)
		go sh.run()
	}
}

// stop ends the shard goroutines and waits for them and their reads.
func (h *hub) stop() {
	for _, sh := range h.shards {
		sh.mu.Lock()
		sh.stopped = true
		sh.mu.Unlock()
	}
	h.cancel()
	for _, sh := range h.shards {
		sh.signal()
	}
	h.wg.Wait()
}

func (h *hub) shardOf(room string) *shard {
	return h.shards[maphash.String(h.seed, room)%uint64(len(h.shards))]
}

// onMessage is the coordinator handler of the room and scope topics: it
// decodes the event and hands it to the room's shard, never blocking.
func (h *hub) onMessage(_ string, payload []byte) {
	ev := new(Event)
	if err := zps.DecodeEvent(payload, ev); err != nil {
		h.s.m.errors.Inc()
		h.s.opts.Logger.Warn("streams: undecodable live event dropped", "err", err)
		return
	}
	h.shardOf(ev.Room).postEvent(ev)
}

// checkAll makes every shard compare every room with its head in the
// store (after a coordinator reconnect). Called from a coordinator
// goroutine: it only posts.
func (h *hub) checkAll() {
	for _, sh := range h.shards {
		sh.post(item{kind: itemCheckAll})
	}
}

func (h *hub) scopeListeners(scope string) []*listener {
	h.scopeMu.RLock()
	defer h.scopeMu.RUnlock()
	return h.scopes[scope]
}

func (h *hub) hasScope(scope string) bool { return len(h.scopeListeners(scope)) > 0 }

// Listen attaches fn to room's live events on this node and returns the
// position P it attached at: fn is then called with every event of room
// with sequence > P, in order, exactly once (events retention removed
// before they reached the node are skipped), until stop is called. Every
// sequence up to P is in the store (unless retention removed it), so a
// subscriber that reads (from, P] from the store and then takes fn's
// events has everything after from, without a duplicate; Subscribe does
// exactly that.
//
// fn runs on a hub goroutine and must not block or call Streams; it must
// not modify the event, which it may keep. stop may be called from any
// goroutine but fn, more than once; fn is not called once stop returned,
// except for a call already running.
func (s *Streams) Listen(ctx context.Context, room string, fn func(*Event)) (pos uint64, stop func(), err error) {
	if err := s.check(ctx); err != nil {
		return 0, nil, fmt.Errorf("streams: listen: %w", err)
	}
	if _, _, err := zps.ParseRoom(room); err != nil {
		return 0, nil, fmt.Errorf("streams: listen: %w", err)
	}
	topic := topicRoomPrefix + room
	if err := s.subs.retain(ctx, topic, s.hub.onMessage); err != nil {
		return 0, nil, err
	}
	l := &listener{fn: fn}
	sh := s.hub.shardOf(room)
	reply := make(chan attachResult, 1)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			sh.postWait(item{kind: itemDetach, room: room, l: l})
			ctx, cancel := context.WithTimeout(context.Background(), fanoutTimeout)
			defer cancel()
			s.subs.release(ctx, topic)
		})
	}
	if !sh.post(item{kind: itemAttach, room: room, l: l, reply: reply}) {
		stop()
		return 0, nil, fmt.Errorf("streams: listen: %w", ErrClosed)
	}
	select {
	case r := <-reply:
		if r.err != nil {
			stop()
			return 0, nil, fmt.Errorf("streams: listen %q: %w", room, r.err)
		}
		return r.pos, stop, nil
	case <-ctx.Done():
		stop()
		return 0, nil, ctx.Err()
	}
}

// ListenScope attaches fn to the live events of every room of scope (a
// scope:* subscription). There is no position: fn gets each room's events
// in order from the first one the node sees after attaching (rooms the
// node already orders for other listeners continue from where they are).
// The rules of Listen's fn apply.
func (s *Streams) ListenScope(ctx context.Context, scope string, fn func(*Event)) (stop func(), err error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("streams: listen: %w", err)
	}
	if sc, wc, err := zps.ParsePattern(scope + ":*"); err != nil || !wc || sc != scope {
		return nil, fmt.Errorf("streams: listen to scope %q: %w", scope, ErrInvalidPattern)
	}
	topic := topicScopePrefix + scope
	if err := s.subs.retain(ctx, topic, s.hub.onMessage); err != nil {
		return nil, err
	}
	h := s.hub
	l := &listener{fn: fn}
	h.scopeMu.Lock()
	h.scopes[scope] = append(slices.Clip(h.scopes[scope]), l)
	h.scopeMu.Unlock()
	h.activeListeners.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			h.scopeMu.Lock()
			ls := slices.DeleteFunc(slices.Clone(h.scopes[scope]), func(x *listener) bool { return x == l })
			if len(ls) == 0 {
				delete(h.scopes, scope)
			} else {
				h.scopes[scope] = ls
			}
			h.scopeMu.Unlock()
			h.activeListeners.Add(-1)
			ctx, cancel := context.WithTimeout(context.Background(), fanoutTimeout)
			defer cancel()
			s.subs.release(ctx, topic)
			// A running delivery may still hold the old slice: wait for
			// every shard to finish its current batch.
			for _, sh := range h.shards {
				sh.postWait(item{kind: itemBarrier})
			}
		})
	}, nil
}

// post queues a control item; false after stop.
func (sh *shard) post(it item) bool {
	sh.mu.Lock()
	if sh.stopped {
		sh.mu.Unlock()
		return false
	}
	sh.inbox = append(sh.inbox, it)
	sh.mu.Unlock()
	sh.signal()
	return true
}

// postWait queues it and returns once the shard handled it (or stopped).
func (sh *shard) postWait(it item) {
	done := make(chan attachResult, 1)
	if it.reply == nil {
		it.reply = done
	}
	if !sh.post(it) {
		return
	}
	select {
	case <-it.reply:
	case <-sh.h.ctx.Done():
	}
}

// postEvent queues a live event, or drops it when the inbox is full (it is
// in the store: the room is then checked against its head).
func (sh *shard) postEvent(ev *Event) {
	sh.mu.Lock()
	if sh.stopped {
		sh.mu.Unlock()
		return
	}
	if sh.events >= sh.h.s.opts.InboxSize {
		sh.suspects[ev.Room] = struct{}{}
		sh.mu.Unlock()
		sh.h.s.m.liveDropped.Inc()
		sh.signal()
		return
	}
	sh.inbox = append(sh.inbox, item{kind: itemEvent, ev: ev})
	sh.events++
	sh.mu.Unlock()
	sh.signal()
}

func (sh *shard) signal() {
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

func (sh *shard) run() {
	defer sh.h.wg.Done()
	var tick <-chan time.Time
	if d := sh.h.s.opts.TailCheckInterval; d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		tick = t.C
	}
	defer func() {
		if sh.gapTimer != nil {
			sh.gapTimer.Stop()
		}
	}()
	for {
		select {
		case <-sh.wake:
		case <-tick:
			sh.now = time.Now()
			sh.tailCheck(false)
		case <-sh.h.ctx.Done():
			sh.failWaiters()
			return
		}
		sh.mu.Lock()
		items := sh.inbox
		sh.inbox, sh.spare = sh.spare[:0], nil
		sh.events = 0
		var suspects []string
		for r := range sh.suspects {
			suspects = append(suspects, r)
			delete(sh.suspects, r)
		}
		sh.mu.Unlock()
		sh.now = time.Now()
		for i := range items {
			sh.handle(&items[i])
			items[i] = item{}
		}
		sh.spare = items[:0]
		for _, r := range suspects {
			if rs := sh.rooms[r]; rs != nil && rs.ready {
				sh.fill(rs)
			}
		}
	}
}

// failWaiters answers the attaches still waiting when the hub stops.
func (sh *shard) failWaiters() {
	for _, rs := range sh.rooms {
		for _, w := range rs.waiting {
			w.reply <- attachResult{err: ErrClosed}
		}
		rs.waiting = nil
	}
	sh.mu.Lock()
	for _, it := range sh.inbox {
		if it.reply != nil {
			it.reply <- attachResult{err: ErrClosed}
		}
	}
	sh.inbox = nil
	sh.mu.Unlock()
}

func (sh *shard) handle(it *item) {
	switch it.kind {
	case itemEvent:
		sh.onEvent(it.ev)
	case itemAttach:
		sh.attach(it.room, it.l, it.reply)
	case itemDetach:
		sh.detach(it.room, it.l)
		it.reply <- attachResult{}
	case itemInit:
		sh.initDone(it.room, it.head, it.err)
	case itemFill:
		sh.fillDone(it.room, &it.page, it.err)
	case itemHeads:
		sh.headsDone(it.rooms, it.heads, it.err)
	case itemGapTick:
		sh.gapArmed = false
		sh.gapTick()
	case itemCheckAll:
		sh.tailCheck(true)
	case itemBarrier: // what was queued before it is done
		it.reply <- attachResult{}
	}
}

func (sh *shard) newRoom(room string) *roomState {
	rs := &roomState{room: room, scope: zps.ScopeOf(room), lastEvent: sh.now}
	sh.rooms[room] = rs
	sh.h.activeRooms.Add(1)
	return rs
}

func (sh *shard) dropRoom(rs *roomState) {
	delete(sh.rooms, rs.room)
	delete(sh.gaps, rs)
	sh.h.activeRooms.Add(-1)
}

// unused reports whether nothing on this node needs rs any more.
func (sh *shard) unused(rs *roomState) bool {
	return len(rs.listeners) == 0 && len(rs.waiting) == 0 && !sh.h.hasScope(rs.scope)
}

func (sh *shard) onEvent(ev *Event) {
	rs := sh.rooms[ev.Room]
	if rs == nil {
		if !sh.h.hasScope(zps.ScopeOf(ev.Room)) {
			return // a late message for a room nobody here follows any more
		}
		// Followed only through scope:*: start at the first event seen.
		rs = sh.newRoom(ev.Room)
		rs.ready, rs.pos, rs.checkedPos = true, ev.Sequence-1, ev.Sequence-1
	}
	rs.lastEvent = sh.now
	if !rs.ready {
		sh.hold(rs, ev)
		return
	}
	switch {
	case ev.Sequence <= rs.pos:
		sh.h.s.m.liveDuplicates.Inc()
	case ev.Sequence == rs.pos+1:
		sh.deliver(rs, ev)
		sh.drain(rs)
	default:
		if !sh.hold(rs, ev) {
			sh.fill(rs) // pending is full: read the gap now
			return
		}
		sh.armGap(rs)
	}
}

// hold keeps an out-of-order event in pending; false if pending is full
// (the event is in the store and will be read from it).
func (sh *shard) hold(rs *roomState, ev *Event) bool {
	if rs.pending == nil {
		rs.pending = make(map[uint64]*Event)
	}
	if _, dup := rs.pending[ev.Sequence]; dup {
		sh.h.s.m.liveDuplicates.Inc()
		return true
	}
	if len(rs.pending) >= sh.h.s.opts.MaxPending {
		return false
	}
	rs.pending[ev.Sequence] = ev
	return true
}

// deliver hands ev, the room's next event, to its listeners and its
// scope's.
func (sh *shard) deliver(rs *roomState, ev *Event) {
	rs.pos = ev.Sequence
	for _, l := range rs.listeners {
		l.fn(ev)
	}
	for _, l := range sh.h.scopeListeners(rs.scope) {
		l.fn(ev)
	}
	sh.h.s.m.received.Inc()
}

// drain delivers pending events that follow pos and forgets those at or
// before it; what remains is a gap.
func (sh *shard) drain(rs *roomState) {
	if len(rs.pending) == 0 {
		sh.clearGap(rs)
		return
	}
	for seq := range rs.pending {
		if seq <= rs.pos {
			delete(rs.pending, seq)
		}
	}
	for {
		ev := rs.pending[rs.pos+1]
		if ev == nil {
			break
		}
		delete(rs.pending, ev.Sequence)
		sh.deliver(rs, ev)
	}
	if len(rs.pending) == 0 {
		sh.clearGap(rs)
	} else {
		sh.armGap(rs)
	}
}

func (sh *shard) clearGap(rs *roomState) {
	rs.gapAt = time.Time{}
	delete(sh.gaps, rs)
}

// armGap schedules a read of rs's gap GapTimeout from now, if none is.
func (sh *shard) armGap(rs *roomState) {
	if !rs.gapAt.IsZero() {
		return
	}
	rs.gapAt = sh.now.Add(sh.h.s.opts.GapTimeout)
	sh.gaps[rs] = struct{}{}
	sh.armTimer(sh.h.s.opts.GapTimeout)
}

func (sh *shard) armTimer(d time.Duration) {
	if sh.gapArmed {
		return
	}
	sh.gapArmed = true
	if sh.gapTimer == nil {
		sh.gapTimer = time.AfterFunc(d, func() { sh.post(item{kind: itemGapTick}) })
	} else {
		sh.gapTimer.Reset(d)
	}
}

func (sh *shard) gapTick() {
	var next time.Duration
	for rs := range sh.gaps {
		if rs.filling {
			continue
		}
		if wait := rs.gapAt.Sub(sh.now); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		sh.fill(rs)
	}
	if next > 0 {
		sh.armTimer(next)
	}
}

// fill reads the events after rs.pos from the store, off the shard
// goroutine.
func (sh *shard) fill(rs *roomState) {
	if rs.filling || !rs.ready {
		return
	}
	rs.filling = true
	sh.h.s.m.gaps.Inc()
	room, after := rs.room, rs.pos
	h := sh.h
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		p, err := h.s.st.Read(h.ctx, store.ReadRequest{Room: room, After: after, Limit: h.s.opts.FillBatch})
		sh.post(item{kind: itemFill, room: room, page: p, err: err})
	}()
}

func (sh *shard) fillDone(room string, p *store.Page, err error) {
	rs := sh.rooms[room]
	if rs == nil {
		return
	}
	rs.filling = false
	if err != nil {
		sh.h.s.m.errors.Inc()
		sh.h.s.opts.Logger.Warn("streams: reading a gap from the store failed; retrying", "room", room, "err", err)
		rs.gapAt = time.Time{}
		sh.armGap(rs)
		return
	}
	for i := range p.Events {
		if ev := &p.Events[i]; ev.Sequence > rs.pos {
			sh.deliver(rs, ev)
		}
	}
	// Sequences up to Last that the page did not hold are gone
	// (retention): skip them.
	rs.pos = max(rs.pos, p.Last)
	sh.drain(rs)
	if len(rs.pending) > 0 && p.Last < p.Head {
		sh.fill(rs) // the gap is longer than a page
	}
	if sh.unused(rs) && len(rs.pending) == 0 {
		sh.dropRoom(rs)
	}
}

func (sh *shard) attach(room string, l *listener, reply chan attachResult) {
	rs := sh.rooms[room]
	if rs == nil {
		rs = sh.newRoom(room)
	}
	rs.listeners = append(rs.listeners, l)
	sh.h.activeListeners.Add(1)
	if rs.ready {
		reply <- attachResult{pos: rs.pos}
		return
	}
	rs.waiting = append(rs.waiting, waiter{l: l, reply: reply})
	if rs.initing {
		return
	}
	// The node's topic subscription is live (Listen retained it first), so
	// every event stored after this read of the head reaches the room.
	rs.initing = true
	h := sh.h
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		heads, err := h.s.st.Heads(h.ctx, []string{room})
		var head uint64
		if err == nil {
			head = heads[0]
		}
		sh.post(item{kind: itemInit, room: room, head: head, err: err})
	}()
}

func (sh *shard) initDone(room string, head uint64, err error) {
	rs := sh.rooms[room]
	if rs == nil {
		return
	}
	rs.initing = false
	if err != nil {
		for _, w := range rs.waiting {
			rs.listeners = slices.DeleteFunc(rs.listeners, func(x *listener) bool { return x == w.l })
			sh.h.activeListeners.Add(-1)
			w.reply <- attachResult{err: err}
		}
		rs.waiting = nil
		if sh.unused(rs) {
			sh.dropRoom(rs)
		}
		return
	}
	rs.ready, rs.pos, rs.checkedPos = true, head, head
	for _, w := range rs.waiting {
		w.reply <- attachResult{pos: head}
	}
	rs.waiting = nil
	sh.drain(rs)
}

func (sh *shard) detach(room string, l *listener) {
	rs := sh.rooms[room]
	if rs == nil {
		return
	}
	n := len(rs.listeners)
	rs.listeners = slices.DeleteFunc(rs.listeners, func(x *listener) bool { return x == l })
	if len(rs.listeners) < n {
		sh.h.activeListeners.Add(-1)
	}
	rs.waiting = slices.DeleteFunc(rs.waiting, func(w waiter) bool { return w.l == l })
	if sh.unused(rs) && !rs.filling && !rs.initing {
		sh.dropRoom(rs)
	}
}

// tailCheck compares rooms with their heads in the store: with all, every
// ready room (after a reconnect); else those idle since the previous tick.
// It also forgets rooms followed only through scope:* that went idle.
func (sh *shard) tailCheck(all bool) {
	var rooms []string
	for _, rs := range sh.rooms {
		if !rs.ready {
			continue
		}
		if len(rs.listeners) == 0 && len(rs.pending) == 0 && !rs.filling && !rs.checking &&
			(!sh.h.hasScope(rs.scope) || sh.now.Sub(rs.lastEvent) > sh.h.s.opts.WildcardRoomIdle) {
			sh.dropRoom(rs)
			continue
		}
		idle := rs.pos == rs.checkedPos
		rs.checkedPos = rs.pos
		if rs.filling || rs.checking || !(idle || all) {
			continue
		}
		rs.checking = true
		rooms = append(rooms, rs.room)
	}
	if len(rooms) == 0 {
		return
	}
	h := sh.h
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		heads, err := h.s.st.Heads(h.ctx, rooms)
		sh.post(item{kind: itemHeads, rooms: rooms, heads: heads, err: err})
	}()
}

func (sh *shard) headsDone(rooms []string, heads []uint64, err error) {
	if err != nil && sh.h.ctx.Err() == nil {
		sh.h.s.m.errors.Inc()
		sh.h.s.opts.Logger.Warn("streams: reading heads failed", "rooms", len(rooms), "err", err)
	}
	for i, room := range rooms {
		rs := sh.rooms[room]
		if rs == nil {
			continue
		}
		rs.checking = false
		if err == nil && heads[i] > rs.pos {
			sh.fill(rs)
		}
	}
}
