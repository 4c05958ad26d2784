package protocol

import (
	"encoding/json"
	"testing"
)

func TestPushFrames(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		// wire.md 3 and 4 examples.
		{"ping", AppendPing(nil), `{"command":"ping","payload":{}}`},
		{"latency:request", AppendLatencyRequest(nil), `{"command":"latency:request","payload":{}}`},
		{"latency", AppendLatency(nil, 12), `{"command":"latency","payload":12}`},
		{"latency zero", AppendLatency(nil, 0), `{"command":"latency","payload":0}`},
		{"pong", AppendPong(nil, 4), `{"id":4,"command":"pong","payload":{}}`},
		{"latency:response", AppendLatencyResponse(nil, 5, []byte(`{}`)), `{"id":5,"command":"latency:response","payload":{}}`},
		{"latency:response nil", AppendLatencyResponse(nil, 5, nil), `{"id":5,"command":"latency:response","payload":{}}`},
		{"subscription-message", AppendSubscriptionMessage(nil, "chat:lobby", "hello"),
			`{"command":"mesh/subscription-message","payload":{"channel":"chat:lobby","message":"hello"}}`},
		{"subscription-message JSON text stays a string", AppendSubscriptionMessage(nil, "c", `{"a":"<b>"}`),
			`{"command":"mesh/subscription-message","payload":{"channel":"c","message":"{\"a\":\"<b>\"}"}}`},
		{"subscription-message sequenced", AppendSequencedSubscriptionMessage(nil, "chat:1", "hi \"you\"", 42),
			`{"command":"mesh/subscription-message","payload":{"channel":"chat:1","message":"hi \"you\"","sequence":42}}`},
		{"record-update full", AppendRecordUpdateFull(nil, "user:1", []byte(`{"name":"a"}`), 4),
			`{"command":"mesh/record-update","payload":{"recordId":"user:1","full":{"name":"a"},"version":4}}`},
		{"record-update full null", AppendRecordUpdateFull(nil, "r", nil, 0),
			`{"command":"mesh/record-update","payload":{"recordId":"r","full":null,"version":0}}`},
		{"record-update patch", AppendRecordUpdatePatch(nil, "user:1", []byte(`[{"op":"replace","path":"/name","value":"b"}]`), 5),
			`{"command":"mesh/record-update","payload":{"recordId":"user:1","patch":[{"op":"replace","path":"/name","value":"b"}],"version":5}}`},
		{"record-update patch empty", AppendRecordUpdatePatch(nil, "r", nil, 2),
			`{"command":"mesh/record-update","payload":{"recordId":"r","patch":[],"version":2}}`},
		{"presence join", AppendPresenceUpdate(nil, PresenceJoin, "conn-1", "lobby", 1732538400000, nil),
			`{"command":"mesh/presence-update","payload":{"type":"join","connectionId":"conn-1","roomName":"lobby","timestamp":1732538400000}}`},
		{"presence leave", AppendPresenceUpdate(nil, PresenceLeave, "conn-1", "lobby", 1, nil),
			`{"command":"mesh/presence-update","payload":{"type":"leave","connectionId":"conn-1","roomName":"lobby","timestamp":1}}`},
		{"presence state", AppendPresenceUpdate(nil, PresenceState, "conn-1", "lobby", 2, []byte(`{"status":"typing"}`)),
			`{"command":"mesh/presence-update","payload":{"type":"state","connectionId":"conn-1","roomName":"lobby","state":{"status":"typing"},"timestamp":2}}`},
		{"presence state cleared", AppendPresenceUpdate(nil, PresenceState, "conn-1", "lobby", 3, nil),
			`{"command":"mesh/presence-update","payload":{"type":"state","connectionId":"conn-1","roomName":"lobby","state":null,"timestamp":3}}`},
		{"assign-id", AppendAssignID(nil, "conn-m3x0mp6o00000000a3f10"),
			`{"command":"mesh/assign-id","payload":"conn-m3x0mp6o00000000a3f10"}`},
		{"broadcast", AppendPush(nil, "hello", []byte(`"world"`)), `{"command":"hello","payload":"world"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkJSON(t, tt.got, tt.want)
			// Every push decodes as a frame Mesh's client would route.
			m := mustDecode(t, tt.want)
			if m.Payload == nil {
				t.Fatal("push without payload")
			}
		})
	}
}

func TestPushPayloadTypes(t *testing.T) {
	tests := []struct {
		name string
		v    jsonAppender
		want string
	}{
		{"subscription-message", SubscriptionMessage{Channel: "chat:lobby", Message: "hello"},
			`{"channel":"chat:lobby","message":"hello"}`},
		{"subscription-message sequenced", SubscriptionMessage{Channel: "chat:1", Message: "hello", Sequence: 7},
			`{"channel":"chat:1","message":"hello","sequence":7}`},
		{"record-update full", RecordUpdate{RecordID: "user:1", Full: json.RawMessage(`{"name":"a"}`), Version: 4},
			`{"recordId":"user:1","full":{"name":"a"},"version":4}`},
		{"record-update full null", RecordUpdate{RecordID: "guarded:record", Full: json.RawMessage(`null`)},
			`{"recordId":"guarded:record","full":null,"version":0}`},
		{"record-update patch", RecordUpdate{RecordID: "test:record:patch", Patch: json.RawMessage(`[{"op":"remove","path":"/count"}]`), Version: 3},
			`{"recordId":"test:record:patch","patch":[{"op":"remove","path":"/count"}],"version":3}`},
		{"presence join", PresenceUpdate{Type: PresenceJoin, ConnectionID: "c", RoomName: "r", Timestamp: 10},
			`{"type":"join","connectionId":"c","roomName":"r","timestamp":10}`},
		{"presence state", PresenceUpdate{Type: PresenceState, ConnectionID: "c", RoomName: "r", State: json.RawMessage(`{"s":1}`), Timestamp: 10},
			`{"type":"state","connectionId":"c","roomName":"r","state":{"s":1},"timestamp":10}`},
		{"presence state null", PresenceUpdate{Type: PresenceState, ConnectionID: "c", RoomName: "r", State: json.RawMessage(`null`), Timestamp: 10},
			`{"type":"state","connectionId":"c","roomName":"r","state":null,"timestamp":10}`},
		{"presence with metadata", PresenceUpdate{Type: PresenceJoin, ConnectionID: "c", RoomName: "r", Timestamp: 10, Metadata: json.RawMessage(`{"u":1}`)},
			`{"type":"join","connectionId":"c","roomName":"r","timestamp":10,"metadata":{"u":1}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkPayloadType(t, tt.v, tt.want) })
	}
}

