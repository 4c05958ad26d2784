package coord

import (
	"context"
	"time"
)

// Nodes is node liveness (Redis: the set mesh:instances and
// mesh:instance:<node>:heartbeat, a key with the TTL, as Mesh's successor
// keeps them). Each node calls RegisterNode at start and again as its
// heartbeat, well within ttl, and UnregisterNode when it stops cleanly. The
// nodes that died without doing so are found and cleaned up through Admin
// (DeadNodes, RemoveNode).
type Nodes interface {
	// RegisterNode registers nodeID as alive for ttl (> 0). Calling it again
	// is the heartbeat: it re-arms the TTL. One round trip (SADD and SET
	// with EX in one pipeline); the two need not be atomic.
	RegisterNode(ctx context.Context, nodeID string, ttl time.Duration) error

	// UnregisterNode removes nodeID from the live nodes (graceful stop). Its
	// connections are not touched: a node stopping cleanly removes them
	// itself; any left behind make it show up in Admin.DeadNodes. One round
	// trip.
	UnregisterNode(ctx context.Context, nodeID string) error
}
