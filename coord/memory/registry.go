package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/meshfast/meshfast/coord"
)

type connShard struct {
	mu sync.RWMutex // taken before a roomShard.mu or nodesMu, never after
	m  map[string]*connState
	_  [32]byte // keep neighbouring shards off one cache line
}

// connState is everything keyed by one connection id. It is deleted when it
// is unregistered, has no metadata and is in no room.
//
// Every open connection has one, so it is kept within the 32-byte size class
// (TestConnStateSize guards it): what most connections never have is behind
// x.
type connState struct {
	node string     // owner, "" if unregistered
	seq  uint64     // registration order, valid when node != ""
	x    *connExtra // nil while there is no metadata and no room
}

// connExtra is the part of a connState that few connections use.
type connExtra struct {
	meta  []byte // nil if none
	rooms map[string]struct{}
}

func (c *connState) empty() bool { return c.node == "" && c.x == nil }

// extra returns c.x, creating it.
func (c *connState) extra() *connExtra {
	if c.x == nil {
		c.x = &connExtra{}
	}
	return c.x
}

func (c *connState) meta() []byte {
	if c.x == nil {
		return nil
	}
	return c.x.meta
}

// rooms returns the rooms c is a member of; nil (readable, deletable) if
// none.
func (c *connState) rooms() map[string]struct{} {
	if c.x == nil {
		return nil
	}
	return c.x.rooms
}

// getLocked returns id's state, creating it. Lock is held on entry.
func (s *connShard) getLocked(id string) *connState {
	c := s.m[id]
	if c == nil {
		c = &connState{}
		s.m[id] = c
	}
	return c
}

// gcLocked drops c's extra part if it holds nothing, then deletes id's state
// if it is empty. Lock is held on entry.
func (s *connShard) gcLocked(id string, c *connState) {
	if x := c.x; x != nil && x.meta == nil && len(x.rooms) == 0 {
		c.x = nil
	}
	if c.empty() {
		delete(s.m, id)
	}
}

// nodeState is one node: its heartbeat and how many connections are
// registered to it. It is deleted when it is not registered and owns no
// connection.
//
// It keeps a count, not the set of its connections: the set cost a map entry
// per connection, while NodeConnections, which scans the connection shards
// instead, is rare (a dead node's cleanup).
type nodeState struct {
	registered bool
	deadline   int64 // heartbeat deadline, valid when registered
	conns      int   // connections registered to it
}

// nodeLocked returns id's state, creating it. nodesMu is held on entry.
func (m *Memory) nodeLocked(id string) *nodeState {
	n := m.nodes[id]
	if n == nil {
		n = &nodeState{}
		m.nodes[id] = n
	}
	return n
}

// dropNodeConnLocked counts one connection fewer registered to nodeID.
// nodesMu is held.
func (m *Memory) dropNodeConnLocked(nodeID string) {
	if n := m.nodes[nodeID]; n != nil {
		n.conns--
		if !n.registered && n.conns == 0 {
			delete(m.nodes, nodeID)
		}
	}
}

// LocalRegistry marks the registry calls as in-process map work
// (coord.LocalRegistry).
func (m *Memory) LocalRegistry() {}

// RegisterConnection implements coord.Registry.
func (m *Memory) RegisterConnection(ctx context.Context, connID, nodeID string) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	if connID == "" {
		return errEmpty("RegisterConnection", "connection id")
	}
	if nodeID == "" {
		return errEmpty("RegisterConnection", "node id")
	}
	cs := m.connShard(connID)
	cs.mu.Lock()
	c := cs.getLocked(connID)
	// Registering again to the same node keeps its place in the order and
	// changes no count.
	if old := c.node; old != nodeID {
		c.node = nodeID
		c.seq = m.seq.Add(1)
		m.nodesMu.Lock()
		if old != "" {
			m.dropNodeConnLocked(old)
		}
		m.nodeLocked(nodeID).conns++
		m.nodesMu.Unlock()
	}
	cs.mu.Unlock()
	return nil
}

// UnregisterConnection implements coord.Admin.
func (m *Memory) UnregisterConnection(ctx context.Context, connID string) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	cs := m.connShard(connID)
	cs.mu.Lock()
	if c := cs.m[connID]; c != nil && c.node != "" {
		m.nodesMu.Lock()
		m.dropNodeConnLocked(c.node)
		m.nodesMu.Unlock()
		c.node, c.seq = "", 0
		cs.gcLocked(connID, c)
	}
	cs.mu.Unlock()
	return nil
}

