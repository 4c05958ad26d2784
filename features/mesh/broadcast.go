package mesh

import (
	"context"
	"encoding/json"
	"unsafe"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/protocol"
)

// encodePayload encodes a Go value as a JSON payload. json.RawMessage and
// protocol reply types pass through without reflection.
func encodePayload(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return dst, nil
	case json.RawMessage:
		if len(x) == 0 {
			return append(dst, "null"...), nil
		}
		return append(dst, x...), nil
	case interface{ AppendJSON([]byte) []byte }:
		return x.AppendJSON(dst), nil
	case string:
		return protocol.AppendJSONString(dst, x), nil
	case bool:
		return protocol.AppendBool(dst, x), nil
	}
	return protocol.AppendJSON(dst, v)
}

// encodePush encodes {"command", "payload"} into a new frame.
func encodePush(command string, payload any) (*engine.Frame, error) {
	p, err := encodePayload(nil, payload)
	if err != nil {
		return nil, err
	}
	if payload == nil {
		p = nil
	}
	f := engine.AcquireFrame()
	f.SetPayload(engine.OpText, protocol.AppendPush(f.PayloadBuf(), command, p))
	return f, nil
}

func encodePushBytes(command string, payload any) ([]byte, error) {
	p, err := encodePayload(nil, payload)
	if err != nil {
		return nil, err
	}
	if payload == nil {
		p = nil
	}
	return protocol.AppendPush(nil, command, p), nil
}

// Broadcast sends {"command", "payload"} to every connection of the
// cluster, or only to connIDs when given (Mesh's broadcast).
func (s *Server) Broadcast(ctx context.Context, command string, payload any, connIDs ...string) error {
	frame, err := encodePushBytes(command, payload)
	if err != nil {
		return err
	}
	if len(connIDs) > 0 {
		return s.sendTo(ctx, connIDs, frame)
	}
	return s.co.Publish(ctx, topicAllCoord, appendEnvelope(nil, nil, frame))
}

// BroadcastExclude sends to every connection except those in exclude.
func (s *Server) BroadcastExclude(ctx context.Context, command string, payload any, exclude []string) error {
	frame, err := encodePushBytes(command, payload)
	if err != nil {
		return err
	}
	return s.co.Publish(ctx, topicAllCoord, appendEnvelope(nil, exclude, frame))
}

// BroadcastRoom sends to every member of room.
func (s *Server) BroadcastRoom(ctx context.Context, room, command string, payload any) error {
	return s.BroadcastRoomExclude(ctx, room, command, payload, nil)
}

// BroadcastRoomExclude sends to every member of room except those in exclude.
func (s *Server) BroadcastRoomExclude(ctx context.Context, room, command string, payload any, exclude []string) error {
	frame, err := encodePushBytes(command, payload)
	if err != nil {
		return err
	}
	return s.co.Publish(ctx, roomSource.coordTopic(room), appendEnvelope(nil, exclude, frame))
}

// sendTo routes an encoded frame to the given connections: local ones
// directly, others through their node's topic, one message per node.
func (s *Server) sendTo(ctx context.Context, connIDs []string, frame []byte) error {
	var local []*engine.Conn
	var remote []string
	for _, id := range connIDs {
		if c := s.Connection(id); c != nil {
			local = append(local, c.c)
		} else {
			remote = append(remote, id)
		}
	}
	if len(local) > 0 {
		f := engine.AcquireFrame()
		f.SetPayload(engine.OpText, append(f.PayloadBuf(), frame...))
		s.e.Broadcast(f, local, nil)
		f.Release()
	}
	if len(remote) == 0 {
		return nil
	}
	nodes, err := s.co.ConnectionNodes(ctx, remote)
	if err != nil {
		return err
	}
	byNode := make(map[string][]string)
	for i, n := range nodes {
		if n != "" && n != s.nodeID {
			byNode[n] = append(byNode[n], remote[i])
		}
	}
	msgs := make([]coord.Message, 0, len(byNode))
	for n, ids := range byNode {
		msgs = append(msgs, coord.Message{Topic: coord.NodeTopic(n), Payload: appendEnvelope([]byte{nodeMsgFrame}, ids, frame)})
	}
	if len(msgs) == 0 {
		return nil
	}
	return s.co.PublishBatch(ctx, msgs)
}

func b2s(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
