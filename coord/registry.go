package coord

import "context"

// Registry maps each connection to the node that owns it (Mesh's
// mesh:connections hash and mesh:connections:<node> sets) and removes a
// connection's whole shared state when it goes away.
type Registry interface {
	// RegisterConnection records that nodeID owns connID. Registering a
	// connection again moves it to the new node.
	RegisterConnection(ctx context.Context, connID, nodeID string) error

	// UnregisterConnection removes connID from the registry only (rooms,
	// metadata and presence are kept; use RemoveConnection on disconnect).
	// Unregistering an unknown connection is not an error.
	UnregisterConnection(ctx context.Context, connID string) error

	// ConnectionNode returns the node that owns connID, or ErrNotFound.
	ConnectionNode(ctx context.Context, connID string) (string, error)

	// ConnectionNodes is the batch form of ConnectionNode, used to route a
	// broadcast in one round trip: the result has one entry per id, in
	// order, "" for an unregistered connection.
	ConnectionNodes(ctx context.Context, connIDs []string) ([]string, error)

	// Connections returns every registered connection of the cluster. The
	// order is the backend's (memory: registration order).
	Connections(ctx context.Context) ([]string, error)

	// NodeConnections returns the connections registered to nodeID
	// (memory: in registration order).
	NodeConnections(ctx context.Context, nodeID string) ([]string, error)

	// RemoveConnection is the disconnect cleanup, done as one operation: it
	// removes connID's presence entries and presence states in every room it
	// is a member of, its room memberships, its metadata and its registry
	// entry. It reports what it removed, so that the caller can publish a
	// presence "leave" for every room in Present. Removing an unknown
	// connection returns a RemovedConnection with only ConnID set.
	//
	// Presence entries in rooms the connection is not a member of are not
	// found (they expire by TTL), because backends find a connection's
	// presence through its room reverse index, as Mesh does.
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

// RemovedConnection reports what RemoveConnection (or RemoveNode) removed.
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
