package redis

import (
	"context"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/meshfast/meshfast/coord"
)

// Presence keeps, per room, a sorted set of deadlines in Redis time
// (member "p"+id for an entry, "s"+id for a state with an expiry), Mesh's
// member set and Mesh's state keys; each call is one script on the room's
// keys, one round trip. Reads take only members whose deadline has not
// passed, so a lapsed entry is gone from reads at once. Expiries are found
// by the sweeper (see sweeper), never through keyspace notifications.

func ms(d time.Duration) string {
	n := (d + time.Millisecond - 1) / time.Millisecond
	return strconv.FormatInt(int64(max(n, 1)), 10)
}

// JoinPresence marks connID present in room for ttl.
func (c *Coordinator) JoinPresence(ctx context.Context, room, connID string, ttl time.Duration) (bool, error) {
	const op = "JoinPresence"
	if err := c.check(ctx, op); err != nil {
		return false, err
	}
	if room == "" {
		return false, invalid(op, "empty room")
	}
	if connID == "" {
		return false, invalid(op, "empty connection id")
	}
	if ttl <= 0 {
		return false, invalid(op, "ttl "+ttl.String())
	}
	k := c.l.presence(room)
	n, err := c.run1(ctx, c.call(scriptPresenceJoin, []string{k.deadlines, k.members, k.due}, connID, ms(ttl), room)).AsInt64()
	if err != nil {
		return false, c.fail(ctx, op, err)
	}
	c.sweep.arm(ttl)
	return n == 1, nil
}

// RefreshPresence re-arms every entry in one round trip: one script per
// room, sent together (on a cluster, each master gets its share in
// parallel).
func (c *Coordinator) RefreshPresence(ctx context.Context, entries []coord.PresenceEntry) error {
	const op = "RefreshPresence"
	if err := c.check(ctx, op); err != nil {
		return err
	}
	earliest := time.Duration(math.MaxInt64)
	for _, e := range entries {
		if e.TTL <= 0 {
			return invalid(op, "ttl "+e.TTL.String())
		}
		earliest = min(earliest, e.TTL)
	}
	if len(entries) == 0 {
		return nil
	}
	byRoom := make(map[string][]string)
	var rooms []string
	for _, e := range entries {
		args, ok := byRoom[e.Room]
		if !ok {
			args = []string{e.Room}
			rooms = append(rooms, e.Room)
		}
		byRoom[e.Room] = append(args, e.ConnID, ms(e.TTL))
	}
	ops := make([]rop, len(rooms))
	for i, room := range rooms {
		k := c.l.presence(room)
		ops[i] = c.call(scriptPresenceRefresh, []string{k.deadlines, k.due}, byRoom[room]...)
	}
	if err := firstErr(c.run(ctx, ops...)); err != nil {
		return c.fail(ctx, op, err)
	}
	c.sweep.arm(earliest)
	return nil
}

func (c *Coordinator) leaveOp(room, connID string) rop {
	k := c.l.presence(room)
	return c.call(scriptPresenceLeave, []string{k.deadlines, k.members, k.statePrefix + connID}, connID)
}

// LeavePresence removes connID's presence and state in room.
func (c *Coordinator) LeavePresence(ctx context.Context, room, connID string) (bool, error) {
	const op = "LeavePresence"
	if err := c.check(ctx, op); err != nil {
		return false, err
	}
	n, err := c.run1(ctx, c.leaveOp(room, connID)).AsInt64()
	return n == 1, c.fail(ctx, op, err)
}

// presenceRead runs the read script: the present connections and, with
// states, their states.
func (c *Coordinator) presenceRead(ctx context.Context, room string, states bool) (coord.PresenceSnapshot, error) {
	k := c.l.presence(room)
	flag := "0"
	if states {
		flag = "1"
	}
	res, err := c.run1(ctx, c.call(scriptPresenceRead, []string{k.deadlines}, k.statePrefix, flag)).ToArray()
	if err != nil {
		return coord.PresenceSnapshot{}, err
	}
	var snap coord.PresenceSnapshot
	if len(res) > 0 {
		if snap.Present, err = res[0].AsStrSlice(); err != nil {
			return snap, err
		}
	}
	snap.States = make(map[string][]byte)
	if len(res) > 1 {
		kv, err := res[1].ToArray()
		if err != nil {
			return snap, err
		}
		for i := 0; i+1 < len(kv); i += 2 {
			id, _ := kv[i].ToString()
			snap.States[id], _ = kv[i+1].AsBytes()
		}
	}
	return snap, nil
}

