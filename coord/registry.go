package coord

import "context"

// Registry maps each connection to the node that owns it (Redis: Mesh's
// mesh:connections hash, connection id → node id, and the set
// mesh:connections:<node> of each node's connections) and removes a
// connection's whole shared state when it goes away.
type Registry interface {
	// RegisterConnection records that nodeID owns connID; every handshake
	// calls it. Registering a connection again moves it to the new node
	// (the server never does).
	//
	// Not atomic: the hash entry, which routing reads, and the node's set,
	// which the janitor reads, may be written by one pipeline (HSET and
	// SADD; on a Redis Cluster they are on different slots). A backend's
	// Admin.RemoveNode must therefore also find the connections whose hash
	// entry names the node, as Mesh's janitor does. One round trip;
	// concurrent handshakes should share pipeline writes.
	RegisterConnection(ctx context.Context, connID, nodeID string) error

	// ConnectionNode returns the node that owns connID, or ErrNotFound
	// (HGET). It must see a RegisterConnection that returned.
	ConnectionNode(ctx context.Context, connID string) (string, error)

	// ConnectionNodes is the batch form of ConnectionNode, used to route a
	// message to many connections: the result has one entry per id, in
	// order, "" for an unregistered connection. One round trip whatever the
	// number of ids (HMGET); the lookups need not be one atomic read.
	ConnectionNodes(ctx context.Context, connIDs []string) ([]string, error)

	// RemoveConnection is the disconnect cleanup: it removes connID's
	// presence entries and presence states in every room it is a member of,
	// its room memberships, its metadata and its registry entry. It reports
	// what it removed, so that the caller can publish a presence "leave" for
	// every room in Present. Removing an unknown connection returns a
	// RemovedConnection with only ConnID set.
	//
	// Presence entries in rooms the connection is not a member of are not
	// found (they expire by TTL), because backends find a connection's
	// presence through its room reverse index, as Mesh does.
	//
	// Atomic per presence entry, not as a whole: each entry it reports in
	// Present was removed by this call and by no concurrent LeavePresence,
	// RemoveConnection or expiry (Presence's "Exactly one ending"; Redis:
	// the SREM that returned 1). A backend may read the connection's rooms
	// (SMEMBERS mesh:connection:<id>:rooms) and then remove everything in
	// one pipeline: two round trips, or one script where every key is on
	// one node.
	RemoveConnection(ctx context.Context, connID string) (RemovedConnection, error)
}

// LocalRegistry is implemented by a Coordinator whose Registry calls are
// map updates in this process that never wait (the embedded memory
// coordinator), so a caller may make them without a deadline: a deadline
// costs a timer and ~260 bytes of garbage per call, and every handshake
// registers a connection. (Publish may still wait for queue space, so this
// says nothing about the other interfaces.)
type LocalRegistry interface {
	Registry
	LocalRegistry()
}

// RemovedConnection reports what RemoveConnection (or Admin.RemoveNode)
// removed.
type RemovedConnection struct {
	ConnID string
	// Node is the node the connection was registered to, "" if none.
	Node string
	// Rooms are the rooms the connection was a member of.
	Rooms []string
	// Present are the rooms (a subset of Rooms) where it had a presence
	// entry, now removed (a lapsed entry whose expiry was not reported yet
	// counts, and will not be reported): the caller publishes a "leave" for
	// each.
	Present []string
}
