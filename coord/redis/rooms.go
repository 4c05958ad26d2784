package redis

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/rueidis"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/protocol/jsonx"
)

// AddToRoom adds connID to room: SADD on the room and on the connection's
// room list, in one round trip (on a cluster they live on different slots,
// so, as in Mesh, the pair is not atomic; each set is).
func (c *Coordinator) AddToRoom(ctx context.Context, room, connID string) (bool, error) {
	const op = "AddToRoom"
	if err := c.check(ctx, op); err != nil {
		return false, err
	}
	if room == "" {
		return false, invalid(op, "empty room")
	}
	if connID == "" {
		return false, invalid(op, "empty connection id")
	}
	res := c.run(ctx,
		cmdOp(c.client.B().Sadd().Key(c.l.room(room)).Member(connID).Build()),
		cmdOp(c.client.B().Sadd().Key(c.l.connRooms(connID)).Member(room).Build()))
	if err := firstErr(res); err != nil {
		return false, c.fail(ctx, op, err)
	}
	n, _ := res[0].AsInt64()
	return n == 1, nil
}

// RemoveFromRoom removes connID from room, one round trip.
func (c *Coordinator) RemoveFromRoom(ctx context.Context, room, connID string) (bool, error) {
	const op = "RemoveFromRoom"
	if err := c.check(ctx, op); err != nil {
		return false, err
	}
	res := c.run(ctx,
		cmdOp(c.client.B().Srem().Key(c.l.room(room)).Member(connID).Build()),
		cmdOp(c.client.B().Srem().Key(c.l.connRooms(connID)).Member(room).Build()))
	if err := firstErr(res); err != nil {
		return false, c.fail(ctx, op, err)
	}
	n, _ := res[0].AsInt64()
	return n == 1, nil
}

// IsInRoom reports whether connID is a member of room.
func (c *Coordinator) IsInRoom(ctx context.Context, room, connID string) (bool, error) {
	const op = "IsInRoom"
	if err := c.check(ctx, op); err != nil {
		return false, err
	}
	in, err := c.run1(ctx, cmdOp(c.client.B().Sismember().Key(c.l.room(room)).Member(connID).Build())).AsBool()
	return in, c.fail(ctx, op, err)
}

// RoomMembers returns room's members.
func (c *Coordinator) RoomMembers(ctx context.Context, room string) ([]string, error) {
	const op = "RoomMembers"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	m, err := c.run1(ctx, cmdOp(c.client.B().Smembers().Key(c.l.room(room)).Build())).AsStrSlice()
	return m, c.fail(ctx, op, err)
}

// ConnectionRooms returns the rooms connID is a member of.
func (c *Coordinator) ConnectionRooms(ctx context.Context, connID string) ([]string, error) {
	const op = "ConnectionRooms"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	m, err := c.run1(ctx, cmdOp(c.client.B().Smembers().Key(c.l.connRooms(connID)).Build())).AsStrSlice()
	return m, c.fail(ctx, op, err)
}

// take returns a set's members and deletes it, atomically.
func (c *Coordinator) take(ctx context.Context, key string) ([]string, error) {
	res, err := c.run1(ctx, c.call(scriptSetTake, []string{key})).ToArray()
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return nil, nil
	}
	return res[0].AsStrSlice()
}

// RemoveFromAllRooms takes the connection's room list, then removes it from
// each room's set in one pipeline: two round trips.
func (c *Coordinator) RemoveFromAllRooms(ctx context.Context, connID string) ([]string, error) {
	const op = "RemoveFromAllRooms"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	rooms, err := c.take(ctx, c.l.connRooms(connID))
	if err != nil || len(rooms) == 0 {
		return rooms, c.fail(ctx, op, err)
	}
	ops := make([]rop, len(rooms))
	for i, room := range rooms {
		ops[i] = cmdOp(c.client.B().Srem().Key(c.l.room(room)).Member(connID).Build())
	}
	return rooms, c.fail(ctx, op, firstErr(c.run(ctx, ops...)))
}

// ClearRoom takes the room's member set, then removes the room from each
// member's room list and deletes the room's metadata in one pipeline.
func (c *Coordinator) ClearRoom(ctx context.Context, room string) ([]string, error) {
	const op = "ClearRoom"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	members, err := c.take(ctx, c.l.room(room))
	if err != nil {
		return nil, c.fail(ctx, op, err)
	}
	ops := make([]rop, 0, len(members)+1)
	for _, id := range members {
		ops = append(ops, cmdOp(c.client.B().Srem().Key(c.l.connRooms(id)).Member(room).Build()))
	}
	ops = append(ops, cmdOp(c.client.B().Del().Key(c.l.roomMeta(room)).Build()))
	return members, c.fail(ctx, op, firstErr(c.run(ctx, ops...)))
}

