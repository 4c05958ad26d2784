package bench

import "errors"

// Sentinel errors. Validation errors wrap ErrInvalidOptions with the
// offending value; test with errors.Is.
var (
	// ErrInvalidOptions wraps a setting Options.Validate refuses.
	ErrInvalidOptions = errors.New("bench: invalid options")
	// ErrNotLoopback is returned (wrapped in ErrInvalidOptions) for a target
	// outside 127.0.0.0/8: the load generator only loads this machine.
	ErrNotLoopback = errors.New("bench: target is not a loopback address")
	// ErrWorker reports a worker process that failed or stopped answering.
	ErrWorker = errors.New("bench: worker failed")
	// ErrTimeout reports a phase that did not finish within Options.Timeout.
	ErrTimeout = errors.New("bench: phase timed out")
)

// HandshakeError is a server answer to the upgrade request other than a
// valid 101.
type HandshakeError struct{ Status string }

func (e *HandshakeError) Error() string { return "bench: upgrade refused: " + e.Status }
