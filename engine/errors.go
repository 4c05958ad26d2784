package engine

import (
	"errors"
	"fmt"
)

// Sentinel errors returned by the engine.
var (
	// ErrServerClosed is returned by Serve and Shutdown once the engine has stopped.
	ErrServerClosed = errors.New("engine: server closed")
	// ErrClosed is returned when writing to a connection that is closed.
	ErrClosed = errors.New("engine: connection closed")
	// ErrNotStarted is returned by methods that need a running engine.
	ErrNotStarted = errors.New("engine: not started")
	// ErrInvalidOptions wraps a conflict found by Options.Validate.
	ErrInvalidOptions = errors.New("engine: invalid options")
	// ErrFrameTooLarge is returned when building a frame bigger than the engine allows.
	ErrFrameTooLarge = errors.New("engine: frame too large")
	// ErrInvalidRoute wraps a route Serve refuses (Handle, HandleHTTP).
	ErrInvalidRoute = errors.New("engine: invalid route")
	// ErrStopped wraps the error Serve returns when gnet stopped without
	// Shutdown asking it to (a loop failed).
	ErrStopped = errors.New("engine: stopped unexpectedly")
)

// ProtocolError is an RFC 6455 violation by the peer. Code is the close code
// the connection is closed with.
type ProtocolError struct {
	Code   CloseCode
	Reason string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("engine: websocket protocol error %d: %s", e.Code, e.Reason)
}

func protoErr(code CloseCode, reason string) *ProtocolError {
	return &ProtocolError{Code: code, Reason: reason}
}

// Preallocated protocol errors: the read path must not allocate on bad input.
var (
	errUnmasked       = protoErr(CloseProtocolError, "client frame not masked")
	errReservedBits   = protoErr(CloseProtocolError, "reserved bits set")
	errReservedOpcode = protoErr(CloseProtocolError, "reserved opcode")
	errControlTooBig  = protoErr(CloseProtocolError, "control frame too large")
	errControlFrag    = protoErr(CloseProtocolError, "fragmented control frame")
	errBadContinue    = protoErr(CloseProtocolError, "continuation without a message")
	errExpectContinue = protoErr(CloseProtocolError, "new message inside a fragmented one")
	errNonMinimalLen  = protoErr(CloseProtocolError, "length not minimally encoded")
	errBadCloseBody   = protoErr(CloseProtocolError, "malformed close frame")
	errBadCloseCode   = protoErr(CloseProtocolError, "invalid close code")
	errInvalidUTF8    = protoErr(CloseInvalidPayload, "invalid UTF-8 in text message")
	errTooBig         = protoErr(CloseMessageTooBig, "message too big")
)

// CloseCode is a WebSocket close status code (RFC 6455 §7.4).
type CloseCode uint16

// Close codes the engine sends.
const (
	CloseNormal          CloseCode = 1000
	CloseGoingAway       CloseCode = 1001
	CloseProtocolError   CloseCode = 1002
	CloseUnsupported     CloseCode = 1003
	CloseNoStatus        CloseCode = 1005
	CloseAbnormal        CloseCode = 1006
	CloseInvalidPayload  CloseCode = 1007
	ClosePolicyViolation CloseCode = 1008
	CloseMessageTooBig   CloseCode = 1009
	CloseInternalError   CloseCode = 1011
	CloseTryAgainLater   CloseCode = 1013
)

// CloseReason says why a connection ended. It is the one enum fed to logs,
// metrics and tests.
type CloseReason uint8

// Close reasons.
const (
	ReasonUnknown          CloseReason = iota
	ReasonClientClosed                 // the peer sent a close frame
	ReasonClientGone                   // EOF or reset without a close frame
	ReasonServerClosed                 // the application closed it
	ReasonProtocolError                // RFC 6455 violation
	ReasonInvalidPayload               // invalid UTF-8 text
	ReasonMessageTooBig                // message over Options.MaxMessageSize
	ReasonSlowConsumer                 // pending outbound bytes over Options.MaxPendingBytes
	ReasonHandshakeTimeout             // request head not complete in time
	ReasonHandshakeFailed              // bad upgrade request, refused, or plain HTTP served
	ReasonIdleTimeout                  // nothing read for Options.IdleTimeout
	ReasonShutdown                     // the engine is shutting down
	ReasonWriteError                   // the socket refused a write
	ReasonLimit                        // a configured limit refused it
	ReasonHTTPDone                     // a plain HTTP request was answered
	numReasons
)

var reasonNames = [numReasons]string{
	"unknown", "client_closed", "client_gone", "server_closed", "protocol_error",
	"invalid_payload", "message_too_big", "slow_consumer", "handshake_timeout",
	"handshake_failed", "idle_timeout", "shutdown", "write_error", "limit", "http_done",
}

// CloseReasons lists every CloseReason, for exporting counters.
func CloseReasons() []CloseReason {
	out := make([]CloseReason, numReasons)
	for i := range out {
		out[i] = CloseReason(i)
	}
	return out
}

func (r CloseReason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// CloseInfo describes the end of a connection, handed to Handler.OnClose.
type CloseInfo struct {
	Reason CloseReason
	// Code is the close code sent or received; CloseAbnormal when none was.
	Code CloseCode
	// Err is the underlying error, if any.
	Err error
}
