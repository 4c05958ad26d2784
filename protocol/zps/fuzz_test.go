package zps

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzDecodeEvent: any input decodes or fails cleanly; whatever decodes
// re-encodes to an envelope that decodes to the same event (times at
// millisecond precision are what AppendJSON writes).
func FuzzDecodeEvent(f *testing.F) {
	ev := sampleEvent()
	f.Add(ev.AppendJSON(nil))
	f.Add([]byte(`{ "id": "evt_1", "room": "chat:123", "sequence": 1, "type": "message.created", "payload": {} }`))
	f.Add([]byte(`{"id":"a","type":"t","room":"chat:1","sequence":18446744073709551615,"emittedAt":null}`))
	f.Add([]byte(`{"id":"a\u0000","type":"t","room":"chat:1","sequence":1}`))
	f.Add([]byte(`{"id":"a","type":"t","room":"chat:1","sequence":1,"expiresAt":"9999-12-31T23:00:00-05:00"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		var e Event
		if err := DecodeEvent(in, &e); err != nil {
			return
		}
		out := e.AppendJSON(nil)
		var back Event
		if err := DecodeEvent(out, &back); err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", out, err)
		}
		// Payload may carry insignificant whitespace that AppendJSON keeps.
		if !reflect.DeepEqual(back, e) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", back, e)
		}
	})
}

// FuzzParsePattern: never panics; a room that parses rebuilds with Room.
func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"chat:1", "chat:*", "*", "a:b:c", "ü:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		scope, wc, err := ParsePattern(s)
		if err != nil || wc {
			return
		}
		sc, id, err := ParseRoom(s)
		if err != nil || sc != scope {
			t.Fatalf("ParsePattern ok but ParseRoom(%q) = %q, %v", s, sc, err)
		}
		if r, err := Room(sc, id); err != nil || r != s {
			t.Fatalf("Room(%q, %q) = %q, %v", sc, id, r, err)
		}
	})
}

func FuzzDecodeEphemeral(f *testing.F) {
	f.Add([]byte(`{"id":"e1","type":"typing","room":"chat:1","emittedAt":"2025-01-02T03:04:05.006Z","payload":{"userId":"u1"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var e EphemeralEvent
		if err := DecodeEphemeral(bytes.Clone(b), &e); err != nil {
			return
		}
		var back EphemeralEvent
		out := e.AppendJSON(nil)
		if err := DecodeEphemeral(out, &back); err != nil || !reflect.DeepEqual(back, e) {
			t.Fatalf("round trip of %s: %+v %v", out, back, err)
		}
	})
}
