package coord

import "context"

// Admin is the optional part of a coordinator: inspection of the shared
// state, repair, and the janitor that cleans up after nodes that died
// without cleaning up (their connections would otherwise stay registered,
// in rooms and present forever, as in Mesh). The server calls none of it
// while serving requests; operators, tests and a janitor loop do, through a
// type assertion:
//
//	if a, ok := c.(coord.Admin); ok {
//		dead, _ := a.DeadNodes(ctx)
//		for _, n := range dead {
//			if n != self {
//				removed, _ := a.RemoveNode(ctx, n) // publish a "leave" per removed.Present
//			}
//		}
//	}
//
// Most of these read or walk whole structures, so their cost grows with the
// cluster's state (Redis: HKEYS, SMEMBERS of a node's set, SCAN); none is
// atomic as a whole unless it says so. coordtest runs its Admin tests
// against every backend that implements it.
type Admin interface {
	// Connections returns every registered connection of the cluster
	// (Redis: HKEYS mesh:connections). The order is the backend's (memory:
	// registration order).
	Connections(ctx context.Context) ([]string, error)

	// NodeConnections returns the connections registered to nodeID (Redis:
	// SMEMBERS mesh:connections:<node>; memory: in registration order).
	NodeConnections(ctx context.Context, nodeID string) ([]string, error)

	// UnregisterConnection removes connID from the registry only: rooms,
	// metadata and presence are kept (RemoveConnection is the disconnect
	// cleanup). Unregistering an unknown connection is not an error.
	UnregisterConnection(ctx context.Context, connID string) error

	// ConnectionsMetadata returns the metadata of each of connIDs: one
	// entry per id, in order, nil for a connection without metadata, in one
	// round trip (HMGET).
	ConnectionsMetadata(ctx context.Context, connIDs []string) ([][]byte, error)

	// Rooms returns every room that has at least one member, in no
	// particular order (Redis: a SCAN of mesh:room:*). Rooms that only have
	// metadata are in RoomMeta.AllRoomMetadata.
	Rooms(ctx context.Context) ([]string, error)

	// PresenceState returns connID's state in room, nil if none, whether
	// or not the connection is present (PresenceStates lists the present
	// ones only).
	PresenceState(ctx context.Context, room, connID string) ([]byte, error)

	// DeleteRecord removes id's value and version (the version restarts at
	// 0) and reports whether it existed. No event is published, so
	// subscribers keep the old value. Atomic per record with SetRecord: a
	// concurrent SetRecord either comes before (and is deleted) or after
	// (and starts at version 1).
	DeleteRecord(ctx context.Context, id string) (bool, error)

	// LiveNodes returns the nodes whose heartbeat has not lapsed.
	LiveNodes(ctx context.Context) ([]string, error)

	// DeadNodes returns the nodes that are registered, or own a registered
	// connection, and have no live heartbeat. A node that registers
	// connections must therefore RegisterNode first, and callers exclude
	// their own id.
	DeadNodes(ctx context.Context) ([]string, error)

	// RemoveNode removes every connection registered to nodeID, each exactly
	// as RemoveConnection does (atomic per connection, not as a whole), then
	// forgets the node. It returns what was removed, so that the caller may
	// publish presence "leave" events (Mesh removes silently and relies on
	// the TTL expiry). Concurrent calls for one node, from any nodes, are
	// safe: each connection is reported by one of them.
	RemoveNode(ctx context.Context, nodeID string) ([]RemovedConnection, error)
}
