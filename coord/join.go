package coord

import (
	"context"
	"time"
)

// Joins is Mesh's mesh/join-room as one call. Mesh spends five awaited
// Redis commands on a join of a tracked room (SADD ×2, a pipeline, PUBLISH,
// SMEMBERS); a join storm (thousands of clients joining at once after a
// deploy or an outage) multiplies them. One call per join lets a backend
// send the joins of many connections together: Redis runs the joins that
// arrive while others are in flight as one script, in one round trip.
type Joins interface {
	// JoinRoom adds connID to room, as AddToRoom does. When ttl > 0 (a
	// presence-tracked room) it also marks connID present for ttl, as
	// JoinPresence does; if connID was not present yet (Fresh) it publishes
	// joinEvent, unless nil, on PresenceTopic(room); and it returns the
	// room's present connections, connID included. ttl == 0 is membership
	// only; a negative ttl is ErrInvalidArgument.
	//
	// Each step is atomic as its own method is; the whole is not: Present
	// is read after this call's join and may include joins made
	// concurrently. The event is published exactly when Fresh, after the
	// entry is stored, by the backend itself (a caller that gives up
	// waiting does not lose it). Present may be shared with concurrent
	// joins of the same room and must not be modified; joinEvent is copied
	// before JoinRoom returns.
	//
	// On an error the join may or may not have been applied (and the
	// event published); the result's fields say what is known.
	//
	// One awaited call. A backend should send concurrent calls together
	// (Redis: one script for the joins of many connections, one round trip
	// for all of them).
	JoinRoom(ctx context.Context, room, connID string, ttl time.Duration, joinEvent []byte) (RoomJoin, error)
}

// RoomJoin is the outcome of JoinRoom.
type RoomJoin struct {
	// Added reports that connID was not a member of the room yet.
	Added bool
	// Fresh reports that ttl > 0 and connID was not present yet: the event
	// was published.
	Fresh bool
	// Present lists the room's present connections when ttl > 0 (in no
	// particular order), nil otherwise.
	Present []string
}
