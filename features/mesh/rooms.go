package mesh

import (
	"context"
)

// AddToRoom adds the connection connID to room. A connection on this node
// starts receiving the room's broadcasts at once.
func (s *Server) AddToRoom(ctx context.Context, room, connID string) error {
	if _, err := s.co.AddToRoom(ctx, room, connID); err != nil {
		return err
	}
	c := s.Connection(connID)
	if c != nil {
		if err := s.subscribeLocal(ctx, c, coordRoomPrefix+room, engineRoomPrefix+room); err != nil {
			return err
		}
	}
	if o, ok := s.pres.lookup(room); ok {
		if c != nil {
			c.setPresent(room, o.TTL)
		}
		return s.pres.joinID(ctx, connID, room, o.TTL)
	}
	return nil
}

// RemoveFromRoom removes connID from room (marking it absent first when
// the room is tracked, as Mesh does).
func (s *Server) RemoveFromRoom(ctx context.Context, room, connID string) error {
	c := s.Connection(connID)
	if c != nil {
		c.setPresent(room, 0)
	}
	if err := s.pres.leaveID(ctx, connID, room); err != nil {
		return err
	}
	if _, err := s.co.RemoveFromRoom(ctx, room, connID); err != nil {
		return err
	}
	if c != nil {
		s.unsubscribeLocal(ctx, c, coordRoomPrefix+room, engineRoomPrefix+room)
	}
	return nil
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
	if c := s.Connection(connID); c != nil {
		for _, room := range rooms {
			s.unsubscribeLocal(ctx, c, coordRoomPrefix+room, engineRoomPrefix+room)
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
		if c := s.Connection(id); c != nil {
			s.unsubscribeLocal(ctx, c, coordRoomPrefix+room, engineRoomPrefix+room)
		}
	}
	return nil
}

// subscribeLocal makes a local connection receive what is published on a
// coordinator topic: the node subscribes (once for all its connections),
// then the connection joins the engine topic on its loop.
func (s *Server) subscribeLocal(ctx context.Context, c *Connection, coordTopic, engineTopic string) error {
	if !c.holdTopic(coordTopic) {
		return nil // already subscribed, or the connection is gone
	}
	if err := s.topics.retain(ctx, coordTopic); err != nil {
		c.dropTopic(coordTopic)
		return err
	}
	// Wait for the loop: a publish made before it has the subscription
	// would skip this connection, and the caller is about to read history
	// or reply "subscribed".
	if !s.e.SubscribeWait(c.c, engineTopic) {
		s.unsubscribeLocal(ctx, c, coordTopic, engineTopic)
		return errConnectionGone
	}
	return nil
}

// unsubscribeLocal undoes subscribeLocal; it reports whether c was subscribed.
func (s *Server) unsubscribeLocal(ctx context.Context, c *Connection, coordTopic, engineTopic string) bool {
	if !c.dropTopic(coordTopic) {
		return false
	}
	s.e.UnsubscribeAsync(c.c, engineTopic)
	s.topics.release(ctx, coordTopic)
	return true
}
