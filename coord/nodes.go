package coord

import (
	"context"
	"time"
)

// Nodes is node liveness (Redis: mesh:instances and
// mesh:instance:<node>:heartbeat). Each node calls RegisterNode at start and
// again as its heartbeat, well within ttl. A janitor on any node calls
// DeadNodes and RemoveNode to clean up the shared state of nodes that died
// without cleaning up (their connections stay registered forever in Mesh).
type Nodes interface {
	// RegisterNode registers nodeID as alive for ttl (> 0). Calling it again
	// is the heartbeat: it re-arms the TTL.
	RegisterNode(ctx context.Context, nodeID string, ttl time.Duration) error

	// UnregisterNode removes nodeID from the live nodes (graceful stop). Its
	// connections are not touched: a node stopping cleanly removes them
	// itself; any left behind make it show up in DeadNodes.
	UnregisterNode(ctx context.Context, nodeID string) error

	// LiveNodes returns the nodes whose heartbeat has not lapsed.
	LiveNodes(ctx context.Context) ([]string, error)

	// DeadNodes returns the nodes that are registered, or own a registered
	// connection, and have no live heartbeat. A node that registers
	// connections must therefore RegisterNode first, and callers exclude
	// their own id.
	DeadNodes(ctx context.Context) ([]string, error)

	// RemoveNode removes every connection registered to nodeID, each exactly
	// as RemoveConnection does, then forgets the node. It returns what was
	// removed, so that the caller may publish presence "leave" events (Mesh
	// removes silently and relies on the TTL expiry). Concurrent calls for
	// one node are safe: each connection is reported by one of them.
	RemoveNode(ctx context.Context, nodeID string) ([]RemovedConnection, error)
}
