package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/meshfast/meshfast/protocol/jsonx"
)

func TestDecode(t *testing.T) {
	type want struct {
		id      int64
		hasID   bool
		command string
		payload string // "<nil>" for absent
		err     error
	}
	const absent = "<nil>"
	tests := []struct {
		name  string
		frame string
		want  want
	}{
		// Shapes from wire.md.
		{"request", `{"id":7,"command":"echo","payload":"hi"}`, want{7, true, "echo", `"hi"`, nil}},
		{"reply without payload", `{"id":7,"command":"echo"}`, want{7, true, "echo", absent, nil}},
		{"join-room", `{"id":9,"command":"mesh/join-room","payload":{"roomName":"admin:1"}}`,
			want{9, true, "mesh/join-room", `{"roomName":"admin:1"}`, nil}},
		{"push", `{"command":"ping","payload":{}}`, want{0, false, "ping", `{}`, nil}},
		{"latency push", `{"command":"latency","payload":12}`, want{0, false, "latency", `12`, nil}},
		{"client pong", `{"id":3,"command":"pong","payload":{}}`, want{3, true, "pong", `{}`, nil}},
		{"empty command", `{"id":1,"command":"","payload":{}}`, want{1, true, "", `{}`, nil}},
		{"other order", `{"payload":[1,2],"command":"x","id":2}`, want{2, true, "x", `[1,2]`, nil}},
		{"whitespace", " \t\r\n{ \"id\" : 1 , \"command\" : \"x\" , \"payload\" : { \"a\" : [ 1 , 2 ] } }\n ",
			want{1, true, "x", `{ "a" : [ 1 , 2 ] }`, nil}},
		{"null payload", `{"command":"x","payload":null}`, want{0, false, "x", `null`, nil}},
		{"unknown keys", `{"x":{"command":"no"},"command":"yes","y":[{"id":5}]}`, want{0, false, "yes", absent, nil}},

		// JSON.parse semantics.
		{"duplicate keys, last wins", `{"command":"a","id":1,"command":"b","id":2,"payload":1,"payload":2}`,
			want{2, true, "b", `2`, nil}},
		{"escaped key", `{"\u0069d":4,"comm\u0061nd":"x","p\u0061yload":true}`, want{4, true, "x", `true`, nil}},
		{"escaped command", `{"command":"mesh\/join-room"}`, want{0, false, "mesh/join-room", absent, nil}},
		{"unicode escapes", `{"command":"\u00e9\ud83d\ude00\n"}`, want{0, false, "é😀\n", absent, nil}},
		{"lone surrogate", `{"command":"a\ud800b"}`, want{0, false, "a\uFFFDb", absent, nil}},
		{"raw utf-8", `{"command":"café ☕"}`, want{0, false, "café ☕", absent, nil}},

		// ids.
		{"negative id", `{"id":-3,"command":"x"}`, want{-3, true, "x", absent, nil}},
		{"zero id", `{"id":0,"command":"x"}`, want{0, true, "x", absent, nil}},
		{"minus zero id", `{"id":-0,"command":"x"}`, want{0, true, "x", absent, nil}},
		{"max id", `{"id":9223372036854775807,"command":"x"}`, want{1<<63 - 1, true, "x", absent, nil}},
		{"min id", `{"id":-9223372036854775808,"command":"x"}`, want{-1 << 63, true, "x", absent, nil}},
		{"id overflow", `{"id":9223372036854775808,"command":"x"}`, want{0, false, "x", absent, nil}},
		{"huge id", `{"id":123456789012345678901234567890,"command":"x"}`, want{0, false, "x", absent, nil}},
		{"fraction id", `{"id":1.5,"command":"x"}`, want{0, false, "x", absent, nil}},
		{"integral fraction id", `{"id":1.0,"command":"x"}`, want{0, false, "x", absent, nil}},
		{"exponent id", `{"id":1e3,"command":"x"}`, want{0, false, "x", absent, nil}},
		{"string id", `{"id":"7","command":"x"}`, want{0, false, "x", absent, nil}},
		{"null id", `{"id":null,"command":"x"}`, want{0, false, "x", absent, nil}},
		{"huge payload number", `{"command":"x","payload":1e999999}`, want{0, false, "x", `1e999999`, nil}},

		// Ignored frames.
		{"not object number", `5`, want{err: ErrNotObject}},
		{"not object string", `"x"`, want{err: ErrNotObject}},
		{"not object array", `[{"command":"x"}]`, want{err: ErrNotObject}},
		{"not object null", ` null `, want{err: ErrNotObject}},
		{"no command", `{"id":1,"payload":{}}`, want{err: ErrNoCommand}},
		{"empty object", `{}`, want{err: ErrNoCommand}},
		{"numeric command", `{"id":1,"command":5}`, want{err: ErrNoCommand}},
		{"null command", `{"command":null}`, want{err: ErrNoCommand}},
		{"command overridden by non-string", `{"command":"x","command":{}}`, want{err: ErrNoCommand}},
		{"command key case", `{"Command":"x"}`, want{err: ErrNoCommand}},

		// Malformed.
		{"empty", ``, want{err: ErrInvalidJSON}},
		{"spaces", `   `, want{err: ErrInvalidJSON}},
		{"truncated", `{"command":"x"`, want{err: ErrInvalidJSON}},
		{"truncated string", `{"command":"x`, want{err: ErrInvalidJSON}},
		{"trailing data", `{"command":"x"} {}`, want{err: ErrInvalidJSON}},
		{"trailing comma", `{"command":"x",}`, want{err: ErrInvalidJSON}},
		{"trailing comma in payload", `{"command":"x","payload":[1,]}`, want{err: ErrInvalidJSON}},
		{"single quotes", `{'command':'x'}`, want{err: ErrInvalidJSON}},
		{"unquoted key", `{command:"x"}`, want{err: ErrInvalidJSON}},
		{"bad escape", `{"command":"\x"}`, want{err: ErrInvalidJSON}},
		{"short unicode escape", `{"command":"\u12"}`, want{err: ErrInvalidJSON}},
		{"control char", "{\"command\":\"a\x01b\"}", want{err: ErrInvalidJSON}},
		{"raw newline", "{\"command\":\"a\nb\"}", want{err: ErrInvalidJSON}},
		{"leading zero", `{"command":"x","payload":01}`, want{err: ErrInvalidJSON}},
		{"bare dot", `{"command":"x","payload":1.}`, want{err: ErrInvalidJSON}},
		{"empty exponent", `{"command":"x","payload":1e}`, want{err: ErrInvalidJSON}},
		{"plus sign", `{"command":"x","payload":+1}`, want{err: ErrInvalidJSON}},
		{"NaN", `{"command":"x","payload":NaN}`, want{err: ErrInvalidJSON}},
		{"bad literal", `{"command":"x","payload":nul}`, want{err: ErrInvalidJSON}},
		{"mismatched brackets", `{"command":"x","payload":[}`, want{err: ErrInvalidJSON}},
		{"BOM", "\xef\xbb\xbf{\"command\":\"x\"}", want{err: ErrInvalidJSON}},
		{"form feed is not space", "\f{\"command\":\"x\"}", want{err: ErrInvalidJSON}},
		{"missing colon", `{"command" "x"}`, want{err: ErrInvalidJSON}},
		{"missing value", `{"command":}`, want{err: ErrInvalidJSON}},
		{"bad payload after valid command", `{"command":"x","payload":{"a":1 "b":2}}`, want{err: ErrInvalidJSON}},
		{"invalid before not-object", `[1,2`, want{err: ErrInvalidJSON}},
		{"lone brace", `}`, want{err: ErrInvalidJSON}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := checkDecode(t, []byte(tt.frame))
			if !errors.Is(err, tt.want.err) {
				t.Fatalf("err = %v, want %v", err, tt.want.err)
			}
			if err != nil {
				return
			}
			if m.HasID != tt.want.hasID || m.ID != tt.want.id {
				t.Errorf("id = %d/%v, want %d/%v", m.ID, m.HasID, tt.want.id, tt.want.hasID)
			}
			if string(m.Command) != tt.want.command || m.Command == nil {
				t.Errorf("command = %q (nil %v), want %q", m.Command, m.Command == nil, tt.want.command)
			}
			got := absent
			if m.Payload != nil {
				got = string(m.Payload)
			}
			if got != tt.want.payload {
				t.Errorf("payload = %s, want %s", got, tt.want.payload)
			}
		})
	}
}

