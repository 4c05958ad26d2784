//go:build !race

package protocol

import (
	"encoding/json"
	"fmt"
	"testing"
)

// The hot paths must not allocate once the caller's buffer is big enough;
// a benchmark column nobody reads would let that regress silently.
func TestZeroAllocs(t *testing.T) {
	buf := make([]byte, 0, 4096)
	raw := []byte(`{"name":"a"}`)
	patch := []byte(`[{"op":"replace","path":"/name","value":"b"}]`)
	var m Message
	tests := []struct {
		name string
		f    func()
	}{
		{"Decode", func() { _ = Decode(benchJoin, &m) }},
		{"Decode large", func() { _ = Decode(benchLarge, &m) }},
		{"Decode escaped key", func() { _ = Decode(escapedKey, &m) }},
		{"Decode invalid", func() { _ = Decode(invalid, &m) }},
		{"Decode not object", func() { _ = Decode(notObject, &m) }},
		{"Valid", func() { _ = Valid(benchLarge) }},
		{"AppendMessage", func() { buf = AppendMessage(buf[:0], 12, true, CmdJoinRoom, raw) }},
		{"Message.AppendTo", func() { buf = m.AppendTo(buf[:0]) }},
		{"AppendErrorPayload", func() { buf = AppendErrorPayload(buf[:0], errNotAllowed) }},
		{"AppendSubscriptionMessage", func() { buf = AppendSubscriptionMessage(buf[:0], "chat:lobby", "hello \"world\"\n") }},
		{"AppendSequencedSubscriptionMessage", func() {
			buf = AppendSequencedSubscriptionMessage(buf[:0], "chat:lobby", "hello \"world\"\n", 1234567)
		}},
		{"AppendRecordUpdateFull", func() { buf = AppendRecordUpdateFull(buf[:0], "user:1", raw, 4) }},
		{"AppendRecordUpdatePatch", func() { buf = AppendRecordUpdatePatch(buf[:0], "user:1", patch, 5) }},
		{"AppendPresenceUpdate", func() { buf = AppendPresenceUpdate(buf[:0], PresenceState, "conn-1", "lobby", 1, raw) }},
		{"AppendLatency", func() { buf = AppendLatency(buf[:0], 12) }},
		{"AppendPing", func() { buf = AppendPing(buf[:0]) }},
		{"AppendPong", func() { buf = AppendPong(buf[:0], 3) }},
		{"AppendAssignID", func() { buf = AppendAssignID(buf[:0], "conn-1") }},
		{"JoinRoomReply.AppendJSON", func() {
			buf = JoinRoomReply{Success: true, Present: []string{"a", "b"}}.AppendJSON(buf[:0])
		}},
		{"SubscribeRecordReply.AppendJSON", func() {
			buf = SubscribeRecordReply{Success: true, Record: json.RawMessage(raw), Version: 3}.AppendJSON(buf[:0])
		}},
		{"ParseErrorPayload not error", func() { _, _ = ParseErrorPayload(raw) }},
	}
	if err := Decode(benchJoin, &m); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.f); n != 0 {
			t.Errorf("%s: %v allocs, want 0", tt.name, n)
		}
	}
}

// Inputs live outside the closures: converting a literal there would count
// the conversion's own allocation.
var (
	errNotAllowed error = fmt.Errorf("wrapped: %w", NewCodeError("Not allowed", "EFORBIDDEN", "AuthError"))
	escapedKey          = []byte(`{"\u0069d":1,"command":"x"}`)
	invalid             = []byte(`{"command":"x",}`)
	notObject           = []byte(`[1,2,3]`)
)
