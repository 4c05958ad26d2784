package redis

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/rueidis"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/protocol/jsonx"
)

// AddToRoom adds connID to room: one script adds it to the room's member
// set and the room to the connection's room set (on a cluster both live in
// the connection's partition), so the two never disagree. One round trip.
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
	n, err := c.run1(ctx, c.call(scriptRoomAdd, []string{c.l.memberKey(room, connID), c.l.connRooms(connID)}, connID, room)).AsInt64()
	return n == 1, c.fail(ctx, op, err)
}

// RemoveFromRoom removes connID from room, both sides in one script.
func (c *Coordinator) RemoveFromRoom(ctx context.Context, room, connID string) (bool, error) {
	const op = "RemoveFromRoom"
	if err := c.check(ctx, op); err != nil {
		return false, err
	}
	n, err := c.run1(ctx, c.call(scriptRoomRemove, []string{c.l.memberKey(room, connID), c.l.connRooms(connID)}, connID, room)).AsInt64()
	return n == 1, c.fail(ctx, op, err)
}

// IsInRoom reports whether connID is a member of room (SISMEMBER).
func (c *Coordinator) IsInRoom(ctx context.Context, room, connID string) (bool, error) {
	const op = "IsInRoom"
	if err := c.check(ctx, op); err != nil {
		return false, err
	}
	in, err := c.run1(ctx, cmdOp(c.client.B().Sismember().Key(c.l.memberKey(room, connID)).Member(connID).Build())).AsBool()
	return in, c.fail(ctx, op, err)
}

// RoomMembers returns room's members: SMEMBERS of the room's set, or on a
// cluster of its share in every partition, in one round trip.
func (c *Coordinator) RoomMembers(ctx context.Context, room string) ([]string, error) {
	const op = "RoomMembers"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	m, err := c.everyPart(ctx, func(p int) rueidis.Completed {
		return c.client.B().Smembers().Key(c.l.roomPrefix(p) + room).Build()
	})
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

// RemoveFromAllRooms takes the connection's room set and removes it from
// every room, in one script (all in the connection's partition).
func (c *Coordinator) RemoveFromAllRooms(ctx context.Context, connID string) ([]string, error) {
	const op = "RemoveFromAllRooms"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	rooms, err := c.run1(ctx, c.call(scriptRoomLeaveAll, []string{c.l.connRooms(connID)},
		connID, c.l.roomPrefix(c.l.part(connID)))).AsStrSlice()
	return rooms, c.fail(ctx, op, err)
}

// ClearRoom removes every member of room and deletes its metadata: one
// script per partition (each takes its share of the members and removes the
// room from their room sets) and the DEL, in one round trip.
func (c *Coordinator) ClearRoom(ctx context.Context, room string) ([]string, error) {
	const op = "ClearRoom"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	n := c.l.partitions()
	ops := make([]rop, 0, n+1)
	for p := range n {
		ops = append(ops, c.call(scriptRoomClear, []string{c.l.roomPrefix(p) + room},
			room, c.l.connRoomsPrefix(p), connRoomsSuffix))
	}
	ops = append(ops, cmdOp(c.client.B().Del().Key(c.l.roomMeta(room)).Build()))
	res := c.run(ctx, ops...)
	if err := firstErr(res); err != nil {
		return nil, c.fail(ctx, op, err)
	}
	var members []string
	for _, r := range res[:n] {
		m, err := r.AsStrSlice()
		if err != nil {
			return nil, c.fail(ctx, op, err)
		}
		members = append(members, m...)
	}
	return members, nil
}

// Rooms lists the rooms with members by SCAN over every master: a rare,
// administrative call (Mesh uses KEYS for its metadata listing).
func (c *Coordinator) Rooms(ctx context.Context) ([]string, error) {
	const op = "Rooms"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	keys, err := c.scan(ctx, roomPattern)
	seen := make(map[string]bool, len(keys))
	rooms := keys[:0]
	for _, k := range keys {
		if r := c.l.roomName(k); !seen[r] {
			seen[r] = true
			rooms = append(rooms, r)
		}
	}
	return rooms, c.fail(ctx, op, err)
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
