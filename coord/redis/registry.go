package redis

import (
	"context"
	"fmt"

	"github.com/redis/rueidis"

	"github.com/meshfast/meshfast/coord"
)

// RegisterConnection records that nodeID owns connID: one script on the
// connection's registry partition (owner hash and node sets), one round
// trip.
func (c *Coordinator) RegisterConnection(ctx context.Context, connID, nodeID string) error {
	const op = "RegisterConnection"
	if err := c.check(ctx, op); err != nil {
		return err
	}
	if connID == "" {
		return invalid(op, "empty connection id")
	}
	if nodeID == "" {
		return invalid(op, "empty node id")
	}
	p := c.l.part(connID)
	r := c.run1(ctx, c.call(scriptConnRegister, []string{c.l.registry(p)}, connID, nodeID, c.l.nodeConnsPrefix(p)))
	return c.fail(ctx, op, r.Error())
}

// UnregisterConnection removes connID from the registry only.
func (c *Coordinator) UnregisterConnection(ctx context.Context, connID string) error {
	const op = "UnregisterConnection"
	if err := c.check(ctx, op); err != nil {
		return err
	}
	p := c.l.part(connID)
	r := c.run1(ctx, c.call(scriptConnUnregister, []string{c.l.registry(p)}, connID, c.l.nodeConnsPrefix(p)))
	return c.fail(ctx, op, r.Error())
}

// ConnectionNode returns the node that owns connID, or coord.ErrNotFound.
func (c *Coordinator) ConnectionNode(ctx context.Context, connID string) (string, error) {
	const op = "ConnectionNode"
	if err := c.check(ctx, op); err != nil {
		return "", err
	}
	r := c.run1(ctx, cmdOp(c.client.B().Hget().Key(c.l.registry(c.l.part(connID))).Field(connID).Build()))
	node, err := r.ToString()
	if rueidis.IsRedisNil(err) {
		return "", fmt.Errorf("coord/redis: %s %q: %w", op, connID, coord.ErrNotFound)
	}
	return node, c.fail(ctx, op, err)
}

// ConnectionNodes looks up every id in one round trip (one HMGET per
// registry partition, sent together).
func (c *Coordinator) ConnectionNodes(ctx context.Context, connIDs []string) ([]string, error) {
	const op = "ConnectionNodes"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	out := make([]string, len(connIDs))
	if len(connIDs) == 0 {
		return out, nil
	}
	err := c.hmgetByPart(ctx, connIDs, c.l.registry, func(i int, v rueidis.RedisMessage) {
		out[i], _ = v.ToString()
	})
	return out, c.fail(ctx, op, err)
}

// hmgetByPart reads the field of every id from its partition's hash
// (key(p)), one HMGET per partition in one round trip, and calls set with
// each id's index and value (a Redis nil for a missing field).
func (c *Coordinator) hmgetByPart(ctx context.Context, ids []string, key func(p int) string, set func(i int, v rueidis.RedisMessage)) error {
	n := c.l.partitions()
	idx := make([][]int, n)
	for i, id := range ids {
		p := c.l.part(id)
		idx[p] = append(idx[p], i)
	}
	ops := make([]rop, 0, n)
	parts := make([]int, 0, n)
	for p, is := range idx {
		if len(is) == 0 {
			continue
		}
		fields := make([]string, len(is))
		for j, i := range is {
			fields[j] = ids[i]
		}
		ops = append(ops, cmdOp(c.client.B().Hmget().Key(key(p)).Field(fields...).Build()))
		parts = append(parts, p)
	}
	res := c.run(ctx, ops...)
	for k, r := range res {
		vals, err := r.ToArray()
		if err != nil {
			return err
		}
		for j, i := range idx[parts[k]] {
			if j < len(vals) {
				set(i, vals[j])
			}
		}
	}
	return nil
}

