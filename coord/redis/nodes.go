package redis

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/meshfast/meshfast/coord"
)

// Node liveness uses the keys of Mesh's successor: the set mesh:instances
// and a heartbeat key per node with a TTL.

// RegisterNode registers nodeID as alive for ttl (the heartbeat).
func (c *Coordinator) RegisterNode(ctx context.Context, nodeID string, ttl time.Duration) error {
	const op = "RegisterNode"
	if err := c.check(ctx, op); err != nil {
		return err
	}
	if nodeID == "" {
		return invalid(op, "empty node id")
	}
	if ttl <= 0 {
		return invalid(op, "ttl "+ttl.String())
	}
	px, _ := strconv.ParseInt(ms(ttl), 10, 64)
	res := c.run(ctx,
		cmdOp(c.client.B().Sadd().Key(instancesKey).Member(nodeID).Build()),
		cmdOp(c.client.B().Set().Key(c.l.heartbeat(nodeID)).Value(strconv.FormatInt(time.Now().UnixMilli(), 10)).PxMilliseconds(px).Build()))
	return c.fail(ctx, op, firstErr(res))
}

// UnregisterNode removes nodeID from the live nodes.
func (c *Coordinator) UnregisterNode(ctx context.Context, nodeID string) error {
	const op = "UnregisterNode"
	if err := c.check(ctx, op); err != nil {
		return err
	}
	return c.fail(ctx, op, firstErr(c.forgetNode(ctx, nodeID)))
}

func (c *Coordinator) forgetNode(ctx context.Context, nodeID string) []rueidis.RedisResult {
	return c.run(ctx,
		cmdOp(c.client.B().Srem().Key(instancesKey).Member(nodeID).Build()),
		cmdOp(c.client.B().Del().Key(c.l.heartbeat(nodeID)).Build()))
}

// LiveNodes returns the nodes whose heartbeat has not lapsed.
func (c *Coordinator) LiveNodes(ctx context.Context) ([]string, error) {
	const op = "LiveNodes"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	nodes, err := c.run1(ctx, cmdOp(c.client.B().Smembers().Key(instancesKey).Build())).AsStrSlice()
	if err != nil {
		return nil, c.fail(ctx, op, err)
	}
	live, err := c.alive(ctx, nodes)
	if err != nil {
		return nil, c.fail(ctx, op, err)
	}
	var out []string
	for _, n := range nodes {
		if live[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// alive checks the heartbeats of nodes in one round trip.
func (c *Coordinator) alive(ctx context.Context, nodes []string) (map[string]bool, error) {
	live := make(map[string]bool, len(nodes))
	if len(nodes) == 0 {
		return live, nil
	}
	ops := make([]rop, len(nodes))
	for i, n := range nodes {
		ops[i] = cmdOp(c.client.B().Exists().Key(c.l.heartbeat(n)).Build())
	}
	for i, r := range c.run(ctx, ops...) {
		n, err := r.AsInt64()
		if err != nil {
			return nil, err
		}
		live[nodes[i]] = n == 1
	}
	return live, nil
}

// DeadNodes returns the nodes that are registered, or own a registered
// connection, and have no live heartbeat. It reads every registry entry
// (HVALS of each partition): a janitor's call, not a hot path.
func (c *Coordinator) DeadNodes(ctx context.Context) ([]string, error) {
	const op = "DeadNodes"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	nodes, err := c.run1(ctx, cmdOp(c.client.B().Smembers().Key(instancesKey).Build())).AsStrSlice()
	if err != nil {
		return nil, c.fail(ctx, op, err)
	}
	owners, err := c.everyPart(ctx, func(p int) rueidis.Completed {
		return c.client.B().Hvals().Key(c.l.registry(p)).Build()
	})
	if err != nil {
		return nil, c.fail(ctx, op, err)
	}
	seen := make(map[string]bool, len(nodes))
	var all []string
	for _, n := range append(nodes, owners...) {
		if !seen[n] {
			seen[n] = true
			all = append(all, n)
		}
	}
	live, err := c.alive(ctx, all)
	if err != nil {
		return nil, c.fail(ctx, op, err)
	}
	var out []string
	for _, n := range all {
		if !live[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// RemoveNode removes every connection registered to nodeID, each as
// RemoveConnection does but only while it is still registered to nodeID,
// then forgets the node.
func (c *Coordinator) RemoveNode(ctx context.Context, nodeID string) ([]coord.RemovedConnection, error) {
	const op = "RemoveNode"
	conns, err := c.NodeConnections(ctx, nodeID)
	if err != nil {
		return nil, err
	}
	var out []coord.RemovedConnection
	for _, id := range conns {
		r, ok, err := c.removeConnection(ctx, id, nodeID)
		if err != nil {
			return out, c.fail(ctx, op, err)
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, c.fail(ctx, op, firstErr(c.forgetNode(ctx, nodeID)))
}
