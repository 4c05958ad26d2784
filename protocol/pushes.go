package protocol

import (
	"encoding/json"
	"strconv"
)

// Frames without a request behind them: server pushes and the client's
// liveness answers (wire.md 3 and 4).
const (
	CmdPing                = "ping"                      // server -> client, payload {}
	CmdPong                = "pong"                      // client -> server, payload {}
	CmdLatencyRequest      = "latency:request"           // server -> client, payload {}
	CmdLatencyResponse     = "latency:response"          // client -> server, echoes the request payload
	CmdLatency             = "latency"                   // server -> client, payload a bare integer (ms)
	CmdSubscriptionMessage = "mesh/subscription-message" // channel message
	CmdRecordUpdate        = "mesh/record-update"        // record changed
	CmdPresenceUpdate      = "mesh/presence-update"      // presence join/leave/state
	CmdAssignID            = "mesh/assign-id"            // the connection's own id (later Mesh rewrite)
)

// Presence update types (PresenceUpdate.Type).
const (
	PresenceJoin  = "join"
	PresenceLeave = "leave"
	PresenceState = "state"
)

// Empty is the {} payload of ping, pong and latency:request.
type Empty struct{}

// LatencyPayload is the payload of the latency push: the last measured
// round trip in whole milliseconds, sent as a bare number (not an object,
// whatever Mesh's client type declares).
type LatencyPayload int64

// AssignIDParam is the query parameter of the upgrade request with which
// a client asks for the mesh/assign-id push ("?mesh-assign-id=1", any
// value). meshfast's Go client asks; Mesh's never does, so it never sees a
// push it does not know.
const AssignIDParam = "mesh-assign-id"

// AssignIDPayload is the payload of mesh/assign-id: the connection id as a
// bare JSON string. This follows the later Mesh rewrite that introduced the
// push (wire.md V4/V5), whose client stores the payload itself as its id.
type AssignIDPayload string

// SubscriptionMessage is the payload of mesh/subscription-message. Message
// is a string: Mesh publishes channel messages as strings and forwards them
// untouched, so a JSON document published on a channel arrives as a JSON
// string containing it, never as a nested value.
type SubscriptionMessage struct {
	Channel string `json:"channel"`
	Message string `json:"message"`
	// Sequence is the message's position in a durable channel, sent only
	// to a subscription that asked for it (SubscribeChannelRequest.
	// Sequenced); zero, and absent from the wire, otherwise.
	Sequence uint64 `json:"sequence,omitempty"`
}

// AppendJSON appends the payload: Mesh's {"channel","message"}, with
// "sequence" after them when Sequence is not zero.
func (p SubscriptionMessage) AppendJSON(dst []byte) []byte {
	if p.Sequence != 0 {
		return appendSequencedPayload(dst, p.Channel, p.Message, p.Sequence)
	}
	return appendSubscriptionPayload(dst, p.Channel, p.Message)
}

// MarshalJSON implements json.Marshaler.
func (p SubscriptionMessage) MarshalJSON() ([]byte, error) { return p.AppendJSON(nil), nil }

// RecordUpdate is the payload of mesh/record-update: {"recordId","full",
// "version"} for full-mode subscribers or {"recordId","patch","version"}
// for patch-mode ones. Exactly one of Full and Patch is present on the wire;
// a decoded JSON null is "null", not nil, so absent and null stay distinct.
type RecordUpdate struct {
	RecordID string `json:"recordId"`
	// Full is the whole new value (raw JSON).
	Full json.RawMessage `json:"full,omitempty"`
	// Patch is a raw JSON array of RFC 6902 operations (see PatchOp).
	Patch   json.RawMessage `json:"patch,omitempty"`
	Version int64           `json:"version"`
}

// AppendJSON appends the payload: the patch form when Patch is non-nil,
// the full form otherwise (a nil Full is written as null).
func (p RecordUpdate) AppendJSON(dst []byte) []byte {
	if p.Patch != nil {
		return appendRecordPayload(dst, p.RecordID, `,"patch":`, p.Patch, "[]", p.Version)
	}
	return appendRecordPayload(dst, p.RecordID, `,"full":`, p.Full, "null", p.Version)
}

// MarshalJSON implements json.Marshaler.
func (p RecordUpdate) MarshalJSON() ([]byte, error) { return p.AppendJSON(nil), nil }

