package zps

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

func sampleEvent() Event {
	at := time.Date(2025, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	return Event{
		ID: "evt_1", Type: "message.created", Room: "chat:123", Sequence: 42,
		EmittedAt: at, ExpiresAt: at.Add(24 * time.Hour),
		Payload: json.RawMessage(`{"text":"hé \"x\""}`), Metadata: json.RawMessage(`{"producer":"api"}`),
		Encrypted: true,
	}
}

func TestEventJSON(t *testing.T) {
	ev := sampleEvent()
	got := string(ev.AppendJSON(nil))
	want := `{"id":"evt_1","type":"message.created","room":"chat:123","sequence":42,` +
		`"emittedAt":"2025-01-02T03:04:05.678Z","expiresAt":"2025-01-03T03:04:05.678Z",` +
		`"payload":{"text":"hé \"x\""},"metadata":{"producer":"api"},"encrypted":true}`
	if got != want {
		t.Fatalf("AppendJSON:\n got %s\nwant %s", got, want)
	}
	var back Event
	if err := DecodeEvent([]byte(got), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, ev) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, ev)
	}

	// Without metadata, encrypted false, payload nil: the optional members
	// are left out and payload is null.
	ev.Metadata, ev.Encrypted, ev.Payload = nil, false, nil
	got = string(ev.AppendJSON(nil))
	want = `{"id":"evt_1","type":"message.created","room":"chat:123","sequence":42,` +
		`"emittedAt":"2025-01-02T03:04:05.678Z","expiresAt":"2025-01-03T03:04:05.678Z","payload":null}`
	if got != want {
		t.Fatalf("AppendJSON:\n got %s\nwant %s", got, want)
	}

	// encoding/json goes through the same codec.
	b, err := json.Marshal(sampleEvent())
	if err != nil {
		t.Fatal(err)
	}
	var viaStd Event
	if err := json.Unmarshal(b, &viaStd); err != nil || !reflect.DeepEqual(viaStd, sampleEvent()) {
		t.Fatalf("encoding/json round trip: %+v, %v", viaStd, err)
	}
}

// The document's own wire example has no times; members come in any order
// and unknown ones are skipped.
func TestDecodeEventLenient(t *testing.T) {
	var ev Event
	in := `{ "id": "evt_1", "room": "chat:123", "sequence": 1, "type": "message.created", "payload": {}, "x": [1,{"y":2}] }`
	if err := DecodeEvent([]byte(in), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ID != "evt_1" || ev.Room != "chat:123" || ev.Sequence != 1 || ev.Type != "message.created" ||
		string(ev.Payload) != "{}" || !ev.EmittedAt.IsZero() {
		t.Fatalf("decoded %+v", ev)
	}
	in = `{"\u0069d":"a\u00e9","type":"t","room":"chat:1","sequence":3,"metadata":null,"encrypted":false}`
	if err := DecodeEvent([]byte(in), &ev); err != nil || ev.ID != "aé" || ev.Metadata != nil {
		t.Fatalf("escaped: %+v %v", ev, err)
	}
}

func TestDecodeEventErrors(t *testing.T) {
	for _, in := range []string{
		``, `[]`, `{`, `{"id":"a","type":"t","room":"chat:1"}`,
		`{"id":"a","type":"t","room":"chat:1","sequence":0}`,
		`{"id":"a","type":"t","room":"chat:1","sequence":-1}`,
		`{"id":"a","type":"t","room":"chat:1","sequence":1.5}`,
		`{"id":"a","type":"t","room":"chat:1","sequence":"1"}`,
		`{"id":1,"type":"t","room":"chat:1","sequence":1}`,
		`{"id":"a","type":"t","room":"chat","sequence":1}`,
		`{"id":"a","type":"t","room":"chat:*","sequence":1}`,
		`{"id":"","type":"t","room":"chat:1","sequence":1}`,
		`{"id":"a","type":"t","room":"chat:1","sequence":1,"metadata":[1]}`,
		`{"id":"a","type":"t","room":"chat:1","sequence":1,"encrypted":1}`,
		`{"id":"a","type":"t","room":"chat:1","sequence":1,"emittedAt":"yesterday"}`,
		`{"id":"a","type":"t","room":"chat:1","sequence":1} x`,
	} {
		ev := Event{ID: "stale"}
		err := DecodeEvent([]byte(in), &ev)
		if !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("DecodeEvent(%s) err = %v, want ErrInvalidEvent", in, err)
		}
		if !reflect.DeepEqual(ev, Event{}) {
			t.Errorf("DecodeEvent(%s) left %+v", in, ev)
		}
	}
}

func TestCheckPayload(t *testing.T) {
	if err := CheckPayload([]byte(`[1,"a"]`), []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := CheckPayload(nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{`{`, ``}, {`1`, `[1]`}, {`1`, `{"a":}`}, {`1 2`, ``}} {
		var md []byte
		if c[1] != "" {
			md = []byte(c[1])
		}
		if err := CheckPayload([]byte(c[0]), md); !errors.Is(err, ErrInvalidJSON) {
			t.Errorf("CheckPayload(%s, %s) = %v", c[0], c[1], err)
		}
	}
}

func TestEphemeralJSON(t *testing.T) {
	e := EphemeralEvent{ID: "e1", Type: "typing", Room: "chat:1",
		EmittedAt: time.Date(2025, 1, 2, 3, 4, 5, 6_000_000, time.UTC), Payload: json.RawMessage(`{"userId":"u1"}`)}
	b := e.AppendJSON(nil)
	want := `{"id":"e1","type":"typing","room":"chat:1","emittedAt":"2025-01-02T03:04:05.006Z","payload":{"userId":"u1"}}`
	if string(b) != want {
		t.Fatalf("got %s", b)
	}
	var back EphemeralEvent
	if err := DecodeEphemeral(b, &back); err != nil || !reflect.DeepEqual(back, e) {
		t.Fatalf("round trip %+v %v", back, err)
	}
	if err := DecodeEphemeral([]byte(`{"type":"typing"}`), &back); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("no room: %v", err)
	}
}

func TestPresenceUserJSON(t *testing.T) {
	u := PresenceUser{UserID: "u1", Metadata: json.RawMessage(`{"name":"Francisco"}`),
		LastSeenAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := u.AppendJSON(nil)
	if string(b) != `{"userId":"u1","metadata":{"name":"Francisco"},"lastSeenAt":"2025-01-02T03:04:05.000Z"}` {
		t.Fatalf("got %s", b)
	}
	var back PresenceUser
	if err := DecodePresenceUser(b, &back); err != nil || !reflect.DeepEqual(back, u) {
		t.Fatalf("round trip %+v %v", back, err)
	}
	if err := DecodePresenceUser([]byte(`{"metadata":{}}`), &back); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("no userId: %v", err)
	}
}
