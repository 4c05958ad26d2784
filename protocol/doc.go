// Package protocol is Mesh's wire format: the frame envelope, error
// payloads, and the payloads of every built-in command and server push, as
// spoken by Mesh (@prsm/mesh, nvms/prsm 48b41c9) so that its JavaScript
// client works against meshfast unchanged. It does no I/O and starts no
// goroutines; it turns bytes into values and values into bytes.
//
// Every WebSocket text frame, both ways, is one JSON object
//
//	{"id"?: int, "command": string, "payload"?: any}
//
// A request carries an id; its reply carries the same id and command with
// the result, or an error object {"error","code","name"}, as payload. Pushes
// carry no id.
//
// # Decoding
//
// Decode validates a frame exactly as JSON.parse would and returns the id,
// the command and the payload as raw JSON, pointing into the frame rather
// than copying it. Typed payloads are then decoded with Unmarshal (sonic):
//
//	var m protocol.Message
//	if err := protocol.Decode(frame, &m); err != nil {
//		return // Mesh ignores frames it cannot read; so do we
//	}
//	if !m.Dispatchable() {
//		return // a push, or pong / latency:response
//	}
//	switch string(m.Command) {
//	case protocol.CmdJoinRoom:
//		var req protocol.JoinRoomRequest
//		if err := protocol.Unmarshal(m.Payload, &req); err != nil {
//			out = protocol.AppendErrorReply(out, m.ID, protocol.CmdJoinRoom, err)
//			return
//		}
//		reply := protocol.JoinRoomReply{Success: true, Present: ids}
//		out = protocol.AppendReply(out, m.ID, protocol.CmdJoinRoom, reply.AppendJSON(scratch[:0]))
//	}
//
// # Encoding
//
// Encoders follow the strconv.Append convention: they append to a buffer
// the caller owns and reuses, and allocate only to grow it. The hot pushes
// have dedicated encoders (AppendSubscriptionMessage, AppendRecordUpdateFull,
// AppendRecordUpdatePatch, AppendPresenceUpdate, AppendLatency, AppendPing)
// so a broadcast is encoded once and the same bytes go to every recipient.
// Reply structs have AppendJSON for the same reason; application payloads
// go through Marshal or AppendJSON, which use sonic with settings chosen to
// match JSON.stringify (see AppendJSON). Strings are escaped as
// JSON.stringify escapes them, so frames are byte-for-byte what Mesh sends.
//
// Arguments documented as raw JSON are copied verbatim and not validated:
// they must come from an encoder or from a decoded, validated frame.
//
// # Durable channels
//
// meshfast extends mesh/subscribe-channel for channels it keeps in a
// durable stream (every message with a sequence 1, 2, 3… per channel),
// without changing a byte of what Mesh's client sees. Mesh's client hands
// the whole payload of a mesh/subscription-message push to its listeners
// and the reply of a command to whoever sent it, so a member Mesh does not
// send would reach the application; the extension is therefore opt-in, by
// members of the request that Mesh ignores:
//
//	-> {"id":3,"command":"mesh/subscribe-channel","payload":{"channel":"chat:1","sequenced":true}}
//	<- {"id":3,"command":"mesh/subscribe-channel","payload":{"success":true,"history":[],"sequence":41}}
//	<- {"command":"mesh/subscription-message","payload":{"channel":"chat:1","message":"hi","sequence":42}}
//
// A subscription that asked gets Sequence in the reply and "sequence" in
// every push; one that did not (every Mesh client) gets Mesh's frames. To
// resume after a lost connection, the client subscribes again with
// "after": the last sequence it saw; the server pushes the messages after
// it, in order, before the reply, then the live ones, with no gap and no
// duplicate. On a channel that is not durable both members are ignored and
// the reply is Mesh's.
//
// # Concurrency
//
// Everything here is safe to call from any goroutine: the package has no
// mutable state (sonic's internal caches are its own and concurrent-safe).
// Values are plain data with no internal locking: a Message, a request or
// reply struct, or a buffer being appended to belongs to one goroutine at a
// time. An encoded frame that no one appends to any more is immutable and
// may be shared freely, which is how broadcasts are meant to work. A decoded
// Message borrows its frame: it is valid only while the frame's bytes are
// not reused (an engine's read buffer typically is, once the handler
// returns); Message.Clone makes an independent copy.
package protocol
