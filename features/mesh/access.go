package mesh

import (
	"context"
	"regexp"
	"sync"

	"github.com/meshfast/meshfast/protocol"
)

// Who may join a room and read metadata. Mesh leaves these doors open: any
// client may join any room (mesh/join-room has no guard), read the metadata
// of any connection whose id it knows (ids are in presence lists and join
// replies), and read any room's metadata. meshfast keeps that default, so
// Mesh applications behave as they did, and closes each door two ways:
//
//   - a guard, when one is set (ExposeRoom's, GuardConnectionMetadata's,
//     GuardRoomMetadata's), always decides for what it covers;
//   - where no guard is set, Options.Private decides: closed with it, open
//     without.
//
// A connection may always read its own metadata, and the metadata of a room
// it is a member of: neither tells it anything it could not learn otherwise.
// Channels, records and presence are closed by default in Mesh already
// (they need ExposeChannel, ExposeRecord, TrackPresence).

// access holds the guards of the doors above.
type access struct {
	rooms exposures // ExposeRoom, ExposeRoomPattern

	mu       sync.RWMutex
	connMeta Guard // GuardConnectionMetadata
	roomMeta Guard // GuardRoomMetadata
}

// ExposeRoom lets clients join the room name with mesh/join-room when
// guard (if not nil) allows them; exposing it again replaces the guard.
// Without Options.Private every room may be joined and an exposure only
// adds its guard; with it, only exposed rooms may be. It governs what a
// client asks for, not AddToRoom.
func (s *Server) ExposeRoom(name string, guard Guard) { s.access.rooms.addExact(name, guard) }

// ExposeRoomPattern is ExposeRoom for every room whose name matches re; the
// guard gets the concrete name. An exact ExposeRoom wins over a pattern.
func (s *Server) ExposeRoomPattern(re *regexp.Regexp, guard Guard) {
	s.access.rooms.addPattern(re, guard)
}

// GuardConnectionMetadata sets the guard that decides whether a connection
// may read another connection's metadata (mesh/get-connection-metadata);
// the guard gets the other connection's id as its name. A connection may
// always read its own. With no guard (nil removes it) other connections'
// metadata is readable by all, unless Options.Private.
func (s *Server) GuardConnectionMetadata(guard Guard) {
	s.access.mu.Lock()
	s.access.connMeta = guard
	s.access.mu.Unlock()
}

// GuardRoomMetadata sets the guard that decides whether a connection may
// read the metadata of a room it is not a member of (mesh/get-room-metadata).
// Members may always read it. With no guard (nil removes it) every room's
// metadata is readable by all, unless Options.Private.
func (s *Server) GuardRoomMetadata(guard Guard) {
	s.access.mu.Lock()
	s.access.roomMeta = guard
	s.access.mu.Unlock()
}

// Refusals of the doors, for the client: they do not say whether the room
// or connection exists.
var (
	errJoinForbidden     = protocol.Forbidden("not allowed to join this room")
	errConnMetaForbidden = protocol.Forbidden("not allowed to read this connection's metadata")
	errRoomMetaForbidden = protocol.Forbidden("not allowed to read this room's metadata")
)

// mayJoin reports whether c may join room with mesh/join-room.
func (s *Server) mayJoin(c *Connection, room string) bool {
	g, exposed := s.access.rooms.lookup(room)
	if !exposed {
		return !s.opts.Private
	}
	return g == nil || runGuard(g, c, room)
}

// mayReadConnMeta reports whether c may read connID's metadata.
func (s *Server) mayReadConnMeta(c *Connection, connID string) bool {
	if connID == c.id {
		return true
	}
	s.access.mu.RLock()
	g := s.access.connMeta
	s.access.mu.RUnlock()
	if g == nil {
		return !s.opts.Private
	}
	return runGuard(g, c, connID)
}

// mayReadRoomMeta reports whether c may read room's metadata. Membership is
// asked of the coordinator only when the door is not open anyway.
func (s *Server) mayReadRoomMeta(ctx context.Context, c *Connection, room string) (bool, error) {
	s.access.mu.RLock()
	g := s.access.roomMeta
	s.access.mu.RUnlock()
	if g == nil && !s.opts.Private {
		return true, nil
	}
	member, err := s.co.IsInRoom(ctx, room, c.id)
	if err != nil || member {
		return member, err
	}
	return g != nil && runGuard(g, c, room), nil
}
