package protocol

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestBuiltinCommands(t *testing.T) {
	want := []string{
		"mesh/subscribe-channel", "mesh/unsubscribe-channel", "mesh/join-room", "mesh/leave-room",
		"mesh/get-connection-metadata", "mesh/get-my-connection-metadata", "mesh/get-room-metadata",
		"mesh/subscribe-record", "mesh/unsubscribe-record", "mesh/publish-record-update",
		"mesh/subscribe-presence", "mesh/unsubscribe-presence", "mesh/publish-presence-state",
		"mesh/clear-presence-state",
	}
	got := BuiltinCommands()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q", got)
	}
	got[0] = "changed"
	if BuiltinCommands()[0] != CmdSubscribeChannel {
		t.Fatal("BuiltinCommands shares its slice")
	}
}

// jsonAppender is what every reply and push payload type implements.
type jsonAppender interface {
	AppendJSON([]byte) []byte
	MarshalJSON() ([]byte, error)
}

// checkPayloadType pins the exact bytes of v and checks that every encoding
// path agrees and that decoding gives back an equivalent value.
func checkPayloadType(t *testing.T, v jsonAppender, want string) {
	t.Helper()
	checkJSON(t, v.AppendJSON([]byte{}), want)
	if b, _ := v.MarshalJSON(); string(b) != want {
		t.Fatalf("MarshalJSON = %s", b)
	}
	if b, err := Marshal(v); err != nil || string(b) != want {
		t.Fatalf("sonic Marshal = %s, %v", b, err)
	}
	if b, err := json.Marshal(v); err != nil || string(b) != want {
		t.Fatalf("encoding/json Marshal = %s, %v", b, err)
	}
	// Decode into a fresh value of the same type and re-encode.
	p := reflect.New(reflect.TypeOf(v))
	if err := Unmarshal([]byte(want), p.Interface()); err != nil {
		t.Fatalf("Unmarshal(%s): %v", want, err)
	}
	back := p.Elem().Interface().(jsonAppender)
	if got := back.AppendJSON(nil); string(got) != want {
		t.Fatalf("decode/encode changed %s into %s", want, got)
	}
}