func TestDecodePayloadAliasesFrame(t *testing.T) {
	frame := []byte(`{"id":1,"command":"echo","payload":{"a":1}}`)
	var m Message
	if err := Decode(frame, &m); err != nil {
		t.Fatal(err)
	}
	c := m.Clone()
	copy(frame, bytes.Repeat([]byte{'#'}, len(frame)))
	if string(m.Payload) == `{"a":1}` || string(m.Command) == "echo" {
		t.Fatal("payload and command were expected to alias the frame")
	}
	if string(c.Payload) != `{"a":1}` || string(c.Command) != "echo" || c.ID != 1 || !c.HasID {
		t.Fatalf("clone changed with the frame: %+v", c)
	}
}

func TestDecodeResetsMessage(t *testing.T) {
	m := Message{ID: 5, HasID: true, Command: []byte("old"), Payload: []byte("1")}
	if err := Decode([]byte(`{"command":"new"}`), &m); err != nil {
		t.Fatal(err)
	}
	if m.HasID || m.ID != 0 || m.Payload != nil || string(m.Command) != "new" {
		t.Fatalf("stale fields: %+v", m)
	}
	m = Message{ID: 5, HasID: true, Command: []byte("old"), Payload: []byte("1")}
	if err := Decode([]byte(`nope`), &m); err == nil || m.HasID || m.Command != nil || m.Payload != nil {
		t.Fatalf("failed Decode left %+v (err %v)", m, err)
	}
}