// PatchOp is one RFC 6902 operation as fast-json-patch's compare emits them
// (add, remove, replace; member order op, path, value). Value is omitted
// when nil, as for remove; a JSON null value is "null".
type PatchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value,omitempty"`
	// From is used only by move and copy, which Mesh never emits.
	From string `json:"from,omitempty"`
}

// PresenceUpdate is the payload of mesh/presence-update, the object Mesh
// publishes on mesh:presence:updates:<room> forwarded verbatim:
// {"type","connectionId","roomName","timestamp"} for join and leave, and
// {"type","connectionId","roomName","state","timestamp"} for state, where a
// cleared or expired state is null.
type PresenceUpdate struct {
	Type         string `json:"type"`
	ConnectionID string `json:"connectionId"`
	RoomName     string `json:"roomName"`
	// State is the raw state object; see AppendJSON for when it is written.
	State json.RawMessage `json:"state,omitempty"`
	// Timestamp is milliseconds since the Unix epoch (JS Date.now()).
	Timestamp int64 `json:"timestamp"`
	// Metadata is accepted from the later Mesh rewrite, whose client type
	// declares it; Mesh 48b41c9 never sends it. Written only when non-nil.
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// AppendJSON appends the payload. State is written when non-nil, and always
// for type "state" (nil as null); Metadata only when non-nil.
func (p PresenceUpdate) AppendJSON(dst []byte) []byte {
	dst = appendPresencePayload(dst, p.Type, p.ConnectionID, p.RoomName, p.Timestamp, p.State)
	if p.Metadata != nil {
		dst = dst[:len(dst)-1]
		dst = append(dst, `,"metadata":`...)
		dst = appendRaw(dst, p.Metadata)
		dst = append(dst, '}')
	}
	return dst
}

// MarshalJSON implements json.Marshaler.
func (p PresenceUpdate) MarshalJSON() ([]byte, error) { return p.AppendJSON(nil), nil }

// Frame encoders for the pushes. Each writes a complete frame (no id) into
// dst and allocates only if dst must grow, so a broadcast can be encoded
// once and the bytes shared by every recipient. Raw JSON arguments are
// copied verbatim and not validated.

// AppendPing appends {"command":"ping","payload":{}}.
func AppendPing(dst []byte) []byte {
	return append(dst, `{"command":"ping","payload":{}}`...)
}

// AppendLatencyRequest appends {"command":"latency:request","payload":{}}.
func AppendLatencyRequest(dst []byte) []byte {
	return append(dst, `{"command":"latency:request","payload":{}}`...)
}

// AppendLatency appends {"command":"latency","payload":<ms>}.
func AppendLatency(dst []byte, ms int64) []byte {
	dst = append(dst, `{"command":"latency","payload":`...)
	dst = strconv.AppendInt(dst, ms, 10)
	return append(dst, '}')
}

// AppendPong appends the client's answer to a ping,
// {"id":<id>,"command":"pong","payload":{}}. Mesh's client puts an id on it
// although no reply comes; the server ignores it.
func AppendPong(dst []byte, id int64) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	return append(dst, `,"command":"pong","payload":{}}`...)
}

// AppendLatencyResponse appends the client's answer to latency:request,
// echoing the request's payload (nil is sent as {}, which is what the
// server sends).
func AppendLatencyResponse(dst []byte, id int64, requestPayload []byte) []byte {
	if len(requestPayload) == 0 {
		requestPayload = emptyObject
	}
	return AppendMessage(dst, id, true, CmdLatencyResponse, requestPayload)
}

var emptyObject = []byte("{}")

// AppendSubscriptionMessage appends
// {"command":"mesh/subscription-message","payload":{"channel":…,"message":…}}.
// message is the published string; it is JSON-escaped, not embedded raw.
func AppendSubscriptionMessage(dst []byte, channel, message string) []byte {
	dst = append(dst, `{"command":"mesh/subscription-message","payload":`...)
	dst = appendSubscriptionPayload(dst, channel, message)
	return append(dst, '}')
}

func appendSubscriptionPayload(dst []byte, channel, message string) []byte {
	dst = append(dst, `{"channel":`...)
	dst = AppendJSONString(dst, channel)
	dst = append(dst, `,"message":`...)
	dst = AppendJSONString(dst, message)
	return append(dst, '}')
}

