package zps

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/meshfast/meshfast/protocol/jsonx"
)

// Event is one durable event: zero-pub-sub's RealtimeEnvelope. The store
// assigns Sequence (per room, from 1, without gaps), EmittedAt and
// ExpiresAt (EmittedAt plus the event's time to live); the publisher gives
// the rest.
type Event struct {
	// ID identifies the event; a publisher that gives one makes the
	// publish idempotent (publishing the same id to the same room again
	// returns this event).
	ID string
	// Type is the application's event type ("message.created").
	Type string
	// Room is scope:resourceId.
	Room string
	// Sequence is the event's position in its room: 1, 2, 3…
	Sequence uint64
	// EmittedAt is when the store accepted the event, to the millisecond.
	EmittedAt time.Time
	// ExpiresAt is when the event leaves replay (retention by age).
	ExpiresAt time.Time
	// Payload is the application's JSON value, stored and routed as given
	// (nil encodes as null).
	Payload json.RawMessage
	// Metadata is a JSON object or nil (producer, correlationId, traceId,
	// tenantId and the application's own keys).
	Metadata json.RawMessage
	// Encrypted marks a payload that the application encrypted end to end;
	// the server never looks inside a payload either way.
	Encrypted bool
}

// Clone returns a copy of e that shares no memory with it.
func (e *Event) Clone() Event {
	c := *e
	c.Payload = clone(e.Payload)
	c.Metadata = clone(e.Metadata)
	return c
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// AppendJSON appends the envelope's JSON (see the package documentation).
// It allocates only to grow dst. Payload and Metadata are written as
// given: CheckPayload them first if they did not come from a decoder.
func (e *Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = jsonx.AppendString(dst, e.ID)
	dst = append(dst, `,"type":`...)
	dst = jsonx.AppendString(dst, e.Type)
	dst = append(dst, `,"room":`...)
	dst = jsonx.AppendString(dst, e.Room)
	dst = append(dst, `,"sequence":`...)
	dst = strconv.AppendUint(dst, e.Sequence, 10)
	dst = append(dst, `,"emittedAt":"`...)
	dst = AppendTime(dst, e.EmittedAt)
	dst = append(dst, `","expiresAt":"`...)
	dst = AppendTime(dst, e.ExpiresAt)
	dst = append(dst, `","payload":`...)
	dst = appendRaw(dst, e.Payload)
	if e.Metadata != nil {
		dst = append(dst, `,"metadata":`...)
		dst = append(dst, e.Metadata...)
	}
	if e.Encrypted {
		dst = append(dst, `,"encrypted":true`...)
	}
	return append(dst, '}')
}

// MarshalJSON is AppendJSON for encoding/json.
func (e Event) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

// UnmarshalJSON is DecodeEvent on a copy of b, for encoding/json.
func (e *Event) UnmarshalJSON(b []byte) error { return DecodeEvent(clone(b), e) }

// DecodeEvent reads an envelope into e, replacing all of it. Payload and
// Metadata are slices of b (b must then not change while e is in use); the
// strings are copies. id, type, room and sequence (a positive integer) are
// required, the times optional; unknown members are ignored. Errors wrap
// ErrInvalidEvent; a room or name that is not valid is refused too.
func DecodeEvent(b []byte, e *Event) error {
	*e = Event{}
	var it jsonx.ObjectIter
	if !it.Start(b) {
		return fmt.Errorf("%w: not a JSON object", ErrInvalidEvent)
	}
	var have uint8
	const hID, hType, hRoom, hSeq = 1, 2, 4, 8
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
			have |= hID
		case "type":
			e.Type, err = str(val, vesc, "type")
			have |= hType
		case "room":
			e.Room, err = str(val, vesc, "room")
			have |= hRoom
		case "sequence":
			e.Sequence, err = seq(val)
			have |= hSeq
		case "emittedAt":
			e.EmittedAt, err = timeVal(val, vesc, "emittedAt")
		case "expiresAt":
			e.ExpiresAt, err = timeVal(val, vesc, "expiresAt")
		case "payload":
			e.Payload = payloadVal(val)
		case "metadata":
			switch {
			case string(val) == "null":
				e.Metadata = nil
			case val[0] == '{':
				e.Metadata = val
			default:
				err = fmt.Errorf("%w: metadata is not an object", ErrInvalidEvent)
			}
		case "encrypted":
			switch string(val) {
			case "true":
				e.Encrypted = true
			case "false":
				e.Encrypted = false
			default:
				err = fmt.Errorf("%w: encrypted is not a boolean", ErrInvalidEvent)
			}
		}
		if err != nil {
			*e = Event{}
			return err
		}
	}
	if !it.End() {
		*e = Event{}
		return fmt.Errorf("%w: malformed JSON", ErrInvalidEvent)
	}
	if have != hID|hType|hRoom|hSeq {
		*e = Event{}
		return fmt.Errorf("%w: id, type, room and sequence are required", ErrInvalidEvent)
	}
	if err := e.checkNames(); err != nil {
		*e = Event{}
		return fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return nil
}

func (e *Event) checkNames() error {
	if _, _, err := ParseRoom(e.Room); err != nil {
		return err
	}
	if err := CheckName("event id", e.ID); err != nil {
		return err
	}
	return CheckName("event type", e.Type)
}

// CheckPayload validates what a publisher gives: payload one JSON value
// (nil allowed), metadata a JSON object or nil. Errors wrap ErrInvalidJSON.
func CheckPayload(payload, metadata []byte) error {
	if payload != nil && !jsonx.Valid(payload) {
		return fmt.Errorf("%w: payload", ErrInvalidJSON)
	}
	if metadata != nil {
		var it jsonx.ObjectIter
		if !it.Start(metadata) {
			return fmt.Errorf("%w: metadata is not a JSON object", ErrInvalidJSON)
		}
		for it.Next() {
		}
		if !it.End() {
			return fmt.Errorf("%w: metadata", ErrInvalidJSON)
		}
	}
	return nil
}

// payloadVal reads a payload member: null is no payload, as an absent one.
func payloadVal(val []byte) json.RawMessage {
	if string(val) == "null" {
		return nil
	}
	return val
}

func appendRaw(dst, raw []byte) []byte {
	if raw == nil {
		return append(dst, "null"...)
	}
	return append(dst, raw...)
}

func str(val []byte, esc bool, what string) (string, error) {
	if len(val) < 2 || val[0] != '"' {
		return "", fmt.Errorf("%w: %s is not a string", ErrInvalidEvent, what)
	}
	body := val[1 : len(val)-1]
	if esc {
		return string(jsonx.AppendUnescaped(nil, body)), nil
	}
	return string(body), nil
}

func seq(val []byte) (uint64, error) {
	n, err := strconv.ParseUint(string(val), 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%w: sequence %s is not a positive integer", ErrInvalidEvent, val)
	}
	return n, nil
}

func timeVal(val []byte, esc bool, what string) (time.Time, error) {
	if string(val) == "null" {
		return time.Time{}, nil
	}
	s, err := str(val, esc, what)
	if err != nil {
		return time.Time{}, err
	}
	return ParseTime(s)
}