func TestDecodeDeepNesting(t *testing.T) {
	for _, depth := range []int{63, 64, 65, 200, jsonx.MaxDepth - 1} {
		// The payload adds depth-1 levels inside the frame's own object.
		payload := strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1)
		frame := `{"command":"x","payload":` + payload + `}`
		if depth == 1 {
			continue
		}
		if m, err := checkDecode(t, []byte(frame)); err != nil || string(m.Payload) != payload {
			t.Fatalf("depth %d: err %v", depth, err)
		}
	}
	mixed := strings.Repeat(`{"a":[`, 3000) + strings.Repeat(`]}`, 3000)
	if _, err := checkDecode(t, []byte(`{"command":"x","payload":`+mixed+`}`)); err != nil {
		t.Fatalf("mixed nesting: %v", err)
	}
	// One level past encoding/json's limit, counting the frame itself.
	tooDeep := `{"command":"x","payload":` + strings.Repeat("[", jsonx.MaxDepth) + strings.Repeat("]", jsonx.MaxDepth) + `}`
	if _, err := checkDecode(t, []byte(tooDeep)); !errors.Is(err, ErrInvalidJSON) {
		t.Fatalf("too deep: err %v", err)
	}
	// A million unclosed brackets must fail fast and not blow the stack.
	if _, err := checkDecode(t, []byte(`{"command":"x","payload":`+strings.Repeat("[", 1<<20))); !errors.Is(err, ErrInvalidJSON) {
		t.Fatalf("unclosed: err %v", err)
	}
}

