package memory

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/protocol/jsonx"
)

type roomShard struct {
	mu sync.RWMutex // taken after a connShard.mu, never before; nothing is taken under it
	m  map[string]*roomState
	// next is a lower bound of the earliest presence or state deadline in
	// the shard (math.MaxInt64 if none), so that the sweeper skips shards
	// with nothing due. Refreshes only move deadlines later, so it stays a
	// lower bound without being recomputed.
	next int64
	_    [24]byte
}

// roomState is everything keyed by one room name. It is deleted when it has
// no member, no metadata, no presence entry and no presence state.
type roomState struct {
	members  map[string]struct{}
	meta     []byte                // nil if none
	presence map[string]int64      // connID → deadline
	states   map[string]stateEntry // connID → presence state
}

type stateEntry struct {
	value    []byte
	deadline int64 // 0: no expiry
}

func (e stateEntry) live(now int64) bool { return e.deadline == 0 || e.deadline > now }

func (r *roomState) empty() bool {
	return len(r.members) == 0 && r.meta == nil && len(r.presence) == 0 && len(r.states) == 0
}

// getLocked returns room's state, creating it. Lock is held on entry.
func (s *roomShard) getLocked(room string) *roomState {
	r := s.m[room]
	if r == nil {
		r = &roomState{}
		s.m[room] = r
	}
	return r
}

// gcLocked deletes room's state if it is empty. Lock is held on entry.
func (s *roomShard) gcLocked(room string, r *roomState) {
	if r.empty() {
		delete(s.m, room)
	}
}

// armLocked notes a new deadline for the sweeper. Lock is held on entry.
func (s *roomShard) armLocked(d int64) {
	if d < s.next {
		s.next = d
	}
}

// sweep removes the shard's lapsed presence entries (with their states) and
// lapsed states, appends their expiries to out and returns it with the
// shard's earliest remaining deadline (math.MaxInt64 if none).
func (s *roomShard) sweep(now int64, out []coord.Expiry) ([]coord.Expiry, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now < s.next {
		return out, s.next
	}
	next := int64(math.MaxInt64)
	for room, r := range s.m {
		for conn, d := range r.presence {
			if d > now {
				next = min(next, d)
				continue
			}
			delete(r.presence, conn)
			delete(r.states, conn) // silently: the leave covers it
			out = append(out, coord.Expiry{Kind: coord.ExpiredPresence, Room: room, ConnID: conn})
		}
		for conn, st := range r.states {
			if st.deadline == 0 {
				continue
			}
			if st.deadline > now {
				next = min(next, st.deadline)
				continue
			}
			delete(r.states, conn)
			out = append(out, coord.Expiry{Kind: coord.ExpiredState, Room: room, ConnID: conn})
		}
		s.gcLocked(room, r)
	}
	s.next = next
	return out, next
}

// AddToRoom implements coord.Rooms.
func (m *Memory) AddToRoom(ctx context.Context, room, connID string) (bool, error) {
	if err := m.check(ctx); err != nil {
		return false, err
	}
	if room == "" {
		return false, errEmpty("AddToRoom", "room")
	}
	if connID == "" {
		return false, errEmpty("AddToRoom", "connection id")
	}
	cs := m.connShard(connID)
	cs.mu.Lock()
	c := cs.getLocked(connID)
	rs := m.roomShard(room)
	rs.mu.Lock()
	r := rs.getLocked(room)
	_, was := r.members[connID]
	if !was {
		if r.members == nil {
			r.members = make(map[string]struct{})
		}
		r.members[connID] = struct{}{}
	}
	rs.mu.Unlock()
	x := c.extra()
	if x.rooms == nil {
		x.rooms = make(map[string]struct{})
	}
	x.rooms[room] = struct{}{}
	cs.mu.Unlock()
	return !was, nil
}

// RemoveFromRoom implements coord.Rooms.
func (m *Memory) RemoveFromRoom(ctx context.Context, room, connID string) (bool, error) {
	if err := m.check(ctx); err != nil {
		return false, err
	}
	cs := m.connShard(connID)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return m.removeMemberLocked(cs, room, connID), nil
}

// removeMemberLocked removes connID from room on both sides. cs (connID's
// shard) is locked on entry.
func (m *Memory) removeMemberLocked(cs *connShard, room, connID string) bool {
	if c := cs.m[connID]; c != nil {
		delete(c.rooms(), room)
		cs.gcLocked(connID, c)
	}
	rs := m.roomShard(room)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.m[room]
	if r == nil {
		return false
	}
	_, was := r.members[connID]
	delete(r.members, connID)
	rs.gcLocked(room, r)
	return was
}

