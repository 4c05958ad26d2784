package coord

// Coordinator is the shared state and cross-node messaging of a meshfast
// cluster: exactly what the server (features/mesh) calls. It is the union of
// small interfaces, one per concern, each in its own file; a feature that
// needs only one concern should accept only that interface. Inspection and
// clean-up that no request needs are in the optional Admin interface.
//
// Every method is safe to call from any goroutine. Methods that take a
// context may block on the backend (a network round trip for Redis); none of
// them may be called from a Handler or an ExpiryHandler (see PubSub).
//
// # Atomicity and round trips
//
// Each method's documentation says what a backend must guarantee when calls
// race, from one node or several, and how few round trips it can be done
// in, with Redis in mind (Mesh's key names are given with each interface):
//
//   - "Atomic" means that concurrent calls never see, nor leave, the
//     operation half done: Redis needs one command, or one Lua script or
//     MULTI over keys that live on one node (one slot on a Redis Cluster).
//   - "Not atomic" allows the operation to be split, for example into a read
//     and then one pipeline of writes (rueidis DoMulti, which a cluster
//     client splits per node), as Mesh does; a concurrent reader may see it
//     half done, and the doc says what must hold anyway.
//
// Whatever it batches, a backend reports success only once the operation
// has taken effect: a later call, on any node, sees it (read-your-writes;
// a client-side cache must not serve a value older than a write that
// returned). Calls made concurrently, by the connections of one node, are
// the batching opportunity: a backend should let them share one pipeline
// write (rueidis auto-pipelining does), since the server issues them one per
// connection (a join storm is thousands of concurrent JoinRoom calls, each
// Mesh's whole join-room in one call). Where the server itself has many
// items at hand, the method takes a batch (ConnectionNodes,
// RefreshPresence, PublishBatch), to be done in one round trip.
type Coordinator interface {
	Registry
	ConnectionMeta
	Rooms
	RoomMeta
	Channels
	Records
	Presence
	PubSub
	Nodes
	Joins
	Recovery

	// Close releases the coordinator's resources and stops its goroutines.
	// Queued, undelivered pub/sub messages and expiry events are dropped.
	// Every later call returns ErrClosed; Close itself is idempotent. It must
	// not be called from a Handler or an ExpiryHandler. It does not remove
	// the node's shared state (see Nodes.UnregisterNode).
	Close() error
}
