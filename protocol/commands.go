package protocol

import (
	"encoding/json"
	"slices"
	"strconv"
)

// Built-in commands a client sends (wire.md 2). All 14 of Mesh 48b41c9.
const (
	CmdSubscribeChannel        = "mesh/subscribe-channel"
	CmdUnsubscribeChannel      = "mesh/unsubscribe-channel"
	CmdJoinRoom                = "mesh/join-room"
	CmdLeaveRoom               = "mesh/leave-room"
	CmdGetConnectionMetadata   = "mesh/get-connection-metadata"
	CmdGetMyConnectionMetadata = "mesh/get-my-connection-metadata"
	CmdGetRoomMetadata         = "mesh/get-room-metadata"
	CmdSubscribeRecord         = "mesh/subscribe-record"
	CmdUnsubscribeRecord       = "mesh/unsubscribe-record"
	CmdPublishRecordUpdate     = "mesh/publish-record-update"
	CmdSubscribePresence       = "mesh/subscribe-presence"
	CmdUnsubscribePresence     = "mesh/unsubscribe-presence"
	CmdPublishPresenceState    = "mesh/publish-presence-state"
	CmdClearPresenceState      = "mesh/clear-presence-state"
)

// BuiltinCommands returns the names of the 14 built-in commands, in the
// order of wire.md 2. The slice is fresh; the caller may keep or change it.
func BuiltinCommands() []string {
	return []string{
		CmdSubscribeChannel, CmdUnsubscribeChannel, CmdJoinRoom, CmdLeaveRoom,
		CmdGetConnectionMetadata, CmdGetMyConnectionMetadata, CmdGetRoomMetadata,
		CmdSubscribeRecord, CmdUnsubscribeRecord, CmdPublishRecordUpdate,
		CmdSubscribePresence, CmdUnsubscribePresence, CmdPublishPresenceState,
		CmdClearPresenceState,
	}
}

// Record subscription modes (mesh/subscribe-record "mode").
const (
	RecordModeFull  = "full"  // every update carries the whole value; the default
	RecordModePatch = "patch" // updates carry RFC 6902 operations
)

// Request payloads. Absent optional members decode to the zero value, which
// is also what Mesh assumes for them; fields that carry application JSON
// are raw bytes so that they pass through without a decode/encode cycle.

// SubscribeChannelRequest is the payload of mesh/subscribe-channel.
//
// Sequenced and After are meshfast's durable-channel extension (the
// package documentation, "Durable channels"); Mesh ignores members it does
// not know, and Mesh's client never sends them.
type SubscribeChannelRequest struct {
	Channel string `json:"channel"`
	// HistoryLimit asks for up to this many stored messages, newest first;
	// zero (or absent) asks for none.
	HistoryLimit int `json:"historyLimit,omitempty"`
	// Sequenced asks, on a durable channel, for the sequence of every
	// message: the reply carries Sequence and the pushes carry theirs.
	// Ignored on other channels.
	Sequenced bool `json:"sequenced,omitempty"`
	// After, with Sequenced, resumes a durable channel: the messages with
	// a sequence above it are pushed, in order, before the reply, and the
	// live ones follow without a gap or a duplicate. Nil: from now on.
	After *uint64 `json:"after,omitempty"`
}

// UnsubscribeChannelRequest is the payload of mesh/unsubscribe-channel; the
// reply is a bare boolean (AppendBool).
type UnsubscribeChannelRequest struct {
	Channel string `json:"channel"`
}

// JoinRoomRequest is the payload of mesh/join-room.
type JoinRoomRequest struct {
	RoomName string `json:"roomName"`
}

// LeaveRoomRequest is the payload of mesh/leave-room; the reply is a
// SuccessReply, always {"success":true} in Mesh.
type LeaveRoomRequest struct {
	RoomName string `json:"roomName"`
}

// GetConnectionMetadataRequest is the payload of mesh/get-connection-metadata.
type GetConnectionMetadataRequest struct {
	ConnectionID string `json:"connectionId"`
}

