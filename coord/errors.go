package coord

import (
	"errors"

	"github.com/meshfast/meshfast/protocol/jsonx"
)

// Sentinel errors returned by every Coordinator implementation. Implementations
// wrap them with context (fmt.Errorf("coord: ...: %w", ErrX)); test with errors.Is.
// A canceled or expired context is reported as the context's own error
// (context.Canceled, context.DeadlineExceeded), possibly wrapped.
var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("coord: closed")

	// ErrUnavailable means the backend (for example Redis) could not be
	// reached or failed. The operation may or may not have been applied.
	ErrUnavailable = errors.New("coord: backend unavailable")

	// ErrNotFound is returned by lookups of a single item that does not exist
	// and has no "null" meaning of its own (ConnectionNode of an unregistered
	// connection). Lookups whose Mesh counterpart returns null (metadata,
	// records, presence state) return a nil value and no error instead.
	ErrNotFound = errors.New("coord: not found")

	// ErrInvalidArgument is returned for an empty id or name, a nil value
	// where a value is required, or a non-positive TTL.
	ErrInvalidArgument = errors.New("coord: invalid argument")

	// ErrInvalidJSON is returned when a value that the coordinator has to
	// interpret (record values, room metadata merges) is not valid JSON. It
	// is jsonx's, which every backend interprets values with.
	ErrInvalidJSON = jsonx.ErrInvalidJSON

	// ErrNotObject is returned by UpdateRoomMetadata when the partial value is
	// not a JSON object. It is jsonx's.
	ErrNotObject = jsonx.ErrNotObject

	// ErrConflict is returned when an optimistic update (SetRecord,
	// UpdateRoomMetadata) lost its compare-and-set race more often than the
	// backend is willing to retry. The memory backend retries without bound
	// and never returns it.
	ErrConflict = errors.New("coord: too many concurrent writers")
)
