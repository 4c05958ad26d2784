package coord

import "context"

// ConnectionMeta stores one JSON metadata value per connection. meshfast
// keeps it apart from the registry (Redis: the mesh:connection-meta hash),
// unlike Mesh, where setting metadata overwrote the connection's owner.
// Values are opaque JSON bytes, stored and returned as given.
type ConnectionMeta interface {
	// SetConnectionMetadata replaces connID's metadata. The connection need
	// not be registered. meta must be non-empty.
	SetConnectionMetadata(ctx context.Context, connID string, meta []byte) error

	// ConnectionMetadata returns connID's metadata, or nil (Mesh's null) if
	// it has none.
	ConnectionMetadata(ctx context.Context, connID string) ([]byte, error)

	// ConnectionsMetadata is the batch form: one entry per id, in order, nil
	// for a connection without metadata.
	ConnectionsMetadata(ctx context.Context, connIDs []string) ([][]byte, error)

	// AllConnectionMetadata returns an entry for every registered connection,
	// with a nil Metadata for those without metadata (Mesh's
	// getAllMetadata). Memory: registration order.
	AllConnectionMetadata(ctx context.Context) ([]ConnMetadata, error)

	// RoomConnectionMetadata returns an entry for every member of room, nil
	// Metadata for members without metadata, and an empty result for an
	// unknown room (Mesh's getAllMetadataForRoom). No particular order.
	RoomConnectionMetadata(ctx context.Context, room string) ([]ConnMetadata, error)
}

// ConnMetadata is one connection's metadata; Metadata is nil when it has
// none. The server maps a list of them to Mesh's [{<id>: meta}, ...] shape.
type ConnMetadata struct {
	ConnID   string
	Metadata []byte
}

// RoomMeta stores one JSON metadata value per room (Redis:
// mesh:roommeta:<room>, field "data"). A room may have metadata without
// members. ClearRoom deletes it.
type RoomMeta interface {
	// SetRoomMetadata replaces room's metadata. meta must be non-empty.
	SetRoomMetadata(ctx context.Context, room string, meta []byte) error

	// RoomMetadata returns room's metadata, or nil (Mesh's null) if none.
	RoomMetadata(ctx context.Context, room string) ([]byte, error)

	// UpdateRoomMetadata shallow-merges the JSON object partial into room's
	// metadata, as Mesh's updateMetadata does ({...current, ...partial}),
	// and returns the merged value. It is atomic per room (compare-and-set).
	// See jsonx.MergeObjects for the exact rules; partial must be a JSON object
	// (ErrNotObject otherwise).
	UpdateRoomMetadata(ctx context.Context, room string, partial []byte) ([]byte, error)

	// AllRoomMetadata returns the metadata of every room that has some,
	// keyed by room name (Mesh's object shape).
	AllRoomMetadata(ctx context.Context) (map[string][]byte, error)
}