// AppendSequencedSubscriptionMessage appends the frame of a durable
// channel's message for a subscription that asked for sequences,
// {"command":"mesh/subscription-message","payload":{"channel":…,"message":…,"sequence":…}}.
// Mesh's client never asks, so it never gets this form.
func AppendSequencedSubscriptionMessage(dst []byte, channel, message string, sequence uint64) []byte {
	dst = append(dst, `{"command":"mesh/subscription-message","payload":`...)
	dst = appendSequencedPayload(dst, channel, message, sequence)
	return append(dst, '}')
}

func appendSequencedPayload(dst []byte, channel, message string, sequence uint64) []byte {
	dst = appendSubscriptionPayload(dst, channel, message)
	dst = append(dst[:len(dst)-1], `,"sequence":`...)
	dst = strconv.AppendUint(dst, sequence, 10)
	return append(dst, '}')
}

// AppendRecordUpdateFull appends the frame a full-mode subscriber gets,
// {"command":"mesh/record-update","payload":{"recordId":…,"full":…,"version":…}}.
// full is the raw new value; nil is written as null.
func AppendRecordUpdateFull(dst []byte, recordID string, full []byte, version int64) []byte {
	dst = append(dst, `{"command":"mesh/record-update","payload":`...)
	dst = appendRecordPayload(dst, recordID, `,"full":`, full, "null", version)
	return append(dst, '}')
}

// AppendRecordUpdatePatch appends the frame a patch-mode subscriber gets,
// {"command":"mesh/record-update","payload":{"recordId":…,"patch":[…],"version":…}}.
// patch is a raw JSON array of operations; nil is written as [].
func AppendRecordUpdatePatch(dst []byte, recordID string, patch []byte, version int64) []byte {
	dst = append(dst, `{"command":"mesh/record-update","payload":`...)
	dst = appendRecordPayload(dst, recordID, `,"patch":`, patch, "[]", version)
	return append(dst, '}')
}

func appendRecordPayload(dst []byte, recordID, key string, raw []byte, empty string, version int64) []byte {
	dst = append(dst, `{"recordId":`...)
	dst = AppendJSONString(dst, recordID)
	dst = append(dst, key...)
	if len(raw) == 0 {
		dst = append(dst, empty...)
	} else {
		dst = append(dst, raw...)
	}
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, version, 10)
	return append(dst, '}')
}

// AppendPresenceUpdate appends
// {"command":"mesh/presence-update","payload":{"type":…,"connectionId":…,
// "roomName":…[,"state":…],"timestamp":…}}. typ is PresenceJoin,
// PresenceLeave or PresenceState; timestamp is Unix milliseconds. state is
// raw JSON: for join and leave pass nil and the member is omitted; for
// PresenceState it is always written, nil as null (state cleared).
func AppendPresenceUpdate(dst []byte, typ, connectionID, roomName string, timestamp int64, state []byte) []byte {
	dst = append(dst, `{"command":"mesh/presence-update","payload":`...)
	dst = appendPresencePayload(dst, typ, connectionID, roomName, timestamp, state)
	return append(dst, '}')
}

func appendPresencePayload(dst []byte, typ, connectionID, roomName string, timestamp int64, state []byte) []byte {
	dst = append(dst, `{"type":`...)
	dst = AppendJSONString(dst, typ)
	dst = append(dst, `,"connectionId":`...)
	dst = AppendJSONString(dst, connectionID)
	dst = append(dst, `,"roomName":`...)
	dst = AppendJSONString(dst, roomName)
	if state != nil || typ == PresenceState {
		dst = append(dst, `,"state":`...)
		dst = appendRaw(dst, state)
	}
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, timestamp, 10)
	return append(dst, '}')
}

// AppendAssignID appends {"command":"mesh/assign-id","payload":"<id>"}, the
// push that tells a client its own connection id right after it is
// registered (the later Mesh rewrite's push). It is not Mesh 48b41c9's:
// that client hands every push to its "message" listeners, so a server
// sends it only to a client that asks (AssignIDParam).
func AppendAssignID(dst []byte, connectionID string) []byte {
	dst = append(dst, `{"command":"mesh/assign-id","payload":`...)
	dst = AppendJSONString(dst, connectionID)
	return append(dst, '}')
}
