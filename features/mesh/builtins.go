package mesh

import (
	"encoding/json"

	"github.com/meshfast/meshfast/protocol"
)

// registerBuiltins exposes Mesh's built-in commands through the same path
// as application commands, so global middleware guards them too.
func (s *Server) registerBuiltins() {
	s.Expose(protocol.CmdSubscribeChannel, func(c *Context) (any, error) {
		var req protocol.SubscribeChannelRequest
		if c.Bind(&req) != nil || req.Channel == "" {
			return protocol.SubscribeChannelReply{Success: false, History: []string{}}, nil
		}
		ok, history := s.subscribeChannel(c, c.Conn, req.Channel, req.HistoryLimit)
		return protocol.SubscribeChannelReply{Success: ok, History: history}, nil
	})
	s.Expose(protocol.CmdUnsubscribeChannel, func(c *Context) (any, error) {
		var req protocol.UnsubscribeChannelRequest
		if c.Bind(&req) != nil {
			return false, nil
		}
		return s.subs.drop(c, c.Conn, channelSource, req.Channel), nil
	})
	s.Expose(protocol.CmdJoinRoom, func(c *Context) (any, error) {
		var req protocol.JoinRoomRequest
		if err := c.Bind(&req); err != nil {
			return nil, err
		}
		if err := s.AddToRoom(c, req.RoomName, c.Conn.id); err != nil {
			return nil, err
		}
		present := []string{}
		if _, tracked := s.pres.lookup(req.RoomName); tracked {
			p, err := s.co.PresentConnections(c, req.RoomName)
			if err != nil {
				return nil, err
			}
			if p != nil {
				present = p
			}
		}
		return protocol.JoinRoomReply{Success: true, Present: present}, nil
	})
	s.Expose(protocol.CmdLeaveRoom, func(c *Context) (any, error) {
		var req protocol.LeaveRoomRequest
		if err := c.Bind(&req); err != nil {
			return nil, err
		}
		if err := s.RemoveFromRoom(c, req.RoomName, c.Conn.id); err != nil {
			return nil, err
		}
		return protocol.SuccessReply{Success: true}, nil
	})
	s.Expose(protocol.CmdGetConnectionMetadata, func(c *Context) (any, error) {
		var req protocol.GetConnectionMetadataRequest
		if err := c.Bind(&req); err != nil {
			return nil, err
		}
		m, err := s.ConnectionMetadata(c, req.ConnectionID)
		if err != nil {
			return nil, err
		}
		return protocol.MetadataReply{Metadata: json.RawMessage(m)}, nil
	})
	s.Expose(protocol.CmdGetMyConnectionMetadata, func(c *Context) (any, error) {
		m, err := s.ConnectionMetadata(c, c.Conn.id)
		if err != nil {
			return nil, err
		}
		return protocol.MetadataReply{Metadata: json.RawMessage(m)}, nil
	})
	s.Expose(protocol.CmdGetRoomMetadata, func(c *Context) (any, error) {
		var req protocol.GetRoomMetadataRequest
		if err := c.Bind(&req); err != nil {
			return nil, err
		}
		m, err := s.RoomMetadata(c, req.RoomName)
		if err != nil {
			return nil, err
		}
		return protocol.MetadataReply{Metadata: json.RawMessage(m)}, nil
	})
}
