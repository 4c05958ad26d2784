package mesh

import (
	"context"
	"encoding/json"
)

// SetConnectionMetadata replaces connID's metadata with meta encoded as JSON.
func (s *Server) SetConnectionMetadata(ctx context.Context, connID string, meta any) error {
	b, err := encodePayload(nil, meta)
	if err != nil {
		return err
	}
	if err := s.co.SetConnectionMetadata(ctx, connID, b); err != nil {
		return err
	}
	if c := s.Connection(connID); c != nil {
		c.keepMetadata(b)
	}
	return nil
}

// ConnectionMetadata returns connID's metadata, nil when it has none.
func (s *Server) ConnectionMetadata(ctx context.Context, connID string) (json.RawMessage, error) {
	return s.co.ConnectionMetadata(ctx, connID)
}

// ConnectionMetadataEntry is one connection's metadata in Mesh's list shape.
type ConnectionMetadataEntry struct {
	ConnID   string
	Metadata json.RawMessage // nil when none
}

// MarshalJSON gives Mesh's one-key object {"<id>": metadata}.
func (e ConnectionMetadataEntry) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	b, _ = encodePayload(b, e.ConnID)
	b = append(b, ':')
	if e.Metadata == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, e.Metadata...)
	}
	return append(b, '}'), nil
}

// AllConnectionMetadata returns every connection's metadata (Mesh's
// getAllMetadata), in registration order.
func (s *Server) AllConnectionMetadata(ctx context.Context) ([]ConnectionMetadataEntry, error) {
	all, err := s.co.AllConnectionMetadata(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ConnectionMetadataEntry, len(all))
	for i, m := range all {
		out[i] = ConnectionMetadataEntry{ConnID: m.ConnID, Metadata: m.Metadata}
	}
	return out, nil
}

// RoomConnectionMetadata returns the metadata of room's members (Mesh's
// getAllMetadataForRoom); empty for an unknown room.
func (s *Server) RoomConnectionMetadata(ctx context.Context, room string) ([]ConnectionMetadataEntry, error) {
	all, err := s.co.RoomConnectionMetadata(ctx, room)
	if err != nil {
		return nil, err
	}
	out := make([]ConnectionMetadataEntry, len(all))
	for i, m := range all {
		out[i] = ConnectionMetadataEntry{ConnID: m.ConnID, Metadata: m.Metadata}
	}
	return out, nil
}

// SetRoomMetadata replaces room's metadata with meta encoded as JSON.
func (s *Server) SetRoomMetadata(ctx context.Context, room string, meta any) error {
	b, err := encodePayload(nil, meta)
	if err != nil {
		return err
	}
	return s.co.SetRoomMetadata(ctx, room, b)
}

// RoomMetadata returns room's metadata, nil when it has none.
func (s *Server) RoomMetadata(ctx context.Context, room string) (json.RawMessage, error) {
	return s.co.RoomMetadata(ctx, room)
}

// UpdateRoomMetadata shallow-merges the JSON object partial into room's
// metadata and returns the result.
func (s *Server) UpdateRoomMetadata(ctx context.Context, room string, partial any) (json.RawMessage, error) {
	b, err := encodePayload(nil, partial)
	if err != nil {
		return nil, err
	}
	return s.co.UpdateRoomMetadata(ctx, room, b)
}

// AllRoomMetadata returns every room's metadata keyed by room name.
func (s *Server) AllRoomMetadata(ctx context.Context) (map[string]json.RawMessage, error) {
	all, err := s.co.AllRoomMetadata(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]json.RawMessage, len(all))
	for k, v := range all {
		out[k] = v
	}
	return out, nil
}