// GetMyConnectionMetadataRequest is the payload of
// mesh/get-my-connection-metadata. Mesh's client sends {} and the server
// ignores it.
type GetMyConnectionMetadataRequest struct{}

// GetRoomMetadataRequest is the payload of mesh/get-room-metadata.
type GetRoomMetadataRequest struct {
	RoomName string `json:"roomName"`
}

// SubscribeRecordRequest is the payload of mesh/subscribe-record.
type SubscribeRecordRequest struct {
	RecordID string `json:"recordId"`
	// Mode is RecordModeFull or RecordModePatch; empty means full.
	Mode string `json:"mode,omitempty"`
}

// UnsubscribeRecordRequest is the payload of mesh/unsubscribe-record; the
// reply is a bare boolean.
type UnsubscribeRecordRequest struct {
	RecordID string `json:"recordId"`
}

// PublishRecordUpdateRequest is the payload of mesh/publish-record-update:
// the whole new value, not a patch. The reply is a SuccessReply, or an
// error reply (RecordNotWritable, RecordPublishFailed).
type PublishRecordUpdateRequest struct {
	RecordID string `json:"recordId"`
	// NewValue is the raw JSON of the new value; nil encodes as null.
	NewValue json.RawMessage `json:"newValue"`
}

// SubscribePresenceRequest is the payload of mesh/subscribe-presence.
type SubscribePresenceRequest struct {
	RoomName string `json:"roomName"`
}

// UnsubscribePresenceRequest is the payload of mesh/unsubscribe-presence;
// the reply is a bare boolean.
type UnsubscribePresenceRequest struct {
	RoomName string `json:"roomName"`
}

// PublishPresenceStateRequest is the payload of mesh/publish-presence-state;
// the reply is a bare boolean.
type PublishPresenceStateRequest struct {
	RoomName string `json:"roomName"`
	// State is the raw JSON state object. Mesh refuses (replies false) when
	// it is falsy; nil encodes as null.
	State json.RawMessage `json:"state"`
	// ExpireAfter, in milliseconds, makes the state expire; zero keeps it
	// until cleared. A non-integer value fails to decode.
	ExpireAfter int64 `json:"expireAfter,omitempty"`
}

// ClearPresenceStateRequest is the payload of mesh/clear-presence-state; the
// reply is a bare boolean.
type ClearPresenceStateRequest struct {
	RoomName string `json:"roomName"`
}

// Reply payloads. Each has AppendJSON, which writes the exact bytes Mesh
// sends without allocating, and MarshalJSON built on it, so sonic and
// encoding/json give the same output. Decoding uses the struct tags.

// SubscribeChannelReply is the reply of mesh/subscribe-channel. A refusal
// is {"success":false,"history":[]}, never an error reply.
type SubscribeChannelReply struct {
	Success bool `json:"success"`
	// History holds raw published strings, newest first; nil is sent as [].
	History []string `json:"history"`
	// Sequence is set only in the reply to a Sequenced subscription of a
	// durable channel: the position the subscription attached at. Every
	// message up to it came in History or, resuming, before the reply;
	// every one after it comes as a push. Below the request's After, the
	// channel's stream started again (its store lost what it held), and
	// the pushes before the reply began at its start.
	Sequence *uint64 `json:"sequence,omitempty"`
	// HistorySequences, with Sequence, are the sequences of History's
	// entries, in the same order.
	HistorySequences []uint64 `json:"historySequences,omitempty"`
}

