package client

import (
	"errors"
)

// Errors the client returns itself. Failures the server reports come back
// as *protocol.CodeError instead (see Client.Command), as does a command
// timeout (code protocol.CodeTimeout).
var (
	// ErrClosed: the client was closed; it cannot be used again.
	ErrClosed = errors.New("client: closed")
	// ErrNotConnected: the client is Offline (never connected, or the
	// connection was lost with reconnection off) and the call needs a
	// connection. Commands wait for a connection only while the client is
	// Connecting or Reconnecting.
	ErrNotConnected = errors.New("client: not connected")
	// ErrConnectionLost: the connection a command was sent on closed before
	// its reply arrived. The server may or may not have run the command.
	ErrConnectionLost = errors.New("client: connection lost")
	// ErrReconnectFailed: the client gave up reconnecting after
	// Options.MaxReconnectAttempts attempts.
	ErrReconnectFailed = errors.New("client: reconnect failed")
	// ErrDeadServer: no server ping arrived within the watchdog's windows
	// (Options.PingTimeout, Options.MaxMissedPings); the connection was
	// closed. It is the cause a lost connection reports to Logf.
	ErrDeadServer = errors.New("client: server stopped sending pings")
	// ErrBadReply: a reply payload did not have the shape its command
	// promises.
	ErrBadReply = errors.New("client: malformed reply")
)

// DialError is the error of a connection attempt that failed: the TCP or
// TLS dial, or the WebSocket handshake (Mesh's ECONNECTION). It unwraps to
// the cause.
type DialError struct {
	URL string
	Err error
}

func (e *DialError) Error() string { return "client: dial " + e.URL + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *DialError) Unwrap() error { return e.Err }
