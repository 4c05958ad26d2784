package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

// fuzzFrames seeds the fuzzers with real frames from wire.md plus shapes
// that stress the scanner; testdata/fuzz holds more, and every past crash.
var fuzzFrames = []string{
	`{"id":7,"command":"echo","payload":"hi"}`,
	`{"id":7,"command":"echo"}`,
	`{"id":9,"command":"mesh/join-room","payload":{"roomName":"admin:1"}}`,
	`{"id":3,"command":"mesh/subscribe-channel","payload":{"channel":"chat:lobby","historyLimit":10}}`,
	`{"id":7,"command":"nope","payload":{"error":"Command \"nope\" not found","code":"ENOTFOUND","name":"CommandError"}}`,
	`{"command":"mesh/record-update","payload":{"recordId":"user:1","patch":[{"op":"replace","path":"/name","value":"b"}],"version":5}}`,
	`{"command":"mesh/presence-update","payload":{"type":"state","connectionId":"conn-1","roomName":"lobby","state":null,"timestamp":1732538400000}}`,
	`{"command":"latency","payload":12}`,
	`{"id":1,"command":"pong","payload":{}}`,
	`{"\u0069d":1.5e3,"command":"\ud83d\ude00\n","command":"x","payload":[-0.0,true,false,null,{}]}`,
	"{\"command\":\"a\xffb\"}",
	`{"id":99999999999999999999,"command":""}`,
	`[[[[[[[[[[]]]]]]]]]]`,
	`5`,
	`{"command":"x","payload":"\u00`,
	` { } `,
}

// FuzzDecode feeds Decode whole frames and both halves of a split one.
// Whole frames must agree with the encoding/json reference; a decoded frame
// must survive AppendTo and Decode unchanged; no input may panic.
func FuzzDecode(f *testing.F) {
	for i, s := range fuzzFrames {
		f.Add([]byte(s), uint16(i*7))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		m, err := checkDecode(t, data)
		if (errors.Is(err, ErrInvalidJSON)) == Valid(data) {
			t.Fatalf("Valid(%s) disagrees with Decode err %v", short(data), err)
		}
		if err == nil {
			out := m.AppendTo(nil)
			if !json.Valid(out) {
				t.Fatalf("re-encoded frame is not JSON: %s", short(out))
			}
			var m2 Message
			if err := Decode(out, &m2); err != nil || !sameMessage(m, m2) {
				t.Fatalf("round trip %s -> %s: %+v / %+v (%v)", short(data), short(out), m, m2, err)
			}
			if utf8.Valid(data) && !bytes.Equal(m.Command, m2.Command) {
				t.Fatalf("command changed on round trip: %q -> %q", m.Command, m2.Command)
			}
		}

		k := int(split)
		if len(data) > 0 {
			k %= len(data) + 1
		} else {
			k = 0
		}
		var part Message
		errHead := Decode(data[:k], &part)
		_ = Decode(data[k:], &part)
		// A proper prefix that cuts into the object cannot be a whole frame.
		if err == nil && k < len(bytes.TrimRight(data, " \t\r\n")) && errHead == nil {
			t.Fatalf("prefix %s of %s decoded", short(data[:k]), short(data))
		}
	})
}

// FuzzParseErrorPayload checks the error-payload reader against a reference
// built on encoding/json.
func FuzzParseErrorPayload(f *testing.F) {
	for _, s := range []string{
		`{"error":"x","code":"ENOTFOUND","name":"CommandError"}`, `{"error":5}`, `{"success":true}`,
		`{"error":"a","error":{}}`, `"error"`, `{"error":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ce, ok := ParseErrorPayload(payload)
		var obj map[string]json.RawMessage
		want := json.Valid(payload) && bytes.HasPrefix(bytes.TrimLeft(payload, " \t\r\n"), []byte("{")) &&
			json.Unmarshal(payload, &obj) == nil && len(obj["error"]) > 0 && obj["error"][0] == '"'
		if ok != want {
			t.Fatalf("ParseErrorPayload(%s) ok = %v, reference %v", short(payload), ok, want)
		}
		if !ok {
			return
		}
		var msg string
		_ = json.Unmarshal(obj["error"], &msg)
		if validUTF8([]byte(ce.Message)) != msg {
			t.Fatalf("message %q, reference %q", ce.Message, msg)
		}
	})
}
