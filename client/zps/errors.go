package zps

import (
	"errors"
	"fmt"
)

// Errors.
var (
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("zps client: closed")
	// ErrConnectionLost: the connection ended before the reply came. A
	// Publish is sent again on the next connection by itself.
	ErrConnectionLost = errors.New("zps client: connection lost")
	// ErrQueueFull: MaxQueuedMessages publishes already wait for the
	// connection.
	ErrQueueFull = errors.New("zps client: too many messages waiting for the connection")
)

// ServerError is the gateway's error message: its code (protocol/zps's
// Code constants, "4408" for access denied) and text.
type ServerError struct {
	Code    string
	Message string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("zps client: %s (code %s)", e.Message, e.Code)
}

// DialError is a failure to open the WebSocket.
type DialError struct {
	URL string
	Err error
}

func (e *DialError) Error() string { return fmt.Sprintf("zps client: dial %s: %v", e.URL, e.Err) }
func (e *DialError) Unwrap() error { return e.Err }

// CloseError is the close frame a connection ended with.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("zps client: connection closed by the server: %d %s", e.Code, e.Reason)
}