// Rooms lists the rooms with members by SCAN over every master: a rare,
// administrative call (Mesh uses KEYS for its metadata listing).
func (c *Coordinator) Rooms(ctx context.Context) ([]string, error) {
	const op = "Rooms"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	keys, err := c.scan(ctx, roomPattern)
	for i := range keys {
		keys[i] = strings.TrimPrefix(keys[i], "mesh:room:")
	}
	return keys, c.fail(ctx, op, err)
}

// scan returns every key matching pattern, on every node.
func (c *Coordinator) scan(ctx context.Context, pattern string) ([]string, error) {
	clients := []rueidis.Client{c.client}
	if c.cluster {
		clients = clients[:0]
		for _, n := range c.client.Nodes() {
			clients = append(clients, n)
		}
	}
	seen := make(map[string]bool)
	var out []string
	for _, cl := range clients {
		var cursor uint64
		for {
			e, err := cl.Do(ctx, cl.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
			c.st.roundTrip(1)
			if err != nil {
				if re, ok := rueidis.IsRedisErr(err); ok && strings.HasPrefix(re.Error(), "READONLY") {
					break
				}
				return nil, err
			}
			for _, k := range e.Elements {
				if !seen[k] {
					seen[k] = true
					out = append(out, k)
				}
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return out, nil
}

// SetRoomMetadata replaces room's metadata (Mesh: HSET mesh:roommeta:<room>
// data <json>).
func (c *Coordinator) SetRoomMetadata(ctx context.Context, room string, meta []byte) error {
	const op = "SetRoomMetadata"
	if err := c.check(ctx, op); err != nil {
		return err
	}
	if room == "" {
		return invalid(op, "empty room")
	}
	if len(meta) == 0 {
		return invalid(op, "empty metadata")
	}
	r := c.run1(ctx, cmdOp(c.client.B().Hset().Key(c.l.roomMeta(room)).FieldValue().
		FieldValue(roomMetaField, rueidis.BinaryString(meta)).Build()))
	return c.fail(ctx, op, r.Error())
}

// RoomMetadata returns room's metadata, nil if none.
func (c *Coordinator) RoomMetadata(ctx context.Context, room string) ([]byte, error) {
	const op = "RoomMetadata"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	b, err := c.roomMeta(ctx, room)
	return b, c.fail(ctx, op, err)
}

func (c *Coordinator) roomMeta(ctx context.Context, room string) ([]byte, error) {
	b, err := c.run1(ctx, cmdOp(c.client.B().Hget().Key(c.l.roomMeta(room)).Field(roomMetaField).Build())).AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	return b, err
}

// UpdateRoomMetadata merges partial into room's metadata with a
// compare-and-set script: read, merge in Go (jsonx.MergeObjects keeps key
// order and value bytes, which Lua's cjson would not), store if unchanged,
// else merge into the value the script returned and try again.
func (c *Coordinator) UpdateRoomMetadata(ctx context.Context, room string, partial []byte) ([]byte, error) {
	const op = "UpdateRoomMetadata"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	if room == "" {
		return nil, invalid(op, "empty room")
	}
	cur, err := c.roomMeta(ctx, room)
	if err != nil {
		return nil, c.fail(ctx, op, err)
	}
	key := []string{c.l.roomMeta(room)}
	for range c.opts.CASAttempts {
		merged, err := jsonx.MergeObjects(cur, partial)
		if err != nil {
			return nil, fmt.Errorf("coord/redis: %s: %w", op, err)
		}
		has := "0"
		if cur != nil {
			has = "1"
		}
		res, err := c.run1(ctx, c.call(scriptMetaCAS, key, rueidis.BinaryString(cur), rueidis.BinaryString(merged), has)).ToArray()
		if err != nil {
			return nil, c.fail(ctx, op, err)
		}
		if ok, _ := res[0].AsInt64(); ok == 1 {
			return merged, nil
		}
		cur = nil
		if len(res) > 1 {
			cur, _ = res[1].AsBytes()
		}
	}
	return nil, fmt.Errorf("coord/redis: %s %q: %w", op, room, coord.ErrConflict)
}

// AllRoomMetadata lists room metadata by SCAN, then reads it in one
// pipeline.
func (c *Coordinator) AllRoomMetadata(ctx context.Context) (map[string][]byte, error) {
	const op = "AllRoomMetadata"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	keys, err := c.scan(ctx, roomMetaPattern)
	if err != nil {
		return nil, c.fail(ctx, op, err)
	}
	out := make(map[string][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	ops := make([]rop, len(keys))
	for i, k := range keys {
		ops[i] = cmdOp(c.client.B().Hget().Key(k).Field(roomMetaField).Build())
	}
	for i, r := range c.run(ctx, ops...) {
		b, err := r.AsBytes()
		if rueidis.IsRedisNil(err) {
			continue
		}
		if err != nil {
			return nil, c.fail(ctx, op, err)
		}
		out[strings.TrimPrefix(keys[i], "mesh:roommeta:")] = b
	}
	return out, nil
}