// The push structs and the frame encoders write the same payload bytes.
func TestPushStructsMatchEncoders(t *testing.T) {
	full := json.RawMessage(`{"x":[1,2]}`)
	frame := AppendRecordUpdateFull(nil, "r", full, 7)
	if want := AppendPush(nil, CmdRecordUpdate, RecordUpdate{RecordID: "r", Full: full, Version: 7}.AppendJSON(nil)); string(frame) != string(want) {
		t.Fatalf("%s != %s", frame, want)
	}
	frame = AppendSubscriptionMessage(nil, "c\n", "m\"")
	if want := AppendPush(nil, CmdSubscriptionMessage, SubscriptionMessage{Channel: "c\n", Message: "m\""}.AppendJSON(nil)); string(frame) != string(want) {
		t.Fatalf("%s != %s", frame, want)
	}
	frame = AppendSequencedSubscriptionMessage(nil, "c:1", "m\u2028", 1<<63)
	if want := AppendPush(nil, CmdSubscriptionMessage, SubscriptionMessage{Channel: "c:1", Message: "m\u2028", Sequence: 1 << 63}.AppendJSON(nil)); string(frame) != string(want) {
		t.Fatalf("%s != %s", frame, want)
	}
	frame = AppendPresenceUpdate(nil, PresenceState, "c", "r", 5, nil)
	if want := AppendPush(nil, CmdPresenceUpdate, PresenceUpdate{Type: PresenceState, ConnectionID: "c", RoomName: "r", Timestamp: 5}.AppendJSON(nil)); string(frame) != string(want) {
		t.Fatalf("%s != %s", frame, want)
	}
}

func TestPushScalarPayloads(t *testing.T) {
	checkJSON(t, mustMarshal(t, Empty{}), `{}`)
	checkJSON(t, mustMarshal(t, LatencyPayload(12)), `12`)
	checkJSON(t, mustMarshal(t, AssignIDPayload("conn-1")), `"conn-1"`)
	checkJSON(t, mustMarshal(t, PatchOp{Op: "add", Path: "/count", Value: json.RawMessage(`1`)}), `{"op":"add","path":"/count","value":1}`)
	checkJSON(t, mustMarshal(t, PatchOp{Op: "remove", Path: "/count"}), `{"op":"remove","path":"/count"}`)
	checkJSON(t, mustMarshal(t, PatchOp{Op: "add", Path: "/a~1b", Value: json.RawMessage(`null`)}), `{"op":"add","path":"/a~1b","value":null}`)
	var ms LatencyPayload
	if err := Unmarshal(mustDecode(t, `{"command":"latency","payload":12}`).Payload, &ms); err != nil || ms != 12 {
		t.Fatalf("latency %d, %v", ms, err)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
