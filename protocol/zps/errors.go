package zps

import "errors"

// Sentinel errors. Functions return them wrapped with what was wrong
// (fmt.Errorf("zps: ...: %w", ErrX)); test with errors.Is.
var (
	// ErrInvalidRoom: a room name that is not scope:resourceId (see Room).
	ErrInvalidRoom = errors.New("zps: invalid room")
	// ErrInvalidPattern: a subscription pattern other than a room or
	// scope:* (the global "*" included).
	ErrInvalidPattern = errors.New("zps: invalid room pattern")
	// ErrInvalidName: an event id, event type or subscriber id that is
	// empty, too long or holds control characters.
	ErrInvalidName = errors.New("zps: invalid name")
	// ErrInvalidEvent: JSON that is not an envelope (not an object, a
	// required member missing or of the wrong type, a malformed time).
	ErrInvalidEvent = errors.New("zps: invalid event")
	// ErrInvalidJSON: a payload or metadata value that is not one JSON
	// value, or metadata that is not an object.
	ErrInvalidJSON = errors.New("zps: invalid JSON")
	// ErrInvalidMessage: a gateway protocol message that is not one (not
	// an object, no type, a member missing or of the wrong kind).
	ErrInvalidMessage = errors.New("zps: invalid message")
)
