package coord

import "context"

// Rooms is cluster-wide room membership (Redis: mesh:room:<room> and the
// reverse index mesh:connection:<id>:rooms). Membership never expires; it
// does not imply presence (see Presence). Connection ids need not be
// registered.
type Rooms interface {
	// AddToRoom adds connID to room and reports whether it was not a member
	// yet.
	AddToRoom(ctx context.Context, room, connID string) (bool, error)

	// RemoveFromRoom removes connID from room and reports whether it was a
	// member. It does not touch presence.
	RemoveFromRoom(ctx context.Context, room, connID string) (bool, error)

	// IsInRoom reports whether connID is a member of room.
	IsInRoom(ctx context.Context, room, connID string) (bool, error)

	// RoomMembers returns room's members in no particular order (SMEMBERS);
	// empty for an unknown room.
	RoomMembers(ctx context.Context, room string) ([]string, error)

	// ConnectionRooms returns the rooms connID is a member of, in no
	// particular order.
	ConnectionRooms(ctx context.Context, connID string) ([]string, error)

	// RemoveFromAllRooms removes connID from every room and returns the rooms
	// it was in. Like Mesh it does not touch presence; RemoveConnection does.
	RemoveFromAllRooms(ctx context.Context, connID string) ([]string, error)

	// ClearRoom removes every member of room and deletes the room's
	// metadata, and returns the members it removed. Presence entries are
	// left to expire, as in Mesh.
	ClearRoom(ctx context.Context, room string) ([]string, error)

	// Rooms returns every room that has at least one member, in no
	// particular order. Rooms that only have metadata are in
	// AllRoomMetadata.
	Rooms(ctx context.Context) ([]string, error)
}
