package store

import "errors"

// Sentinel errors of every backend, wrapped with context; test with
// errors.Is. A canceled or expired context is reported as the context's
// own error, possibly wrapped.
var (
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("streams/store: closed")
	// ErrUnavailable: the backend could not be reached or failed; the
	// operation may or may not have been applied.
	ErrUnavailable = errors.New("streams/store: backend unavailable")
	// ErrInvalidArgument: an empty room, id or subscriber, a limit out of
	// range, a non-positive TTL.
	ErrInvalidArgument = errors.New("streams/store: invalid argument")
	// ErrAheadOfHead: an ack or snapshot names a sequence the room has not
	// reached.
	ErrAheadOfHead = errors.New("streams/store: sequence beyond the room's head")
	// ErrStaleSnapshot: the room has a snapshot with a higher LastSequence.
	ErrStaleSnapshot = errors.New("streams/store: a newer snapshot is stored")
)
