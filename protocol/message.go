package protocol

import (
	"strconv"

	"github.com/meshfast/meshfast/protocol/jsonx"
)

// Message is one Mesh frame, {"id"?: int, "command": string, "payload": any},
// as Decode leaves it. Command and Payload normally point into the decoded
// frame (see Decode for their lifetime); Clone detaches them.
type Message struct {
	// ID is the request id; meaningful only when HasID is set.
	ID int64
	// HasID is set when the frame carried an integer id. A server dispatches
	// only frames with an id (except pong and latency:response); a reply
	// echoes it.
	HasID bool
	// Command is the unescaped command name. It is empty but non-nil for
	// "command":"", which is a valid (unknown) command.
	Command []byte
	// Payload is the raw JSON of the payload member, without surrounding
	// whitespace, or nil when the frame had none. JSON null is "null", not
	// nil, so a handler can tell null from absent as Mesh's handlers can.
	Payload []byte
}

// Decode parses one frame into m, overwriting all of its fields.
//
// Validation is exactly JSON.parse's: any malformed input, trailing garbage
// included, gives ErrInvalidJSON. Well-formed JSON that is not an object
// gives ErrNotObject; an object whose "command" is missing or not a string
// gives ErrNoCommand. A server ignores all three (wire.md 1.0/1.1). On error
// m is left zeroed. Decode never panics and never reads past data.
//
// Lifetime: m.Payload, and m.Command unless the command contained escapes,
// are sub-slices of data, valid for as long as data is and changed by any
// change to it. Call m.Clone to keep them past that.
//
// Choices where Mesh (JS) and Go differ:
//   - id: JS echoes any id value back. Decode accepts only a JSON integer in
//     int64 range written without fraction or exponent; any other id (null,
//     1.5, 1e3, "7", 2^63) leaves HasID unset, so the frame is not
//     dispatched. No Mesh client sends such ids, and they could not be
//     echoed faithfully.
//   - duplicate keys: the last one wins, as in JSON.parse.
//   - escaped keys ("\u0069d") are recognised, as in JSON.parse.
//   - UTF-8 is not validated: the WebSocket layer must reject text frames
//     that are not valid UTF-8 (RFC 6455 8.1), so data is assumed valid. An
//     invalid byte sequence in the command is passed through as is.
//   - nesting deeper than 10000 levels is ErrInvalidJSON (encoding/json's
//     limit; JSON.parse has none).
func Decode(data []byte, m *Message) error {
	*m = Message{}
	var it jsonx.ObjectIter
	if !it.Start(data) {
		if Valid(data) {
			return ErrNotObject
		}
		return ErrInvalidJSON
	}
	var id, cmd, payload []byte
	cmdEsc := false
	for it.Next() {
		key, esc := it.Key()
		val, valEsc := it.Value()
		var name string
		if !esc {
			name = b2s(key)
		} else {
			name = unescapedKeyName(key)
		}
		switch name {
		case "id":
			id = val
		case "command":
			cmd, cmdEsc = val, valEsc
		case "payload":
			payload = val
		}
	}
	if !it.End() {
		return ErrInvalidJSON
	}
	if len(cmd) == 0 || cmd[0] != '"' {
		return ErrNoCommand
	}
	body := cmd[1 : len(cmd)-1]
	if cmdEsc {
		body = jsonx.AppendUnescaped(make([]byte, 0, len(body)), body)
	}
	m.Command = body
	m.Payload = payload
	if id != nil {
		m.ID, m.HasID = parseInt64(id)
	}
	return nil
}

// Dispatchable reports whether a server hands this frame to the command
// dispatcher (wire.md 1.0): it must carry an id, and pong and
// latency:response are liveness answers consumed by the connection itself
// even when they carry one, as Mesh's client always makes them do.
func (m *Message) Dispatchable() bool {
	return m.HasID && string(m.Command) != CmdPong && string(m.Command) != CmdLatencyResponse
}

// unescapedKeyName maps an escaped key to the member name it spells if that
// is one Decode cares about, and to "" otherwise.
func unescapedKeyName(key []byte) string {
	for _, name := range [...]string{"id", "command", "payload"} {
		if keyIs(key, true, name) {
			return name
		}
	}
	return ""
}

// Clone returns a copy of m that shares no memory with the frame it was
// decoded from.
func (m *Message) Clone() Message {
	c := *m
	if m.Command != nil {
		c.Command = append(make([]byte, 0, len(m.Command)), m.Command...)
	}
	if m.Payload != nil {
		c.Payload = append(make([]byte, 0, len(m.Payload)), m.Payload...)
	}
	return c
}

// AppendTo appends m encoded as a frame, as AppendMessage does.
func (m *Message) AppendTo(dst []byte) []byte {
	return AppendMessage(dst, m.ID, m.HasID, b2s(m.Command), m.Payload)
}

// AppendMessage appends one frame, {"id":…,"command":…,"payload":…}, to dst
// and returns the extended slice. It allocates only if dst must grow.
//
// The id member is written only when hasID is set (replies and client
// requests; pushes have none). payload must be one already-encoded JSON
// value; it is copied verbatim and not validated. A nil or empty payload
// omits the member, as JSON.stringify omits an undefined value, which is
// what Mesh sends when a handler returns nothing. The command is escaped as
// JSON.stringify would (see AppendJSONString).
func AppendMessage(dst []byte, id int64, hasID bool, command string, payload []byte) []byte {
	dst = appendHead(dst, id, hasID, command)
	if len(payload) > 0 {
		dst = append(dst, `,"payload":`...)
		dst = append(dst, payload...)
	}
	return append(dst, '}')
}

// appendHead writes a frame up to and including the command value.
func appendHead(dst []byte, id int64, hasID bool, command string) []byte {
	if hasID {
		dst = append(dst, `{"id":`...)
		dst = strconv.AppendInt(dst, id, 10)
		dst = append(dst, `,"command":`...)
	} else {
		dst = append(dst, `{"command":`...)
	}
	return AppendJSONString(dst, command)
}

// AppendReply appends a success reply: the request's id and command, with
// payload as the result (nil payload: no payload member, as for a handler
// returning undefined).
func AppendReply(dst []byte, id int64, command string, payload []byte) []byte {
	return AppendMessage(dst, id, true, command, payload)
}

// AppendPush appends a frame without an id: a server push or a broadcast.
func AppendPush(dst []byte, command string, payload []byte) []byte {
	return AppendMessage(dst, 0, false, command, payload)
}
