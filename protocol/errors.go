package protocol

import (
	"errors"
	"strconv"
	"time"

	"github.com/meshfast/meshfast/protocol/jsonx"
)

// Decode's outcomes other than success. A Mesh server ignores all three
// silently (no reply, connection stays open, wire.md 1.0/1.1); they are
// distinct so that a server can count them and a client can log them.
var (
	// ErrInvalidJSON: the frame is not one well-formed JSON value (JSON.parse
	// would throw). Nesting deeper than 10000 levels is reported as this too.
	ErrInvalidJSON = errors.New("protocol: invalid JSON")
	// ErrNotObject: well-formed JSON that is not an object, e.g. 5 or "x".
	ErrNotObject = errors.New("protocol: frame is not a JSON object")
	// ErrNoCommand: a JSON object without a string "command" member.
	ErrNoCommand = errors.New("protocol: frame has no string command")
)

// Error codes Mesh puts on the wire. ENOTFOUND, ESERVER and EUNKNOWN are the
// server's; ETIMEOUT and ECONNECTION are raised by clients locally and never
// sent. Any other code is the application's own, via CodeError.
const (
	CodeNotFound   = "ENOTFOUND"   // no handler for the command
	CodeServer     = "ESERVER"     // an error without a code of its own
	CodeUnknown    = "EUNKNOWN"    // something other than an error was thrown
	CodeTimeout    = "ETIMEOUT"    // client: no reply within the command timeout
	CodeConnection = "ECONNECTION" // client: the WebSocket could not connect
)

// Error codes meshfast's server adds where Mesh would send an internal
// message (a parser's or a database's) as the error text. They are stable:
// a client may branch on them. Mesh's own client sees them as it sees any
// application CodeError.
const (
	// CodeInvalid: the command's payload is malformed or names nothing
	// valid (an empty room name, a string where an object belongs). The
	// message names the field; resending the same payload fails again.
	CodeInvalid = "EINVALID"
	// CodeForbidden: the connection may not do this (a room it may not
	// join, metadata it may not read).
	CodeForbidden = "EFORBIDDEN"
	// CodeUnavailable: the server could not reach the shared state the
	// command needs (its Redis is down or out of reach). Nothing was done,
	// or it is unknown whether it was; the same command may succeed once
	// the server reconnects, which it does by itself.
	CodeUnavailable = "EUNAVAILABLE"
)

// Error names Mesh puts on the wire (the JS Error subclass name).
const (
	NameError           = "Error"           // a plain error
	NameCodeError       = "CodeError"       // a CodeError built without a name
	NameCommandError    = "CommandError"    // unknown command
	NameUnknownError    = "UnknownError"    // a thrown non-error
	NameTimeoutError    = "TimeoutError"    // client-side timeout
	NameConnectionError = "ConnectionError" // client-side connect failure
)

// CodeError is Mesh's machine-readable error (wire.md 1.2): a handler or
// middleware returns one to give the client a code. On the wire it becomes
// {"error": Message, "code": Code, "name": Name}; an empty Code is sent as
// "ESERVER" and an empty Name as "CodeError", as Mesh does for a CodeError
// built without them. The zero value is usable.
type CodeError struct {
	Message string
	Code    string
	Name    string
}

// Error returns Message alone, like a JS Error's message, so that text
// matching on it (e.g. /timed out/) behaves as in Mesh.
func (e *CodeError) Error() string { return e.Message }

// NewCodeError returns a CodeError; empty code and name take the wire
// defaults described on CodeError.
func NewCodeError(message, code, name string) *CodeError {
	return &CodeError{Message: message, Code: code, Name: name}
}

// CommandNotFound is the error of a frame naming no registered command:
// `Command "<name>" not found`, ENOTFOUND, CommandError.
func CommandNotFound(command string) *CodeError {
	// strconv.Quote would escape differently from JS template literals;
	// Mesh interpolates the name verbatim between double quotes.
	return &CodeError{
		Message: `Command "` + command + `" not found`,
		Code:    CodeNotFound,
		Name:    NameCommandError,
	}
}

// UnknownError is what Mesh sends when a handler throws something that is
// not an Error (the Go analogue: a recovered panic value that is not an
// error). message is String(value).
func UnknownError(message string) *CodeError {
	return &CodeError{Message: message, Code: CodeUnknown, Name: NameUnknownError}
}

// InvalidArgument is the error of a command whose payload is malformed:
// code EINVALID, name CodeError (a CodeError thrown without a name in Mesh).
// message is for the client: name the field, never quote a parser.
func InvalidArgument(message string) *CodeError {
	return &CodeError{Message: message, Code: CodeInvalid, Name: NameCodeError}
}

// Forbidden is the error of a command the connection may not run on what it
// names: code EFORBIDDEN, name CodeError.
func Forbidden(message string) *CodeError {
	return &CodeError{Message: message, Code: CodeForbidden, Name: NameCodeError}
}

// Unavailable is the error of a command that needed shared state the
// server could not reach: code EUNAVAILABLE, name CodeError.
func Unavailable(message string) *CodeError {
	return &CodeError{Message: message, Code: CodeUnavailable, Name: NameCodeError}
}