// ConnectionNode implements coord.Registry.
func (m *Memory) ConnectionNode(ctx context.Context, connID string) (string, error) {
	if err := m.check(ctx); err != nil {
		return "", err
	}
	cs := m.connShard(connID)
	cs.mu.RLock()
	var node string
	if c := cs.m[connID]; c != nil {
		node = c.node
	}
	cs.mu.RUnlock()
	if node == "" {
		return "", fmt.Errorf("coord/memory: connection %q: %w", connID, coord.ErrNotFound)
	}
	return node, nil
}

// ConnectionNodes implements coord.Registry.
func (m *Memory) ConnectionNodes(ctx context.Context, connIDs []string) ([]string, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	out := make([]string, len(connIDs))
	for i, id := range connIDs {
		cs := m.connShard(id)
		cs.mu.RLock()
		if c := cs.m[id]; c != nil {
			out[i] = c.node
		}
		cs.mu.RUnlock()
	}
	return out, nil
}

// Connections implements coord.Admin, in registration order.
func (m *Memory) Connections(ctx context.Context) ([]string, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	var ids []seqID
	for i := range m.conns {
		cs := &m.conns[i]
		cs.mu.RLock()
		for id, c := range cs.m {
			if c.node != "" {
				ids = append(ids, seqID{id, c.seq})
			}
		}
		cs.mu.RUnlock()
	}
	return sortedBySeq(ids), nil
}

// NodeConnections implements coord.Admin, in registration order. It
// scans every connection, as Connections does.
func (m *Memory) NodeConnections(ctx context.Context, nodeID string) ([]string, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	// nodesMu is released before any connShard.mu is taken (the lock order
	// is the reverse). A node with no connection is answered without the
	// scan; otherwise the count only sizes the result.
	m.nodesMu.Lock()
	var count int
	if n := m.nodes[nodeID]; n != nil {
		count = n.conns
	}
	m.nodesMu.Unlock()
	if count == 0 {
		return []string{}, nil
	}
	ids := make([]seqID, 0, count)
	for i := range m.conns {
		cs := &m.conns[i]
		cs.mu.RLock()
		for id, c := range cs.m {
			if c.node == nodeID {
				ids = append(ids, seqID{id, c.seq})
			}
		}
		cs.mu.RUnlock()
	}
	return sortedBySeq(ids), nil
}

// RemoveConnection implements coord.Registry. It is atomic: the connection's
// shard stays locked for the whole removal.
func (m *Memory) RemoveConnection(ctx context.Context, connID string) (coord.RemovedConnection, error) {
	if err := m.check(ctx); err != nil {
		return coord.RemovedConnection{}, err
	}
	r, _ := m.removeConnection(connID, "")
	return r, nil
}

// removeConnection removes connID's whole state. If onlyNode is not empty it
// does so only while connID is registered to onlyNode, and reports whether it
// did.
func (m *Memory) removeConnection(connID, onlyNode string) (coord.RemovedConnection, bool) {
	res := coord.RemovedConnection{ConnID: connID}
	cs := m.connShard(connID)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.m[connID]
	if c == nil || onlyNode != "" && c.node != onlyNode {
		return res, false
	}
	rooms := c.rooms()
	if len(rooms) > 0 {
		res.Rooms = make([]string, 0, len(rooms))
	}
	for room := range rooms {
		res.Rooms = append(res.Rooms, room)
		rs := m.roomShard(room)
		rs.mu.Lock()
		if r := rs.m[room]; r != nil {
			delete(r.members, connID)
			if _, ok := r.presence[connID]; ok {
				// Reported here even if lapsed: its expiry will not be.
				delete(r.presence, connID)
				res.Present = append(res.Present, room)
			}
			delete(r.states, connID)
			rs.gcLocked(room, r)
		}
		rs.mu.Unlock()
	}
	if c.node != "" {
		res.Node = c.node
		m.nodesMu.Lock()
		m.dropNodeConnLocked(c.node)
		m.nodesMu.Unlock()
	}
	delete(cs.m, connID)
	return res, true
}