// Decode does not validate UTF-8 (the WebSocket layer does); invalid bytes
// pass through in the command and payload, and re-encoding repairs the
// command with U+FFFD.
func TestDecodeInvalidUTF8(t *testing.T) {
	frame := "{\"command\":\"a\xffb\",\"payload\":\"\xc3\x28\"}"
	m := mustDecode(t, frame)
	if string(m.Command) != "a\xffb" || string(m.Payload) != "\"\xc3\x28\"" {
		t.Fatalf("got %+v", m)
	}
	out := m.AppendTo(nil)
	if string(out) != "{\"command\":\"a\\ufffdb\",\"payload\":\"\xc3\x28\"}" {
		t.Fatalf("re-encoded %q", out)
	}
}

func TestAppendMessage(t *testing.T) {
	tests := []struct {
		name    string
		id      int64
		hasID   bool
		command string
		payload []byte
		want    string
	}{
		{"reply", 7, true, "echo", []byte(`"hi"`), `{"id":7,"command":"echo","payload":"hi"}`},
		{"undefined payload", 7, true, "echo", nil, `{"id":7,"command":"echo"}`},
		{"empty payload", 7, true, "echo", []byte{}, `{"id":7,"command":"echo"}`},
		{"null payload", 7, true, "echo", []byte("null"), `{"id":7,"command":"echo","payload":null}`},
		{"push", 0, false, "hello", []byte(`"world"`), `{"command":"hello","payload":"world"}`},
		{"push id ignored", 99, false, "ping", []byte(`{}`), `{"command":"ping","payload":{}}`},
		{"negative id", -1, true, "x", []byte(`1`), `{"id":-1,"command":"x","payload":1}`},
		{"escaped command", 1, true, "a\"b\\c\n\u0001/<>&\u2028", []byte(`0`),
			`{"id":1,"command":"a\"b\\c\n\u0001/<>&` + "\u2028" + `","payload":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("PFX")
			got := AppendMessage(prefix, tt.id, tt.hasID, tt.command, tt.payload)
			if string(got[:3]) != "PFX" {
				t.Fatalf("prefix clobbered: %q", got)
			}
			checkJSON(t, got[3:], tt.want)
		})
	}
	checkJSON(t, AppendReply(nil, 3, "x", []byte("true")), `{"id":3,"command":"x","payload":true}`)
	checkJSON(t, AppendPush(nil, "x", []byte("[]")), `{"command":"x","payload":[]}`)
}

func TestMessageRoundTrip(t *testing.T) {
	frames := []string{
		`{"id":7,"command":"echo","payload":"hi"}`,
		`{"id":7,"command":"echo"}`,
		`{"command":"mesh/record-update","payload":{"recordId":"user:1","full":{"name":"a"},"version":4}}`,
		`{"id":-9223372036854775808,"command":"","payload":null}`,
		`{"command":"\u0000\u001f\"\\\/\b\f\n\r\t\ud83d\ude00","payload":[{"a":[]}]}`,
	}
	for _, f := range frames {
		m := mustDecode(t, f)
		out := m.AppendTo(nil)
		m2 := mustDecode(t, string(out))
		if !sameMessage(m, m2) {
			t.Fatalf("%s -> %s: %+v != %+v", f, out, m, m2)
		}
	}
}

func TestDispatchable(t *testing.T) {
	tests := []struct {
		frame string
		want  bool
	}{
		{`{"id":1,"command":"echo"}`, true},
		{`{"id":1,"command":""}`, true},
		{`{"command":"echo"}`, false},
		{`{"id":"1","command":"echo"}`, false},
		{`{"id":1,"command":"pong","payload":{}}`, false},
		{`{"id":1,"command":"latency:response","payload":{}}`, false},
	}
	for _, tt := range tests {
		m := mustDecode(t, tt.frame)
		if got := m.Dispatchable(); got != tt.want {
			t.Errorf("%s: Dispatchable = %v", tt.frame, got)
		}
	}
}