// AppendJSON appends the reply payload. Without Sequence it is exactly
// Mesh's {"success","history"}.
func (r SubscribeChannelReply) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"success":`...)
	dst = AppendBool(dst, r.Success)
	dst = append(dst, `,"history":`...)
	dst = appendStringArray(dst, r.History)
	if r.Sequence != nil {
		dst = append(dst, `,"sequence":`...)
		dst = strconv.AppendUint(dst, *r.Sequence, 10)
		if len(r.HistorySequences) > 0 {
			dst = append(dst, `,"historySequences":[`...)
			for i, q := range r.HistorySequences {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = strconv.AppendUint(dst, q, 10)
			}
			dst = append(dst, ']')
		}
	}
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler.
func (r SubscribeChannelReply) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// JoinRoomReply is the reply of mesh/join-room, {"success":true,"present":[…]}.
type JoinRoomReply struct {
	Success bool `json:"success"`
	// Present lists the connection ids present in the room by presence
	// tracking (empty for an untracked room); nil is sent as [].
	Present []string `json:"present"`
}

// AppendJSON appends the reply payload.
func (r JoinRoomReply) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"success":`...)
	dst = AppendBool(dst, r.Success)
	dst = append(dst, `,"present":`...)
	dst = appendStringArray(dst, r.Present)
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler.
func (r JoinRoomReply) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// SuccessReply is {"success":bool}: the reply of mesh/leave-room and of a
// successful mesh/publish-record-update.
type SuccessReply struct {
	Success bool `json:"success"`
}

// AppendJSON appends the reply payload.
func (r SuccessReply) AppendJSON(dst []byte) []byte {
	if r.Success {
		return append(dst, `{"success":true}`...)
	}
	return append(dst, `{"success":false}`...)
}

// MarshalJSON implements json.Marshaler.
func (r SuccessReply) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// MetadataReply is the reply of the three metadata commands,
// {"metadata": value | null}.
type MetadataReply struct {
	// Metadata is raw JSON; nil is sent as null ("no metadata").
	Metadata json.RawMessage `json:"metadata"`
}

// AppendJSON appends the reply payload.
func (r MetadataReply) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"metadata":`...)
	dst = appendRaw(dst, r.Metadata)
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler.
func (r MetadataReply) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// SubscribeRecordReply is the reply of mesh/subscribe-record. On success it
// is {"success":true,"record":value|null,"version":n}; a refusal or failure
// is {"success":false} with no other member.
type SubscribeRecordReply struct {
	Success bool `json:"success"`
	// Record is the raw current value; nil is sent as null (never written).
	Record json.RawMessage `json:"record,omitempty"`
	// Version is the record's version, 0 when it was never written.
	Version int64 `json:"version,omitempty"`
}

// AppendJSON appends the reply payload.
func (r SubscribeRecordReply) AppendJSON(dst []byte) []byte {
	if !r.Success {
		return append(dst, `{"success":false}`...)
	}
	dst = append(dst, `{"success":true,"record":`...)
	dst = appendRaw(dst, r.Record)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, r.Version, 10)
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler.
func (r SubscribeRecordReply) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// SubscribePresenceReply is the reply of mesh/subscribe-presence. On success
// it is {"success":true,"present":[…],"states":{connId: state}}; a refusal
// or failure is {"success":false,"present":[]} with no states member.
type SubscribePresenceReply struct {
	Success bool `json:"success"`
	// Present lists present connection ids; nil is sent as [].
	Present []string `json:"present"`
	// States maps connection id to raw state JSON for members that have one;
	// nil is sent as {} on success. Keys are written sorted.
	States map[string]json.RawMessage `json:"states,omitempty"`
}

// AppendJSON appends the reply payload. It allocates only to sort States.
func (r SubscribePresenceReply) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"success":`...)
	dst = AppendBool(dst, r.Success)
	dst = append(dst, `,"present":`...)
	dst = appendStringArray(dst, r.Present)
	if !r.Success {
		return append(dst, '}')
	}
	dst = append(dst, `,"states":{`...)
	keys := make([]string, 0, len(r.States))
	for k := range r.States {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, k)
		dst = append(dst, ':')
		dst = appendRaw(dst, r.States[k])
	}
	return append(dst, "}}"...)
}

// MarshalJSON implements json.Marshaler.
func (r SubscribePresenceReply) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// appendStringArray writes a JSON array of strings; nil gives [].
func appendStringArray(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, s)
	}
	return append(dst, ']')
}