// SetConnectionMetadata implements coord.ConnectionMeta.
func (m *Memory) SetConnectionMetadata(ctx context.Context, connID string, meta []byte) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	if connID == "" {
		return errEmpty("SetConnectionMetadata", "connection id")
	}
	if len(meta) == 0 {
		return errEmpty("SetConnectionMetadata", "metadata")
	}
	meta = clone(meta)
	cs := m.connShard(connID)
	cs.mu.Lock()
	cs.getLocked(connID).extra().meta = meta
	cs.mu.Unlock()
	return nil
}

// ConnectionMetadata implements coord.ConnectionMeta.
func (m *Memory) ConnectionMetadata(ctx context.Context, connID string) ([]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	return m.connMeta(connID), nil
}

func (m *Memory) connMeta(connID string) []byte {
	cs := m.connShard(connID)
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	if c := cs.m[connID]; c != nil {
		return c.meta()
	}
	return nil
}

// ConnectionsMetadata implements coord.Admin.
func (m *Memory) ConnectionsMetadata(ctx context.Context, connIDs []string) ([][]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	out := make([][]byte, len(connIDs))
	for i, id := range connIDs {
		out[i] = m.connMeta(id)
	}
	return out, nil
}

// AllConnectionMetadata implements coord.ConnectionMeta, in registration
// order.
func (m *Memory) AllConnectionMetadata(ctx context.Context) ([]coord.ConnMetadata, error) {
	ids, err := m.Connections(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]coord.ConnMetadata, len(ids))
	for i, id := range ids {
		out[i] = coord.ConnMetadata{ConnID: id, Metadata: m.connMeta(id)}
	}
	return out, nil
}

// RoomConnectionMetadata implements coord.ConnectionMeta.
func (m *Memory) RoomConnectionMetadata(ctx context.Context, room string) ([]coord.ConnMetadata, error) {
	ids, err := m.RoomMembers(ctx, room)
	if err != nil {
		return nil, err
	}
	out := make([]coord.ConnMetadata, len(ids))
	for i, id := range ids {
		out[i] = coord.ConnMetadata{ConnID: id, Metadata: m.connMeta(id)}
	}
	return out, nil
}

// RegisterNode implements coord.Nodes.
func (m *Memory) RegisterNode(ctx context.Context, nodeID string, ttl time.Duration) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	if nodeID == "" {
		return errEmpty("RegisterNode", "node id")
	}
	if ttl <= 0 {
		return errTTL("RegisterNode", ttl)
	}
	now := m.nowNanos()
	m.nodesMu.Lock()
	n := m.nodeLocked(nodeID)
	n.registered = true
	n.deadline = deadline(now, ttl)
	m.nodesMu.Unlock()
	return nil
}

// UnregisterNode implements coord.Nodes.
func (m *Memory) UnregisterNode(ctx context.Context, nodeID string) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	m.nodesMu.Lock()
	if n := m.nodes[nodeID]; n != nil {
		n.registered = false
		if n.conns == 0 {
			delete(m.nodes, nodeID)
		}
	}
	m.nodesMu.Unlock()
	return nil
}

// LiveNodes implements coord.Admin.
func (m *Memory) LiveNodes(ctx context.Context) ([]string, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	now := m.nowNanos()
	var out []string
	m.nodesMu.Lock()
	for id, n := range m.nodes {
		if n.registered && n.deadline > now {
			out = append(out, id)
		}
	}
	m.nodesMu.Unlock()
	return out, nil
}

// DeadNodes implements coord.Admin.
func (m *Memory) DeadNodes(ctx context.Context) ([]string, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	now := m.nowNanos()
	var out []string
	m.nodesMu.Lock()
	for id, n := range m.nodes {
		if n.registered && n.deadline <= now || !n.registered && n.conns > 0 {
			out = append(out, id)
		}
	}
	m.nodesMu.Unlock()
	return out, nil
}

// RemoveNode implements coord.Admin.
func (m *Memory) RemoveNode(ctx context.Context, nodeID string) ([]coord.RemovedConnection, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	conns, err := m.NodeConnections(ctx, nodeID)
	if err != nil {
		return nil, err
	}
	var out []coord.RemovedConnection
	for _, id := range conns {
		if r, ok := m.removeConnection(id, nodeID); ok {
			out = append(out, r)
		}
	}
	m.nodesMu.Lock()
	if n := m.nodes[nodeID]; n != nil {
		n.registered = false
		if n.conns == 0 {
			delete(m.nodes, nodeID)
		}
	}
	m.nodesMu.Unlock()
	return out, nil
}
