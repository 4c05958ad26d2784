package coord

// Coordinator is the shared state and cross-node messaging of a meshfast
// cluster. It is the union of small interfaces, one per concern, each in its
// own file; a feature that needs only one concern should accept only that
// interface.
//
// Every method is safe to call from any goroutine. Methods that take a
// context may block on the backend (a network round trip for Redis); none of
// them may be called from a Handler or an ExpiryHandler (see PubSub).
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

	// Close releases the coordinator's resources and stops its goroutines.
	// Queued, undelivered pub/sub messages and expiry events are dropped.
	// Every later call returns ErrClosed; Close itself is idempotent. It must
	// not be called from a Handler or an ExpiryHandler.
	Close() error
}
