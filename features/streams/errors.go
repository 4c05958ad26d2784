package streams

import (
	"errors"

	"github.com/meshfast/meshfast/features/streams/store"
	"github.com/meshfast/meshfast/protocol/zps"
)

// Errors. Methods wrap them with what was wrong; test with errors.Is. The
// store's and the wire format's sentinels are re-exported so that callers
// need not import those packages.
var (
	// ErrClosed: Streams (or the subscription) was closed.
	ErrClosed = errors.New("streams: closed")
	// ErrBlocked: a middleware refused the action (its error is wrapped
	// too), or returned without calling next.
	ErrBlocked = errors.New("streams: blocked by middleware")
	// ErrReservedType: an ephemeral event type under "presence.", which
	// presence uses.
	ErrReservedType = errors.New("streams: reserved event type")
	// ErrInvalidOptions: options of a call that conflict or are out of
	// range.
	ErrInvalidOptions = errors.New("streams: invalid options")

	ErrInvalidRoom    = zps.ErrInvalidRoom
	ErrInvalidPattern = zps.ErrInvalidPattern
	ErrInvalidName    = zps.ErrInvalidName
	ErrInvalidJSON    = zps.ErrInvalidJSON

	ErrUnavailable   = store.ErrUnavailable
	ErrAheadOfHead   = store.ErrAheadOfHead
	ErrStaleSnapshot = store.ErrStaleSnapshot
)
