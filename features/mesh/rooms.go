package mesh

import (
	"context"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/protocol"
)

// AddToRoom adds the connection connID, on any node, to room. The
// connection starts receiving the room's broadcasts at once if it is on
// this node, and a moment later on another (its node is sent the change:
// a broadcast right after AddToRoom returns may miss it there, since the
// two travel separately, on a Redis Cluster even through different
// masters); if the room is presence-tracked it becomes present (a "join"
// event).
func (s *Server) AddToRoom(ctx context.Context, room, connID string) error {
	_, err := s.joinRoom(ctx, room, connID)
	return err
}

// joinRoom is AddToRoom, returning the room's present connections when it
// is tracked (nil otherwise), as mesh/join-room answers. Membership,
// presence, the "join" event and the present list are one coordinator call
// (coord.Joins), which a Redis coordinator sends together with the joins
// of other connections: a join storm costs Redis round trips per batch of
// joins, not several per join as in Mesh.
func (s *Server) joinRoom(ctx context.Context, room, connID string) ([]string, error) {
	var ttl time.Duration
	var event []byte
	if o, ok := s.pres.lookup(room); ok {
		ttl = o.TTL
		event = protocol.AppendPresenceUpdate(nil, protocol.PresenceJoin, connID, room, time.Now().UnixMilli(), nil)
	}
	j, err := s.co.JoinRoom(ctx, room, connID, ttl, event)
	if err != nil {
		return nil, err
	}
	if c := s.Connection(connID); c != nil {
		if err := s.joinLocal(ctx, c, room); err != nil {
			return nil, err
		}
	} else if err := s.tellOwner(ctx, nodeMsgJoin, room, connID); err != nil {
		return nil, err
	}
	return j.Present, nil
}

// RemoveFromRoom removes connID, on any node, from room (marking it absent
// first when the room is tracked, as Mesh does). For a connection of
// another node the membership is gone at once but its node stops its
// delivery a moment later, as for AddToRoom.
func (s *Server) RemoveFromRoom(ctx context.Context, room, connID string) error {
	if err := s.pres.leaveID(ctx, connID, room); err != nil {
		return err
	}
	if _, err := s.co.RemoveFromRoom(ctx, room, connID); err != nil {
		return err
	}
	return s.leaveAnywhere(ctx, room, connID)
}

// joinLocal makes a connection of this node receive room's broadcasts and,
// in a tracked room, refresh its presence on pongs.
func (s *Server) joinLocal(ctx context.Context, c *Connection, room string) error {
	if err := s.subs.take(ctx, c, roomRoute, room); err != nil {
		return err
	}
	if o, ok := s.pres.lookup(room); ok {
		c.setPresent(room, o.TTL)
	}
	return nil
}

func (s *Server) leaveLocal(ctx context.Context, c *Connection, room string) {
	c.setPresent(room, 0)
	s.subs.drop(ctx, c, roomSource, room)
}

// leaveAnywhere undoes joinLocal for connID wherever it lives.
func (s *Server) leaveAnywhere(ctx context.Context, room, connID string) error {
	if c := s.Connection(connID); c != nil {
		s.leaveLocal(ctx, c, room)
		return nil
	}
	return s.tellOwner(ctx, nodeMsgLeave, room, connID)
}

// tellOwner asks the node that owns connID to apply a room change to it.
func (s *Server) tellOwner(ctx context.Context, kind byte, room, connID string) error {
	node, err := s.co.ConnectionNode(ctx, connID)
	if err != nil || node == s.nodeID {
		return nil // not connected anywhere: membership alone is recorded
	}
	return s.co.Publish(ctx, coord.NodeTopic(node), appendEnvelope([]byte{kind}, []string{room, connID}, nil))
}

// IsInRoom reports whether connID is a member of room.
func (s *Server) IsInRoom(ctx context.Context, room, connID string) (bool, error) {
	return s.co.IsInRoom(ctx, room, connID)
}

// RoomMembers returns the ids of room's members, on every node.
func (s *Server) RoomMembers(ctx context.Context, room string) ([]string, error) {
	return s.co.RoomMembers(ctx, room)
}

// ConnectionRooms returns the rooms connID is a member of.
func (s *Server) ConnectionRooms(ctx context.Context, connID string) ([]string, error) {
	return s.co.ConnectionRooms(ctx, connID)
}

// RemoveFromAllRooms removes connID from every room it is in.
func (s *Server) RemoveFromAllRooms(ctx context.Context, connID string) error {
	rooms, err := s.co.RemoveFromAllRooms(ctx, connID)
	if err != nil {
		return err
	}
	for _, room := range rooms {
		if err := s.leaveAnywhere(ctx, room, connID); err != nil {
			return err
		}
	}
	return nil
}

// ClearRoom removes every member of room and deletes its metadata.
func (s *Server) ClearRoom(ctx context.Context, room string) error {
	members, err := s.co.ClearRoom(ctx, room)
	if err != nil {
		return err
	}
	for _, id := range members {
		if err := s.leaveAnywhere(ctx, room, id); err != nil {
			return err
		}
	}
	return nil
}