// everyPart runs one command per partition in one round trip and returns
// the members of their array replies, concatenated.
func (c *Coordinator) everyPart(ctx context.Context, build func(p int) rueidis.Completed) ([]string, error) {
	n := c.l.partitions()
	ops := make([]rop, n)
	for p := range n {
		ops[p] = cmdOp(build(p))
	}
	var out []string
	for _, r := range c.run(ctx, ops...) {
		s, err := r.AsStrSlice()
		if err != nil && !rueidis.IsRedisNil(err) {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

// Connections returns every registered connection (HKEYS of each registry
// partition).
func (c *Coordinator) Connections(ctx context.Context) ([]string, error) {
	const op = "Connections"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	out, err := c.everyPart(ctx, func(p int) rueidis.Completed {
		return c.client.B().Hkeys().Key(c.l.registry(p)).Build()
	})
	return out, c.fail(ctx, op, err)
}

// NodeConnections returns the connections registered to nodeID.
func (c *Coordinator) NodeConnections(ctx context.Context, nodeID string) ([]string, error) {
	const op = "NodeConnections"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	out, err := c.everyPart(ctx, func(p int) rueidis.Completed {
		return c.client.B().Smembers().Key(c.l.nodeConnsPrefix(p) + nodeID).Build()
	})
	return out, c.fail(ctx, op, err)
}

// RemoveConnection is the disconnect cleanup in two round trips: a script
// on the connection's partition takes its registration, metadata, room list
// and room memberships at once; then one pipeline of leave scripts, one per
// room, removes its presence (which lives in the rooms' partitions).
func (c *Coordinator) RemoveConnection(ctx context.Context, connID string) (coord.RemovedConnection, error) {
	const op = "RemoveConnection"
	if err := c.check(ctx, op); err != nil {
		return coord.RemovedConnection{ConnID: connID}, err
	}
	r, _, err := c.removeConnection(ctx, connID, "")
	return r, c.fail(ctx, op, err)
}

// removeConnection removes connID if it is registered to onlyNode (any
// node, registered or not, when onlyNode is ""), and reports whether it
// did.
func (c *Coordinator) removeConnection(ctx context.Context, connID, onlyNode string) (coord.RemovedConnection, bool, error) {
	out := coord.RemovedConnection{ConnID: connID}
	p := c.l.part(connID)
	res, err := c.run1(ctx, c.call(scriptConnRemove,
		[]string{c.l.registry(p), c.l.connMeta(p), c.l.connRooms(connID)},
		connID, c.l.nodeConnsPrefix(p), onlyNode, c.l.roomPrefix(p))).ToArray()
	if err != nil {
		return out, false, err
	}
	if len(res) != 3 {
		return out, false, fmt.Errorf("conn_remove returned %d values", len(res))
	}
	if found, _ := res[0].AsInt64(); found == 0 {
		return out, false, nil
	}
	out.Node, _ = res[1].ToString()
	rooms, err := res[2].AsStrSlice()
	if err != nil {
		return out, true, err
	}
	out.Rooms = rooms
	if len(rooms) == 0 {
		return out, true, nil
	}
	ops := make([]rop, len(rooms))
	for i, room := range rooms {
		ops[i] = c.leaveOp(room, connID)
	}
	results := c.run(ctx, ops...)
	if err := firstErr(results); err != nil {
		return out, true, err
	}
	for i, room := range rooms {
		if n, _ := results[i].AsInt64(); n == 1 {
			out.Present = append(out.Present, room)
		}
	}
	return out, true, nil
}

// SetConnectionMetadata replaces connID's metadata.
func (c *Coordinator) SetConnectionMetadata(ctx context.Context, connID string, meta []byte) error {
	const op = "SetConnectionMetadata"
	if err := c.check(ctx, op); err != nil {
		return err
	}
	if connID == "" {
		return invalid(op, "empty connection id")
	}
	if len(meta) == 0 {
		return invalid(op, "empty metadata")
	}
	r := c.run1(ctx, cmdOp(c.client.B().Hset().Key(c.l.connMeta(c.l.part(connID))).FieldValue().
		FieldValue(connID, rueidis.BinaryString(meta)).Build()))
	return c.fail(ctx, op, r.Error())
}

// ConnectionMetadata returns connID's metadata, nil if none.
func (c *Coordinator) ConnectionMetadata(ctx context.Context, connID string) ([]byte, error) {
	const op = "ConnectionMetadata"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	r := c.run1(ctx, cmdOp(c.client.B().Hget().Key(c.l.connMeta(c.l.part(connID))).Field(connID).Build()))
	b, err := r.AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	return b, c.fail(ctx, op, err)
}

// ConnectionsMetadata is the batch form, one round trip.
func (c *Coordinator) ConnectionsMetadata(ctx context.Context, connIDs []string) ([][]byte, error) {
	const op = "ConnectionsMetadata"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	out, err := c.connsMeta(ctx, connIDs)
	return out, c.fail(ctx, op, err)
}

func (c *Coordinator) connsMeta(ctx context.Context, connIDs []string) ([][]byte, error) {
	out := make([][]byte, len(connIDs))
	if len(connIDs) == 0 {
		return out, nil
	}
	err := c.hmgetByPart(ctx, connIDs, c.l.connMeta, func(i int, v rueidis.RedisMessage) {
		if b, err := v.AsBytes(); err == nil {
			out[i] = b
		}
	})
	return out, err
}

// AllConnectionMetadata returns an entry for every registered connection:
// two round trips (the ids, then their metadata).
func (c *Coordinator) AllConnectionMetadata(ctx context.Context) ([]coord.ConnMetadata, error) {
	const op = "AllConnectionMetadata"
	ids, err := c.Connections(ctx)
	if err != nil {
		return nil, err
	}
	metas, err := c.connsMeta(ctx, ids)
	if err != nil {
		return nil, c.fail(ctx, op, err)
	}
	return zipMeta(ids, metas), nil
}

// RoomConnectionMetadata returns an entry for every member of room.
func (c *Coordinator) RoomConnectionMetadata(ctx context.Context, room string) ([]coord.ConnMetadata, error) {
	const op = "RoomConnectionMetadata"
	ids, err := c.RoomMembers(ctx, room)
	if err != nil {
		return nil, err
	}
	metas, err := c.connsMeta(ctx, ids)
	if err != nil {
		return nil, c.fail(ctx, op, err)
	}
	return zipMeta(ids, metas), nil
}

func zipMeta(ids []string, metas [][]byte) []coord.ConnMetadata {
	out := make([]coord.ConnMetadata, len(ids))
	for i, id := range ids {
		out[i] = coord.ConnMetadata{ConnID: id, Metadata: metas[i]}
	}
	return out
}
