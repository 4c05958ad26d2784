package coord

// Recovery tells a node when the shared state it wrote may have been lost
// while the node kept running: Redis restarted empty, failed over to a
// replica that missed recent writes, or was out of reach long enough for
// this node's heartbeat and presence to lapse and another node's janitor to
// remove them (Admin.RemoveNode). The node's client connections stayed up
// all along, so only the node knows what to write back.
type Recovery interface {
	// OnReconnect registers h to be called each time the coordinator has
	// re-established its connection to the backend after losing it, once
	// its pub/sub subscriptions are back (so events published by the
	// re-registration are seen by every node). On a Redis Cluster, after
	// any master's connection comes back: the state of that master's slots
	// may be gone, and the caller need not know which.
	//
	// The server then re-registers its live state: the node (its
	// heartbeat), its connections, their metadata, room memberships,
	// presence and presence states. Those writes are idempotent
	// (RegisterConnection, AddToRoom; JoinPresence reports a still-present
	// entry as not fresh, so no duplicate join event), so a reconnect that
	// lost nothing costs only the writes. Calls that failed during the
	// outage returned ErrUnavailable and are not retried by anyone.
	//
	// h is called from a coordinator goroutine and MUST NOT block: it hands
	// the work to a goroutine of its own. It returns a function that
	// unregisters h; neither does I/O. A backend that cannot lose state
	// behind the node's back (the embedded memory coordinator) never calls
	// h.
	OnReconnect(h ReconnectHandler) (remove func())
}

// ReconnectHandler is called after the coordinator reconnected to its
// backend (see Recovery.OnReconnect).
type ReconnectHandler func()