// TimeoutError is the client-side error of a command with no reply in time:
// `Command timed out after <ms>ms.`, ETIMEOUT, TimeoutError.
func TimeoutError(d time.Duration) *CodeError {
	return &CodeError{
		Message: "Command timed out after " + strconv.FormatInt(d.Milliseconds(), 10) + "ms.",
		Code:    CodeTimeout,
		Name:    NameTimeoutError,
	}
}

// RecordNotWritable is the error mesh/publish-record-update returns when the
// record is not writable by the caller. Mesh throws a plain Error here, so
// the wire carries ESERVER / Error, not a dedicated code.
func RecordNotWritable(recordID string) *CodeError {
	return &CodeError{
		Message: `Record "` + recordID + `" is not writable by this connection.`,
		Code:    CodeServer,
		Name:    NameError,
	}
}

// RecordPublishFailed is the error mesh/publish-record-update returns when
// storing or publishing the update failed (ESERVER / Error, as in Mesh).
func RecordPublishFailed(recordID string, cause error) *CodeError {
	msg := "<nil>"
	if cause != nil {
		msg = cause.Error()
	}
	return &CodeError{
		Message: `Failed to publish update for record "` + recordID + `": ` + msg,
		Code:    CodeServer,
		Name:    NameError,
	}
}

// AppendErrorPayload appends the payload of an error reply, exactly as Mesh
// builds it (wire.md 1.3):
//   - a *CodeError anywhere in err's chain: {"error": its Message, "code": its
//     Code or "ESERVER", "name": its Name or "CodeError"}; the wrapping text
//     is dropped, since only the CodeError was meant for the client;
//   - any other error: {"error": err.Error(), "code": "ESERVER", "name": "Error"};
//   - nil, the analogue of throwing a non-error: {"error": "null", "code":
//     "EUNKNOWN", "name": "UnknownError"} (String(null) in JS).
func AppendErrorPayload(dst []byte, err error) []byte {
	var msg, code, name string
	ce := findCodeError(err)
	switch {
	case err == nil:
		msg, code, name = "null", CodeUnknown, NameUnknownError
	case ce != nil:
		msg, code, name = ce.Message, ce.Code, ce.Name
		if code == "" {
			code = CodeServer
		}
		if name == "" {
			name = NameCodeError
		}
	default:
		msg, code, name = err.Error(), CodeServer, NameError
	}
	dst = append(dst, `{"error":`...)
	dst = AppendJSONString(dst, msg)
	dst = append(dst, `,"code":`...)
	dst = AppendJSONString(dst, code)
	dst = append(dst, `,"name":`...)
	dst = AppendJSONString(dst, name)
	return append(dst, '}')
}

// findCodeError is errors.As for *CodeError without its allocation (the
// target pointer escapes through errors.As's any parameter). Errors with an
// As method of their own still go through errors.As.
func findCodeError(err error) *CodeError {
	for err != nil {
		switch e := err.(type) {
		case *CodeError:
			return e
		case interface{ As(any) bool }:
			var ce *CodeError
			if errors.As(err, &ce) {
				return ce
			}
			return nil
		case interface{ Unwrap() error }:
			err = e.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				if ce := findCodeError(inner); ce != nil {
					return ce
				}
			}
			return nil
		default:
			return nil
		}
	}
	return nil
}

// AppendErrorReply appends a whole error reply frame: the request's id and
// command with the error payload of AppendErrorPayload.
func AppendErrorReply(dst []byte, id int64, command string, err error) []byte {
	dst = appendHead(dst, id, true, command)
	dst = append(dst, `,"payload":`...)
	dst = AppendErrorPayload(dst, err)
	return append(dst, '}')
}

// ParseErrorPayload reports whether a reply payload is an error, and if so
// returns it. Following wire.md 1.3's guidance for Go clients, a payload is
// an error when it is a JSON object with a string "error" member; "code"
// and "name" are taken when they are strings and left empty otherwise. As
// the spec notes, a handler that returns such an object on success cannot
// be told apart. Duplicate keys resolve to the last one, as in JSON.parse.
func ParseErrorPayload(payload []byte) (*CodeError, bool) {
	var it jsonx.ObjectIter
	if !it.Start(payload) {
		return nil, false
	}
	var msg, code, name []byte
	for it.Next() {
		key, esc := it.Key()
		val, _ := it.Value()
		var dst *[]byte
		switch {
		case keyIs(key, esc, "error"):
			dst = &msg
		case keyIs(key, esc, "code"):
			dst = &code
		case keyIs(key, esc, "name"):
			dst = &name
		default:
			continue
		}
		if val[0] == '"' {
			*dst = val
		} else {
			*dst = nil
		}
	}
	if !it.End() || msg == nil {
		return nil, false
	}
	return &CodeError{
		Message: unquote(msg),
		Code:    unquote(code),
		Name:    unquote(name),
	}, true
}

// unquote decodes a validated JSON string literal into a fresh string ("" for
// nil).
func unquote(lit []byte) string {
	if len(lit) < 2 {
		return ""
	}
	return string(jsonx.AppendUnescaped(make([]byte, 0, len(lit)-2), lit[1:len(lit)-1]))
}
