package coord

import "context"

// ConnectionMeta stores one JSON metadata value per connection (Redis: the
// hash mesh:connection-meta, connection id → JSON, as Mesh's successor
// keeps it), apart from the registry, unlike Mesh, where setting metadata
// overwrote the connection's owner. Values are opaque JSON bytes, stored
// and returned as given.
type ConnectionMeta interface {
	// SetConnectionMetadata replaces connID's metadata (HSET). The
	// connection need not be registered. meta must be non-empty.
	SetConnectionMetadata(ctx context.Context, connID string, meta []byte) error

	// ConnectionMetadata returns connID's metadata, or nil (Mesh's null) if
	// it has none (HGET).
	ConnectionMetadata(ctx context.Context, connID string) ([]byte, error)

	// AllConnectionMetadata returns an entry for every registered connection,
	// with a nil Metadata for those without metadata (Mesh's
	// getAllMetadata). Memory: registration order.
	//
	// Not atomic: connections registered or removed meanwhile may or may
	// not be listed. Two round trips (HKEYS mesh:connections, then one HMGET
	// of their metadata); its cost grows with the cluster's connections.
	AllConnectionMetadata(ctx context.Context) ([]ConnMetadata, error)

	// RoomConnectionMetadata returns an entry for every member of room, nil
	// Metadata for members without metadata, and an empty result for an
	// unknown room (Mesh's getAllMetadataForRoom). No particular order.
	//
	// Not atomic. Two round trips: SMEMBERS mesh:room:<room>, then one
	// HMGET.
	RoomConnectionMetadata(ctx context.Context, room string) ([]ConnMetadata, error)
}

// ConnMetadata is one connection's metadata; Metadata is nil when it has
// none. The server maps a list of them to Mesh's [{<id>: meta}, ...] shape.
type ConnMetadata struct {
	ConnID   string
	Metadata []byte
}

// RoomMeta stores one JSON metadata value per room (Redis:
// mesh:roommeta:<room>, a hash whose field "data" holds the JSON). A room
// may have metadata without members. ClearRoom deletes it.
type RoomMeta interface {
	// SetRoomMetadata replaces room's metadata (HSET). meta must be
	// non-empty.
	SetRoomMetadata(ctx context.Context, room string, meta []byte) error

	// RoomMetadata returns room's metadata, or nil (Mesh's null) if none
	// (HGET). Read far more often than written, so a backend may cache it
	// client-side, invalidated by every write on any node, provided a node
	// still reads its own writes at once.
	RoomMetadata(ctx context.Context, room string) ([]byte, error)

	// UpdateRoomMetadata shallow-merges the JSON object partial into room's
	// metadata, as Mesh's updateMetadata does ({...current, ...partial}),
	// and returns the merged value. See jsonx.MergeObjects for the exact
	// rules; partial must be a JSON object (ErrNotObject otherwise).
	//
	// Atomic per room: concurrent updates, from any node, all end up in
	// the value (Mesh's read-modify-write loses some). The merge must be
	// jsonx.MergeObjects, which Lua cannot run, so a backend reads the
	// value, merges, and stores the result only if the value is still the
	// one it read (a compare-and-set script), retrying otherwise, or
	// returning ErrConflict past its retry bound: two round trips per
	// attempt.
	UpdateRoomMetadata(ctx context.Context, room string, partial []byte) ([]byte, error)

	// AllRoomMetadata returns the metadata of every room that has some,
	// keyed by room name (Mesh's object shape).
	//
	// Not atomic. Its cost grows with the number of rooms: Redis SCANs
	// mesh:roommeta:* (on every primary of a cluster), then reads the
	// values in one pipeline.
	AllRoomMetadata(ctx context.Context) (map[string][]byte, error)
}
