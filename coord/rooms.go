package coord

import "context"

// Rooms is cluster-wide room membership (Redis: the set mesh:room:<room> of
// its members and the reverse index mesh:connection:<id>:rooms of each
// connection's rooms). Membership never expires; it does not imply presence
// (see Presence). Connection ids need not be registered.
//
// Membership changes are atomic per (room, connection) pair: the room's
// members and the connection's rooms change together, so that a
// connection is in a room's members exactly when the room is in the
// connection's rooms, however calls race. (Redis: both keys in one MULTI
// or script, one round trip. On a Redis Cluster Mesh's two names hash to
// different slots, so a backend that keeps them needs another way to keep
// them agreeing.)
type Rooms interface {
	// AddToRoom adds connID to room and reports whether it was not a member
	// yet (SADD's answer). Atomic per pair; one round trip.
	AddToRoom(ctx context.Context, room, connID string) (bool, error)

	// RemoveFromRoom removes connID from room and reports whether it was a
	// member. It does not touch presence. Atomic per pair; one round trip.
	RemoveFromRoom(ctx context.Context, room, connID string) (bool, error)

	// IsInRoom reports whether connID is a member of room (SISMEMBER).
	IsInRoom(ctx context.Context, room, connID string) (bool, error)

	// RoomMembers returns room's members in no particular order (SMEMBERS);
	// empty for an unknown room.
	RoomMembers(ctx context.Context, room string) ([]string, error)

	// ConnectionRooms returns the rooms connID is a member of, in no
	// particular order (SMEMBERS of the reverse index).
	ConnectionRooms(ctx context.Context, connID string) ([]string, error)

	// RemoveFromAllRooms removes connID from every room and returns the rooms
	// it was in. Like Mesh it does not touch presence; RemoveConnection does.
	//
	// Atomic per pair, not as a whole: a room joined meanwhile may stay.
	// Two round trips (read the reverse index, then one pipeline).
	RemoveFromAllRooms(ctx context.Context, connID string) ([]string, error)

	// ClearRoom removes every member of room and deletes the room's
	// metadata, and returns the members it removed. Presence entries are
	// left to expire, as in Mesh.
	//
	// Atomic per pair, not as a whole: a member added meanwhile may stay.
	// Two round trips (read the members, then one pipeline).
	ClearRoom(ctx context.Context, room string) ([]string, error)
}