// PresentConnections returns room's present connections.
func (c *Coordinator) PresentConnections(ctx context.Context, room string) ([]string, error) {
	const op = "PresentConnections"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	snap, err := c.presenceRead(ctx, room, false)
	return snap.Present, c.fail(ctx, op, err)
}

// PresenceStates returns the states of room's present connections.
func (c *Coordinator) PresenceStates(ctx context.Context, room string) (map[string][]byte, error) {
	const op = "PresenceStates"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	snap, err := c.presenceRead(ctx, room, true)
	return snap.States, c.fail(ctx, op, err)
}

// PresenceSnapshot returns the present connections and their states in one
// script, so one consistent read.
func (c *Coordinator) PresenceSnapshot(ctx context.Context, room string) (coord.PresenceSnapshot, error) {
	const op = "PresenceSnapshot"
	if err := c.check(ctx, op); err != nil {
		return coord.PresenceSnapshot{}, err
	}
	snap, err := c.presenceRead(ctx, room, true)
	return snap, c.fail(ctx, op, err)
}

// SetPresenceState stores connID's state in room, with an expiry that the
// sweeper reports when expireAfter > 0.
func (c *Coordinator) SetPresenceState(ctx context.Context, room, connID string, state []byte, expireAfter time.Duration) error {
	const op = "SetPresenceState"
	if err := c.check(ctx, op); err != nil {
		return err
	}
	switch {
	case room == "":
		return invalid(op, "empty room")
	case connID == "":
		return invalid(op, "empty connection id")
	case len(state) == 0:
		return invalid(op, "empty state")
	case expireAfter < 0:
		return invalid(op, "expireAfter "+expireAfter.String())
	}
	after := "0"
	if expireAfter > 0 {
		after = ms(expireAfter)
	}
	k := c.l.presence(room)
	r := c.run1(ctx, c.call(scriptPresenceStateSet, []string{k.statePrefix + connID, k.deadlines, k.due},
		connID, rueidis.BinaryString(state), after, room))
	if err := r.Error(); err != nil {
		return c.fail(ctx, op, err)
	}
	if expireAfter > 0 {
		c.sweep.arm(expireAfter)
	}
	return nil
}

// ClearPresenceState deletes connID's state in room.
func (c *Coordinator) ClearPresenceState(ctx context.Context, room, connID string) (bool, error) {
	const op = "ClearPresenceState"
	if err := c.check(ctx, op); err != nil {
		return false, err
	}
	k := c.l.presence(room)
	n, err := c.run1(ctx, c.call(scriptPresenceStateClear, []string{k.statePrefix + connID, k.deadlines}, connID)).AsInt64()
	return n == 1, c.fail(ctx, op, err)
}

// PresenceState returns connID's state in room, nil if none.
func (c *Coordinator) PresenceState(ctx context.Context, room, connID string) ([]byte, error) {
	const op = "PresenceState"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	b, err := c.run1(ctx, cmdOp(c.client.B().Get().Key(c.l.presence(room).statePrefix+connID).Build())).AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	return b, c.fail(ctx, op, err)
}

// OnPresenceExpiry registers h; this node's expiries (those its sweeps
// won) go to the earliest registered handler still registered.
func (c *Coordinator) OnPresenceExpiry(h coord.ExpiryHandler) (remove func()) {
	return c.sweep.onExpiry(h)
}

// sweeper is the one goroutine of a node that removes lapsed presence
// entries and states and reports them. A sweep is one script per
// partition, sent together: each removes and returns what lapsed in its
// partition's due rooms and says when the next room is due. Several nodes
// may sweep at once; the script's atomicity makes each lapse reported by
// exactly one of them, which is what keeps "leave" events single
// cluster-wide (Mesh: one per instance).
//
// It sleeps until the earliest deadline it knows of: the next due room a
// sweep saw, or a deadline this node armed since (wake), but at least
// SweepInterval after the last sweep and at most IdleSweepInterval, so
// deadlines armed by a node that then died are found within that.
type sweeper struct {
	c          *Coordinator
	wake       chan struct{} // capacity 1
	armed      atomic.Int64  // earliest deadline armed since planning (unix ns)
	sleepUntil atomic.Int64  // the planned wake (unix ns), MinInt64 while planning

	mu       sync.Mutex // guards handlers and nextID
	handlers []expHandler
	nextID   uint64
}

type expHandler struct {
	id uint64
	h  coord.ExpiryHandler
}

func (s *sweeper) init(c *Coordinator) {
	s.c = c
	s.wake = make(chan struct{}, 1)
	s.armed.Store(math.MaxInt64)
	s.sleepUntil.Store(math.MinInt64)
}