// IsInRoom implements coord.Rooms.
func (m *Memory) IsInRoom(ctx context.Context, room, connID string) (bool, error) {
	if err := m.check(ctx); err != nil {
		return false, err
	}
	rs := m.roomShard(room)
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if r := rs.m[room]; r != nil {
		_, ok := r.members[connID]
		return ok, nil
	}
	return false, nil
}

// RoomMembers implements coord.Rooms.
func (m *Memory) RoomMembers(ctx context.Context, room string) ([]string, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	rs := m.roomShard(room)
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if r := rs.m[room]; r != nil {
		return keys(r.members), nil
	}
	return []string{}, nil
}

// ConnectionRooms implements coord.Rooms.
func (m *Memory) ConnectionRooms(ctx context.Context, connID string) ([]string, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	cs := m.connShard(connID)
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	if c := cs.m[connID]; c != nil {
		return keys(c.rooms()), nil
	}
	return []string{}, nil
}

// RemoveFromAllRooms implements coord.Rooms.
func (m *Memory) RemoveFromAllRooms(ctx context.Context, connID string) ([]string, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	cs := m.connShard(connID)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.m[connID]
	if c == nil {
		return []string{}, nil
	}
	rooms := keys(c.rooms())
	for _, room := range rooms {
		m.removeMemberLocked(cs, room, connID)
	}
	return rooms, nil
}

// ClearRoom implements coord.Rooms. Members added while it runs may stay:
// they count as joining after the clear.
func (m *Memory) ClearRoom(ctx context.Context, room string) ([]string, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	members, err := m.RoomMembers(ctx, room)
	if err != nil {
		return nil, err
	}
	removed := members[:0]
	for _, id := range members {
		cs := m.connShard(id)
		cs.mu.Lock()
		if m.removeMemberLocked(cs, room, id) {
			removed = append(removed, id)
		}
		cs.mu.Unlock()
	}
	rs := m.roomShard(room)
	rs.mu.Lock()
	if r := rs.m[room]; r != nil {
		r.meta = nil
		rs.gcLocked(room, r)
	}
	rs.mu.Unlock()
	return removed, nil
}

// Rooms implements coord.Admin.
func (m *Memory) Rooms(ctx context.Context) ([]string, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	out := []string{}
	for i := range m.rooms {
		rs := &m.rooms[i]
		rs.mu.RLock()
		for name, r := range rs.m {
			if len(r.members) > 0 {
				out = append(out, name)
			}
		}
		rs.mu.RUnlock()
	}
	return out, nil
}

// SetRoomMetadata implements coord.RoomMeta.
func (m *Memory) SetRoomMetadata(ctx context.Context, room string, meta []byte) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	if room == "" {
		return errEmpty("SetRoomMetadata", "room")
	}
	if len(meta) == 0 {
		return errEmpty("SetRoomMetadata", "metadata")
	}
	meta = clone(meta)
	rs := m.roomShard(room)
	rs.mu.Lock()
	rs.getLocked(room).meta = meta
	rs.mu.Unlock()
	return nil
}

// RoomMetadata implements coord.RoomMeta.
func (m *Memory) RoomMetadata(ctx context.Context, room string) ([]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	return m.roomMeta(room), nil
}

func (m *Memory) roomMeta(room string) []byte {
	rs := m.roomShard(room)
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if r := rs.m[room]; r != nil {
		return r.meta
	}
	return nil
}

// UpdateRoomMetadata implements coord.RoomMeta. The merge runs without the
// lock; the result is stored only if the metadata did not change meanwhile
// (compare-and-set on the stored slice), else it is redone.
func (m *Memory) UpdateRoomMetadata(ctx context.Context, room string, partial []byte) ([]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	if room == "" {
		return nil, errEmpty("UpdateRoomMetadata", "room")
	}
	rs := m.roomShard(room)
	for {
		cur := m.roomMeta(room)
		merged, err := jsonx.MergeObjects(cur, partial)
		if err != nil {
			return nil, fmt.Errorf("coord/memory: UpdateRoomMetadata %q: %w", room, err)
		}
		rs.mu.Lock()
		r := rs.getLocked(room)
		if sameSlice(r.meta, cur) {
			r.meta = merged
			rs.mu.Unlock()
			return merged, nil
		}
		rs.gcLocked(room, r)
		rs.mu.Unlock()
	}
}

// sameSlice reports whether a and b are the same stored value (identity,
// not content: stored values are never modified in place).
func sameSlice(a, b []byte) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return len(a) == len(b) && &a[0] == &b[0]
}

// AllRoomMetadata implements coord.RoomMeta.
func (m *Memory) AllRoomMetadata(ctx context.Context) (map[string][]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	out := make(map[string][]byte)
	for i := range m.rooms {
		rs := &m.rooms[i]
		rs.mu.RLock()
		for name, r := range rs.m {
			if r.meta != nil {
				out[name] = r.meta
			}
		}
		rs.mu.RUnlock()
	}
	return out, nil
}
