package memory

import (
	"context"
	"time"

	"github.com/meshfast/meshfast/coord"
)

// Presence lives in the room's roomState, under the room shard's lock. An
// entry is present while its deadline is after the clock; the sweeper
// removes lapsed entries and reports them.

// JoinPresence implements coord.Presence.
func (m *Memory) JoinPresence(ctx context.Context, room, connID string, ttl time.Duration) (bool, error) {
	if err := m.check(ctx); err != nil {
		return false, err
	}
	if room == "" {
		return false, errEmpty("JoinPresence", "room")
	}
	if connID == "" {
		return false, errEmpty("JoinPresence", "connection id")
	}
	if ttl <= 0 {
		return false, errTTL("JoinPresence", ttl)
	}
	rs := m.roomShard(room)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return m.joinPresenceLocked(rs, rs.getLocked(room), connID, deadline(m.nowNanos(), ttl)), nil
}

// joinPresenceLocked arms connID's entry in r until d and reports whether
// it is new. rs.mu is held.
func (m *Memory) joinPresenceLocked(rs *roomShard, r *roomState, connID string, d int64) bool {
	if r.presence == nil {
		r.presence = make(map[string]int64)
	}
	// A lapsed, unreported entry is revived (false): its expiry is then
	// never reported, so subscribers see no leave and no second join.
	_, was := r.presence[connID]
	r.presence[connID] = d
	m.armLocked(rs, d)
	return !was
}

// JoinRoom implements coord.Joins: AddToRoom, then the presence entry and
// the present list under one room lock, then the event. Everything is a
// map update here, so there is nothing to batch.
func (m *Memory) JoinRoom(ctx context.Context, room, connID string, ttl time.Duration, joinEvent []byte) (coord.RoomJoin, error) {
	if ttl < 0 {
		return coord.RoomJoin{}, errTTL("JoinRoom", ttl)
	}
	added, err := m.AddToRoom(ctx, room, connID)
	if err != nil {
		return coord.RoomJoin{}, err
	}
	j := coord.RoomJoin{Added: added}
	if ttl == 0 {
		return j, nil
	}
	now := m.nowNanos()
	rs := m.roomShard(room)
	rs.mu.Lock()
	r := rs.getLocked(room)
	j.Fresh = m.joinPresenceLocked(rs, r, connID, deadline(now, ttl))
	j.Present = presentLocked(r, now)
	rs.mu.Unlock()
	if j.Fresh && joinEvent != nil {
		err = m.publish(ctx, coord.PresenceTopic(room), joinEvent)
	}
	return j, err
}

// OnReconnect implements coord.Recovery: memory never loses state behind
// the node's back, so h is never called.
func (m *Memory) OnReconnect(coord.ReconnectHandler) (remove func()) { return func() {} }

// RefreshPresence implements coord.Presence. The shard lock is kept across
// consecutive entries of the same shard.
func (m *Memory) RefreshPresence(ctx context.Context, entries []coord.PresenceEntry) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	for _, e := range entries {
		if e.TTL <= 0 {
			return errTTL("RefreshPresence", e.TTL)
		}
	}
	now := m.nowNanos()
	var held *roomShard
	for _, e := range entries {
		rs := m.roomShard(e.Room)
		if rs != held {
			if held != nil {
				held.mu.Unlock()
			}
			rs.mu.Lock()
			held = rs
		}
		r := rs.m[e.Room]
		if r == nil {
			continue
		}
		if old, ok := r.presence[e.ConnID]; ok && old > now {
			d := deadline(now, e.TTL)
			r.presence[e.ConnID] = d
			m.armLocked(rs, d)
		}
	}
	if held != nil {
		held.mu.Unlock()
	}
	return nil
}

// LeavePresence implements coord.Presence. A lapsed, unreported entry counts
// as present: its expiry will not be reported, so the caller's leave stands
// for it.
func (m *Memory) LeavePresence(ctx context.Context, room, connID string) (bool, error) {
	if err := m.check(ctx); err != nil {
		return false, err
	}
	rs := m.roomShard(room)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.m[room]
	if r == nil {
		return false, nil
	}
	_, was := r.presence[connID]
	delete(r.presence, connID)
	delete(r.states, connID)
	rs.gcLocked(room, r)
	return was, nil
}

// PresentConnections implements coord.Presence.
func (m *Memory) PresentConnections(ctx context.Context, room string) ([]string, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	now := m.nowNanos()
	rs := m.roomShard(room)
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	return presentLocked(rs.m[room], now), nil
}

func presentLocked(r *roomState, now int64) []string {
	if r == nil {
		return []string{}
	}
	out := make([]string, 0, len(r.presence))
	for id, d := range r.presence {
		if d > now {
			out = append(out, id)
		}
	}
	return out
}

// SetPresenceState implements coord.Presence.
func (m *Memory) SetPresenceState(ctx context.Context, room, connID string, state []byte, expireAfter time.Duration) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	if room == "" {
		return errEmpty("SetPresenceState", "room")
	}
	if connID == "" {
		return errEmpty("SetPresenceState", "connection id")
	}
	if len(state) == 0 {
		return errEmpty("SetPresenceState", "state")
	}
	if expireAfter < 0 {
		return errTTL("SetPresenceState", expireAfter)
	}
	e := stateEntry{value: clone(state)}
	if expireAfter > 0 {
		e.deadline = deadline(m.nowNanos(), expireAfter)
	}
	rs := m.roomShard(room)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.getLocked(room)
	if r.states == nil {
		r.states = make(map[string]stateEntry)
	}
	r.states[connID] = e
	if e.deadline != 0 {
		m.armLocked(rs, e.deadline)
	}
	return nil
}

// ClearPresenceState implements coord.Presence.
func (m *Memory) ClearPresenceState(ctx context.Context, room, connID string) (bool, error) {
	if err := m.check(ctx); err != nil {
		return false, err
	}
	rs := m.roomShard(room)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.m[room]
	if r == nil {
		return false, nil
	}
	// A lapsed, unreported state counts: its expiry will not be reported.
	_, ok := r.states[connID]
	delete(r.states, connID)
	rs.gcLocked(room, r)
	return ok, nil
}

// PresenceState implements coord.Admin.
func (m *Memory) PresenceState(ctx context.Context, room, connID string) ([]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	now := m.nowNanos()
	rs := m.roomShard(room)
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if r := rs.m[room]; r != nil {
		if st, ok := r.states[connID]; ok && st.live(now) {
			return st.value, nil
		}
	}
	return nil, nil
}

// PresenceStates implements coord.Presence.
func (m *Memory) PresenceStates(ctx context.Context, room string) (map[string][]byte, error) {
	s, err := m.PresenceSnapshot(ctx, room)
	return s.States, err
}

// PresenceSnapshot implements coord.Presence.
func (m *Memory) PresenceSnapshot(ctx context.Context, room string) (coord.PresenceSnapshot, error) {
	if err := m.check(ctx); err != nil {
		return coord.PresenceSnapshot{}, err
	}
	now := m.nowNanos()
	rs := m.roomShard(room)
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	r := rs.m[room]
	snap := coord.PresenceSnapshot{Present: presentLocked(r, now), States: map[string][]byte{}}
	for _, id := range snap.Present {
		if st, ok := r.states[id]; ok && st.live(now) {
			snap.States[id] = st.value
		}
	}
	return snap, nil
}