// arm notes that something this node wrote may lapse after d.
func (s *sweeper) arm(d time.Duration) {
	at := time.Now().Add(d).UnixNano()
	for {
		cur := s.armed.Load()
		if at >= cur || s.armed.CompareAndSwap(cur, at) {
			break
		}
	}
	if at < s.sleepUntil.Load() {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *sweeper) onExpiry(h coord.ExpiryHandler) (remove func()) {
	if h == nil {
		return func() {}
	}
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	s.handlers = append(s.handlers, expHandler{id: id, h: h})
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.handlers = slices.DeleteFunc(s.handlers, func(e expHandler) bool { return e.id == id })
			s.mu.Unlock()
		})
	}
}

func (s *sweeper) run() {
	c := s.c
	defer c.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var last time.Time
	failing := false              // log a failure once, and the recovery
	plan := time.Now().UnixNano() // sweep at start: deadlines of dead nodes
	for {
		s.sleepUntil.Store(math.MinInt64)
		if a := s.armed.Swap(math.MaxInt64); a < plan {
			plan = a
		}
		at := max(plan, last.Add(c.opts.SweepInterval).UnixNano())
		s.sleepUntil.Store(at)
		if s.armed.Load() < at {
			continue // armed while planning: plan again
		}
		t.Reset(time.Until(time.Unix(0, at)))
		select {
		case <-c.done:
			return
		case <-s.wake:
			t.Stop()
			continue
		case <-t.C:
		}
		next, err := s.sweepAll()
		last = time.Now()
		switch {
		case c.closed.Load():
		case err != nil && !failing:
			c.opts.Logger.Warn("coord/redis: presence sweeps failing; expiries wait", "err", err)
			failing = true
		case err == nil && failing:
			c.opts.Logger.Info("coord/redis: presence sweeps work again")
			failing = false
		}
		plan = last.Add(min(next, c.opts.IdleSweepInterval)).UnixNano()
	}
}

// sweepAll sweeps every partition and reports what this node won. It
// returns how long until the next room is due.
func (s *sweeper) sweepAll() (time.Duration, error) {
	c := s.c
	ctx, cancel := context.WithTimeout(c.bg, c.opts.WriteTimeout)
	defer cancel()
	parts := make([]int, c.l.partitions())
	for i := range parts {
		parts[i] = i
	}
	next := time.Duration(math.MaxInt64)
	var expired []coord.Expiry
	// A partition with more due rooms than SweepBatch says "again" (0).
	for rounds := 0; len(parts) > 0 && rounds < 64; rounds++ {
		ops := make([]rop, len(parts))
		for i, p := range parts {
			ops[i] = c.call(scriptPresenceSweep, []string{c.l.presenceDue(p)},
				c.l.presenceDeadlinesPrefix(p), c.l.presenceMembersPrefix(p), c.l.presenceStatePrefix(p),
				strconv.Itoa(c.opts.SweepBatch))
		}
		res := c.run(ctx, ops...)
		c.st.sweeps.Add(1)
		again := parts[:0]
		var firstErr error
		for i, r := range res {
			vals, err := r.ToArray()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			if len(vals) == 0 {
				continue
			}
			in, _ := vals[0].AsInt64()
			switch {
			case in == 0:
				again = append(again, parts[i])
			case in > 0:
				next = min(next, time.Duration(in)*time.Millisecond)
			}
			for j := 1; j+3 <= len(vals); j += 3 {
				kind, _ := vals[j].ToString()
				room, _ := vals[j+1].ToString()
				id, _ := vals[j+2].ToString()
				e := coord.Expiry{Kind: coord.ExpiredPresence, Room: room, ConnID: id}
				if kind == "s" {
					e.Kind = coord.ExpiredState
				}
				expired = append(expired, e)
			}
		}
		if firstErr != nil {
			s.report(expired)
			return c.opts.IdleSweepInterval, firstErr
		}
		parts = again
	}
	s.report(expired)
	if len(parts) > 0 {
		next = 0
	}
	return next, nil
}

func (s *sweeper) report(expired []coord.Expiry) {
	if len(expired) == 0 {
		return
	}
	s.c.st.expiries.Add(uint64(len(expired)))
	s.mu.Lock()
	var h coord.ExpiryHandler
	if len(s.handlers) > 0 {
		h = s.handlers[0].h
	}
	s.mu.Unlock()
	if h == nil {
		return
	}
	at := time.Now()
	for _, e := range expired {
		if s.c.closed.Load() {
			return
		}
		e.At = at
		h(e)
	}
}