func TestReplyPayloads(t *testing.T) {
	tests := []struct {
		name string
		v    jsonAppender
		want string
	}{
		// wire.md 2 examples and shapes.
		{"subscribe-channel", SubscribeChannelReply{Success: true, History: []string{"hello"}},
			`{"success":true,"history":["hello"]}`},
		{"subscribe-channel newest first", SubscribeChannelReply{Success: true, History: []string{"History message 5", "History message 4", "History message 3"}},
			`{"success":true,"history":["History message 5","History message 4","History message 3"]}`},
		{"subscribe-channel refused", SubscribeChannelReply{},
			`{"success":false,"history":[]}`},
		{"subscribe-channel sequenced", SubscribeChannelReply{Success: true, History: []string{"b", "a"}, Sequence: ptr[uint64](9), HistorySequences: []uint64{9, 8}},
			`{"success":true,"history":["b","a"],"sequence":9,"historySequences":[9,8]}`},
		{"subscribe-channel sequenced empty", SubscribeChannelReply{Success: true, Sequence: ptr[uint64](0)},
			`{"success":true,"history":[],"sequence":0}`},
		{"join-room", JoinRoomReply{Success: true, Present: []string{"conn-a", "conn-b"}},
			`{"success":true,"present":["conn-a","conn-b"]}`},
		{"join-room untracked", JoinRoomReply{Success: true},
			`{"success":true,"present":[]}`},
		{"leave-room", SuccessReply{Success: true}, `{"success":true}`},
		{"success false", SuccessReply{}, `{"success":false}`},
		{"metadata missing", MetadataReply{}, `{"metadata":null}`},
		{"metadata", MetadataReply{Metadata: json.RawMessage(`{"user":"test-user","permissions":["read","write"]}`)},
			`{"metadata":{"user":"test-user","permissions":["read","write"]}}`},
		{"subscribe-record", SubscribeRecordReply{Success: true, Record: json.RawMessage(`{"n":1}`), Version: 3},
			`{"success":true,"record":{"n":1},"version":3}`},
		{"subscribe-record never written", SubscribeRecordReply{Success: true},
			`{"success":true,"record":null,"version":0}`},
		{"subscribe-record refused", SubscribeRecordReply{}, `{"success":false}`},
		{"subscribe-presence", SubscribePresenceReply{
			Success: true,
			Present: []string{"def456", "abc123"},
			States: map[string]json.RawMessage{
				"def456": json.RawMessage(`{"status":"away"}`),
				"abc123": json.RawMessage(`{"status":"typing","field":"title"}`),
			},
		}, `{"success":true,"present":["def456","abc123"],"states":{"abc123":{"status":"typing","field":"title"},"def456":{"status":"away"}}}`},
		{"subscribe-presence no states", SubscribePresenceReply{Success: true, Present: []string{"a"}},
			`{"success":true,"present":["a"],"states":{}}`},
		{"subscribe-presence refused", SubscribePresenceReply{},
			`{"success":false,"present":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkPayloadType(t, tt.v, tt.want) })
	}
}

func TestReplyFrames(t *testing.T) {
	var scratch []byte
	frame := AppendReply(nil, 3, CmdSubscribeChannel,
		SubscribeChannelReply{Success: true, History: []string{"hello"}}.AppendJSON(scratch[:0]))
	checkJSON(t, frame, `{"id":3,"command":"mesh/subscribe-channel","payload":{"success":true,"history":["hello"]}}`)
	frame = AppendReply(nil, 5, CmdSubscribeRecord,
		SubscribeRecordReply{Success: true, Record: json.RawMessage(`{"n":1}`), Version: 3}.AppendJSON(nil))
	checkJSON(t, frame, `{"id":5,"command":"mesh/subscribe-record","payload":{"success":true,"record":{"n":1},"version":3}}`)
	frame = AppendReply(nil, 6, CmdUnsubscribeChannel, AppendBool(nil, true))
	checkJSON(t, frame, `{"id":6,"command":"mesh/unsubscribe-channel","payload":true}`)
	frame = AppendReply(nil, 7, CmdClearPresenceState, AppendBool(nil, false))
	checkJSON(t, frame, `{"id":7,"command":"mesh/clear-presence-state","payload":false}`)
}

// Requests as Mesh's JS client sends them (wire.md 2 and 5.8): decode, then
// encode back to the same bytes.
func TestRequestPayloads(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		v       any
		want    any
	}{
		{"subscribe-channel", `{"channel":"chat:lobby","historyLimit":10}`, &SubscribeChannelRequest{},
			&SubscribeChannelRequest{Channel: "chat:lobby", HistoryLimit: 10}},
		{"subscribe-channel no history", `{"channel":"test:channel"}`, &SubscribeChannelRequest{},
			&SubscribeChannelRequest{Channel: "test:channel"}},
		{"subscribe-channel sequenced", `{"channel":"chat:1","sequenced":true}`, &SubscribeChannelRequest{},
			&SubscribeChannelRequest{Channel: "chat:1", Sequenced: true}},
		{"subscribe-channel resume from 0", `{"channel":"chat:1","sequenced":true,"after":0}`, &SubscribeChannelRequest{},
			&SubscribeChannelRequest{Channel: "chat:1", Sequenced: true, After: ptr[uint64](0)}},
		{"unsubscribe-channel", `{"channel":"c"}`, &UnsubscribeChannelRequest{}, &UnsubscribeChannelRequest{Channel: "c"}},
		{"join-room", `{"roomName":"admin:1"}`, &JoinRoomRequest{}, &JoinRoomRequest{RoomName: "admin:1"}},
		{"leave-room", `{"roomName":"r"}`, &LeaveRoomRequest{}, &LeaveRoomRequest{RoomName: "r"}},
		{"get-connection-metadata", `{"connectionId":"conn-1"}`, &GetConnectionMetadataRequest{},
			&GetConnectionMetadataRequest{ConnectionID: "conn-1"}},
		{"get-my-connection-metadata", `{}`, &GetMyConnectionMetadataRequest{}, &GetMyConnectionMetadataRequest{}},
		{"get-room-metadata", `{"roomName":"test-room"}`, &GetRoomMetadataRequest{}, &GetRoomMetadataRequest{RoomName: "test-room"}},
		{"subscribe-record", `{"recordId":"test:record:1","mode":"patch"}`, &SubscribeRecordRequest{},
			&SubscribeRecordRequest{RecordID: "test:record:1", Mode: RecordModePatch}},
		{"subscribe-record default mode", `{"recordId":"r"}`, &SubscribeRecordRequest{}, &SubscribeRecordRequest{RecordID: "r"}},
		{"unsubscribe-record", `{"recordId":"r"}`, &UnsubscribeRecordRequest{}, &UnsubscribeRecordRequest{RecordID: "r"}},
		{"publish-record-update", `{"recordId":"writable:record:1","newValue":{"count":1,"name":null}}`, &PublishRecordUpdateRequest{},
			&PublishRecordUpdateRequest{RecordID: "writable:record:1", NewValue: json.RawMessage(`{"count":1,"name":null}`)}},
		{"subscribe-presence", `{"roomName":"lobby"}`, &SubscribePresenceRequest{}, &SubscribePresenceRequest{RoomName: "lobby"}},
		{"unsubscribe-presence", `{"roomName":"lobby"}`, &UnsubscribePresenceRequest{}, &UnsubscribePresenceRequest{RoomName: "lobby"}},
		{"publish-presence-state", `{"roomName":"lobby","state":{"status":"typing"},"expireAfter":5000}`, &PublishPresenceStateRequest{},
			&PublishPresenceStateRequest{RoomName: "lobby", State: json.RawMessage(`{"status":"typing"}`), ExpireAfter: 5000}},
		{"publish-presence-state no expiry", `{"roomName":"lobby","state":{"s":1}}`, &PublishPresenceStateRequest{},
			&PublishPresenceStateRequest{RoomName: "lobby", State: json.RawMessage(`{"s":1}`)}},
		{"clear-presence-state", `{"roomName":"lobby"}`, &ClearPresenceStateRequest{}, &ClearPresenceStateRequest{RoomName: "lobby"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Unmarshal([]byte(tt.payload), tt.v); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tt.v, tt.want) {
				t.Fatalf("decoded %+v, want %+v", tt.v, tt.want)
			}
			out, err := Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			checkJSON(t, out, tt.payload)
		})
	}
}

// Mesh's client fills in nothing but what the caller gave; a Go client
// leaving raw members nil sends null, never an invalid frame.
func TestRequestNilRaw(t *testing.T) {
	out, err := Marshal(PublishRecordUpdateRequest{RecordID: "r"})
	if err != nil {
		t.Fatal(err)
	}
	checkJSON(t, out, `{"recordId":"r","newValue":null}`)
	var req PublishRecordUpdateRequest
	if err := Unmarshal([]byte(`{"recordId":"r"}`), &req); err != nil || req.NewValue != nil {
		t.Fatalf("absent newValue: %q, %v", req.NewValue, err)
	}
}

// Requests with the wrong types fail to decode rather than half-decoding.
func TestRequestTypeErrors(t *testing.T) {
	for _, tt := range []struct {
		payload string
		v       any
	}{
		{`{"roomName":5}`, &JoinRoomRequest{}},
		{`{"channel":"c","historyLimit":"10"}`, &SubscribeChannelRequest{}},
		{`{"roomName":"r","state":{},"expireAfter":1.5}`, &PublishPresenceStateRequest{}},
		{`"lobby"`, &JoinRoomRequest{}},
		{`{"roomName":"r"`, &JoinRoomRequest{}},
	} {
		if err := Unmarshal([]byte(tt.payload), tt.v); err == nil {
			t.Errorf("Unmarshal(%s) succeeded: %+v", tt.payload, tt.v)
		}
	}
}
