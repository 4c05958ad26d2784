package mesh

import (
	"encoding/json"

	"github.com/meshfast/meshfast/protocol"
)

// Client-facing errors of the built-in commands. A reply's text is for the
// client and stays the same from release to release: it names the field
// that was wrong, never quotes a decoder or a coordinator (whose messages
// echo the input and name internals). What the decoder said is wrapped
// behind it and logged once (Server.logHidden). Where Mesh answers a bad
// payload with a refusal of its own ({"success":false}, false, its
// "Invalid payload" text for mesh/publish-record-update), meshfast answers
// the same.
var (
	errRoomPayload   = protocol.InvalidArgument(`Invalid payload: expected {"roomName": string}`)
	errRoomEmpty     = protocol.InvalidArgument(`Invalid payload: "roomName" is empty`)
	errConnIDPayload = protocol.InvalidArgument(`Invalid payload: expected {"connectionId": string}`)
	errConnIDEmpty   = protocol.InvalidArgument(`Invalid payload: "connectionId" is empty`)
)

// roomRequest decodes the payload of a command that names a room.
func roomRequest(c *Context) (string, error) {
	var req struct {
		RoomName string `json:"roomName"`
	}
	if err := bindRequest(c, &req, errRoomPayload); err != nil {
		return "", err
	}
	if req.RoomName == "" {
		return "", errRoomEmpty
	}
	return req.RoomName, nil
}

// registerBuiltins exposes Mesh's built-in commands through the same path
// as application commands, so global middleware guards them too.
func (s *Server) registerBuiltins() {
	s.Expose(protocol.CmdSubscribeChannel, func(c *Context) (any, error) {
		var req protocol.SubscribeChannelRequest
		if c.Bind(&req) != nil || req.Channel == "" {
			return protocol.SubscribeChannelReply{Success: false, History: []string{}}, nil
		}
		src := channelSource
		if s.durable(req.Channel) {
			src = durableSource
		}
		if !s.maySubscribeMore(c.Conn, src, req.Channel) {
			return nil, errTooManySubs
		}
		if src == durableSource {
			if checkChannel(req.Channel) != nil || !s.channels.allowed(c.Conn, req.Channel) {
				return protocol.SubscribeChannelReply{Success: false, History: []string{}}, nil
			}
			return s.subscribeDurable(c, &req)
		}
		ok, history := s.subscribeChannel(c, c.Conn, req.Channel, req.HistoryLimit)
		return protocol.SubscribeChannelReply{Success: ok, History: history}, nil
	})
	s.Expose(protocol.CmdUnsubscribeChannel, func(c *Context) (any, error) {
		var req protocol.UnsubscribeChannelRequest
		if c.Bind(&req) != nil {
			return false, nil
		}
		// Whichever the connection holds: the exposure may have changed
		// since it subscribed.
		plain := s.subs.drop(c, c.Conn, channelSource, req.Channel)
		durable := s.subs.drop(c, c.Conn, durableSource, req.Channel)
		return plain || durable, nil
	})
	s.Expose(protocol.CmdJoinRoom, func(c *Context) (any, error) {
		room, err := roomRequest(c)
		if err != nil {
			return nil, err
		}
		if !s.mayJoin(c.Conn, room) {
			return nil, errJoinForbidden
		}
		if !s.mayJoinMore(c.Conn, room) {
			return nil, errTooManyRooms
		}
		present, err := s.joinRoom(c, room, c.Conn.id)
		if err != nil {
			return nil, s.coordFailed(c.Command, err)
		}
		if present == nil {
			present = []string{}
		}
		return protocol.JoinRoomReply{Success: true, Present: present}, nil
	})
	s.Expose(protocol.CmdLeaveRoom, func(c *Context) (any, error) {
		room, err := roomRequest(c)
		if err != nil {
			return nil, err
		}
		if err := s.RemoveFromRoom(c, room, c.Conn.id); err != nil {
			return nil, s.coordFailed(c.Command, err)
		}
		return protocol.SuccessReply{Success: true}, nil
	})
	s.Expose(protocol.CmdGetConnectionMetadata, func(c *Context) (any, error) {
		var req protocol.GetConnectionMetadataRequest
		if err := bindRequest(c, &req, errConnIDPayload); err != nil {
			return nil, err
		}
		if req.ConnectionID == "" {
			return nil, errConnIDEmpty
		}
		if !s.mayReadConnMeta(c.Conn, req.ConnectionID) {
			return nil, errConnMetaForbidden
		}
		m, err := s.ConnectionMetadata(c, req.ConnectionID)
		if err != nil {
			return nil, s.coordFailed(c.Command, err)
		}
		return protocol.MetadataReply{Metadata: json.RawMessage(m)}, nil
	})
	s.Expose(protocol.CmdGetMyConnectionMetadata, func(c *Context) (any, error) {
		// Mesh ignores the payload (its client sends {}); so does meshfast.
		m, err := s.ConnectionMetadata(c, c.Conn.id)
		if err != nil {
			return nil, s.coordFailed(c.Command, err)
		}
		return protocol.MetadataReply{Metadata: json.RawMessage(m)}, nil
	})
	s.Expose(protocol.CmdGetRoomMetadata, func(c *Context) (any, error) {
		room, err := roomRequest(c)
		if err != nil {
			return nil, err
		}
		ok, err := s.mayReadRoomMeta(c, c.Conn, room)
		if err != nil {
			return nil, s.coordFailed(c.Command, err)
		}
		if !ok {
			return nil, errRoomMetaForbidden
		}
		m, err := s.RoomMetadata(c, room)
		if err != nil {
			return nil, s.coordFailed(c.Command, err)
		}
		return protocol.MetadataReply{Metadata: json.RawMessage(m)}, nil
	})
}
