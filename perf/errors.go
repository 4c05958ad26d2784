package perf

import "errors"

// Sentinel errors. Construction errors wrap them with the offending value, so
// test with errors.Is.
var (
	// ErrInvalidOptions reports an Options value that Validate rejects.
	ErrInvalidOptions = errors.New("perf: invalid options")

	// ErrCorruptHistogram reports encoded histogram bytes that cannot be
	// decoded, or that decode to counts the geometry cannot hold.
	ErrCorruptHistogram = errors.New("perf: corrupt histogram encoding")
)
