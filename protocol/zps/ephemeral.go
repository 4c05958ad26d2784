package zps

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/meshfast/meshfast/protocol/jsonx"
)

// EphemeralEvent is a fan-out-only event (typing, cursors, presence): never
// stored, without sequence, replay or ack. It encodes as
//
//	{"id":"…","type":"typing","room":"chat:123","emittedAt":"…","payload":{…}}
type EphemeralEvent struct {
	ID        string
	Type      string
	Room      string
	EmittedAt time.Time
	Payload   json.RawMessage
}

// AppendJSON appends the event's JSON. It allocates only to grow dst.
func (e *EphemeralEvent) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = jsonx.AppendString(dst, e.ID)
	dst = append(dst, `,"type":`...)
	dst = jsonx.AppendString(dst, e.Type)
	dst = append(dst, `,"room":`...)
	dst = jsonx.AppendString(dst, e.Room)
	dst = append(dst, `,"emittedAt":"`...)
	dst = AppendTime(dst, e.EmittedAt)
	dst = append(dst, `","payload":`...)
	dst = appendRaw(dst, e.Payload)
	return append(dst, '}')
}

// MarshalJSON is AppendJSON for encoding/json.
func (e EphemeralEvent) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

// UnmarshalJSON is DecodeEphemeral on a copy of b, for encoding/json.
func (e *EphemeralEvent) UnmarshalJSON(b []byte) error { return DecodeEphemeral(clone(b), e) }

// DecodeEphemeral reads an ephemeral event into e. Payload is a slice of b.
// type and room are required; id and emittedAt optional. Errors wrap
// ErrInvalidEvent.
func DecodeEphemeral(b []byte, e *EphemeralEvent) error {
	*e = EphemeralEvent{}
	var it jsonx.ObjectIter
	if !it.Start(b) {
		return fmt.Errorf("%w: not a JSON object", ErrInvalidEvent)
	}
	var have uint8
	for it.Next() {
		key, kesc := it.Key()
		val, vesc := it.Value()
		if kesc {
			key = jsonx.AppendUnescaped(nil, key)
		}
		var err error
		switch string(key) {
		case "id":
			e.ID, err = str(val, vesc, "id")
		case "type":
			e.Type, err = str(val, vesc, "type")
			have |= 1
		case "room":
			e.Room, err = str(val, vesc, "room")
			have |= 2
		case "emittedAt":
			e.EmittedAt, err = timeVal(val, vesc, "emittedAt")
		case "payload":
			e.Payload = payloadVal(val)
		}
		if err != nil {
			*e = EphemeralEvent{}
			return err
		}
	}
	if !it.End() {
		*e = EphemeralEvent{}
		return fmt.Errorf("%w: malformed JSON", ErrInvalidEvent)
	}
	if have != 3 {
		*e = EphemeralEvent{}
		return fmt.Errorf("%w: type and room are required", ErrInvalidEvent)
	}
	if _, _, err := ParseRoom(e.Room); err != nil {
		*e = EphemeralEvent{}
		return fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	if err := CheckName("event type", e.Type); err != nil {
		*e = EphemeralEvent{}
		return fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return nil
}

// PresenceUser is one member of a room's presence, the document's
// {userId, metadata, lastSeenAt}.
type PresenceUser struct {
	UserID     string
	Metadata   json.RawMessage // a JSON object or nil
	LastSeenAt time.Time
}

// AppendJSON appends {"userId":…,"metadata":…,"lastSeenAt":"…"} (metadata
// left out when nil).
func (u *PresenceUser) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"userId":`...)
	dst = jsonx.AppendString(dst, u.UserID)
	if u.Metadata != nil {
		dst = append(dst, `,"metadata":`...)
		dst = append(dst, u.Metadata...)
	}
	dst = append(dst, `,"lastSeenAt":"`...)
	dst = AppendTime(dst, u.LastSeenAt)
	return append(dst, `"}`...)
}

// MarshalJSON is AppendJSON for encoding/json.
func (u PresenceUser) MarshalJSON() ([]byte, error) { return u.AppendJSON(nil), nil }

// UnmarshalJSON is DecodePresenceUser on a copy of b.
func (u *PresenceUser) UnmarshalJSON(b []byte) error { return DecodePresenceUser(clone(b), u) }

// DecodePresenceUser reads a presence user into u; Metadata is a slice of
// b. userId is required. Errors wrap ErrInvalidEvent.
func DecodePresenceUser(b []byte, u *PresenceUser) error {
	*u = PresenceUser{}
	var it jsonx.ObjectIter
	if !it.Start(b) {
		return fmt.Errorf("%w: presence user is not a JSON object", ErrInvalidEvent)
	}
	have := false
	for it.Next() {
		key, kesc := it.Key()
		val, vesc := it.Value()
		if kesc {
			key = jsonx.AppendUnescaped(nil, key)
		}
		var err error
		switch string(key) {
		case "userId":
			u.UserID, err = str(val, vesc, "userId")
			have = true
		case "metadata":
			switch {
			case string(val) == "null":
			case val[0] == '{':
				u.Metadata = val
			default:
				err = fmt.Errorf("%w: presence metadata is not an object", ErrInvalidEvent)
			}
		case "lastSeenAt":
			u.LastSeenAt, err = timeVal(val, vesc, "lastSeenAt")
		}
		if err != nil {
			*u = PresenceUser{}
			return err
		}
	}
	if !it.End() || !have {
		*u = PresenceUser{}
		return fmt.Errorf("%w: presence user needs a string userId", ErrInvalidEvent)
	}
	if err := CheckName("user id", u.UserID); err != nil {
		*u = PresenceUser{}
		return fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return nil
}
