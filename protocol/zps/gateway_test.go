package zps

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// The document's wire examples, byte for byte: what the encoders write
// and the decoders read.
func TestGatewayDocumentExamples(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{string(AppendInit(nil, "device-1", "jwt")), `{"type":"init","subscriberId":"device-1","token":"jwt"}`},
		{string(AppendSubscribe(nil, "chat:123", []string{"message.created"}, 0, true)),
			`{"type":"subscribe","room":"chat:123","eventTypes":["message.created"],"fromSequence":0}`},
		{string(AppendUnsubscribe(nil, "chat:123")), `{"type":"unsubscribe","room":"chat:123"}`},
		{string(AppendPublish(nil, &PublishEvent{Type: "message.created", Room: "chat:123", Payload: json.RawMessage(`{"text":"Hello"}`)})),
			`{"type":"publish","event":{"type":"message.created","room":"chat:123","payload":{"text":"Hello"}}}`},
		{string(AppendAck(nil, "chat:123", 10)), `{"type":"ack","room":"chat:123","sequence":10}`},
		{string(AppendReplayRequest(nil, "chat:123", 10, 100)), `{"type":"replay_request","room":"chat:123","fromSequence":10,"limit":100}`},

		{string(AppendReady(nil, "device-1")), `{"type":"ready","subscriberId":"device-1"}`},
		{string(AppendSubscribed(nil, "chat:123")), `{"type":"subscribed","room":"chat:123"}`},
		{string(AppendReplay(nil, "chat:123", nil)), `{"type":"replay","room":"chat:123","events":[]}`},
		{string(AppendAck(nil, "chat:123", 1)), `{"type":"ack","room":"chat:123","sequence":1}`},
		{string(AppendUnsubscribed(nil, "chat:123")), `{"type":"unsubscribed","room":"chat:123"}`},
		{string(AppendError(nil, "Access denied for room: chat:123", CodeAccessDenied)),
			`{"type":"error","message":"Access denied for room: chat:123","code":"4408"}`},

		{string(AppendPublished(nil, "chat:1", 7, "evt_1")), `{"type":"ack","room":"chat:1","sequence":7,"id":"evt_1"}`},
		{string(AppendInit(nil, "d", "")), `{"type":"init","subscriberId":"d"}`},
		{string(AppendSubscribe(nil, "chat:*", nil, 0, false)), `{"type":"subscribe","room":"chat:*"}`},
		{string(AppendPublish(nil, &PublishEvent{ID: "x\"", Type: "t", Room: "a:b", Metadata: json.RawMessage(`{"m":1}`), Encrypted: true, TTLMs: 5})),
			`{"type":"publish","event":{"id":"x\"","type":"t","room":"a:b","payload":null,"metadata":{"m":1},"encrypted":true,"ttlMs":5}}`},
	} {
		if tc.got != tc.want {
			t.Errorf("\n got %s\nwant %s", tc.got, tc.want)
		}
	}
	for _, tc := range []struct{ got, want string }{
		{string(AppendSubscribeEphemeral(nil, "chat:123", []string{"typing"})), `{"type":"subscribe_ephemeral","room":"chat:123","eventTypes":["typing"]}`},
		{string(AppendUnsubscribeEphemeral(nil, "chat:123")), `{"type":"unsubscribe_ephemeral","room":"chat:123"}`},
		{string(AppendPublishEphemeral(nil, "chat:123", "typing", json.RawMessage(`{"userId":"u1"}`))),
			`{"type":"publish_ephemeral","event":{"type":"typing","room":"chat:123","payload":{"userId":"u1"}}}`},
		{string(AppendEphemeralReply(nil, TypeSubscribed, "chat:123")), `{"type":"subscribed","room":"chat:123","ephemeral":true}`},
		{string(AppendEphemeralReply(nil, TypeAck, "chat:123")), `{"type":"ack","room":"chat:123","ephemeral":true}`},
	} {
		if tc.got != tc.want {
			t.Errorf("\n got %s\nwant %s", tc.got, tc.want)
		}
	}
	ev := Event{ID: "evt_1", Room: "chat:123", Sequence: 1, Type: "message.created", Payload: json.RawMessage(`{}`)}
	got := string(AppendEventMessage(nil, &ev))
	want := `{"type":"event","data":{"id":"evt_1","type":"message.created","room":"chat:123","sequence":1,` +
		`"emittedAt":"0001-01-01T00:00:00.000Z","expiresAt":"0001-01-01T00:00:00.000Z","payload":{}}}`
	if got != want {
		t.Fatalf("event:\n got %s\nwant %s", got, want)
	}
}

func TestDecodeClientMessage(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ClientMessage
	}{
		{`{"type":"init","subscriberId":"device-1","token":"jwt"}`, ClientMessage{Type: TypeInit, SubscriberID: "device-1", Token: "jwt"}},
		{`{"type":"init"}`, ClientMessage{Type: TypeInit}},
		{`{"type":"subscribe","room":"chat:123","eventTypes":["message.created"],"fromSequence":0}`,
			ClientMessage{Type: TypeSubscribe, Room: "chat:123", EventTypes: []string{"message.created"}, HasFrom: true}},
		{`{"room":"chat:*","type":"subscribe","fromSequence":null,"eventTypes":null,"x":[{}]}`, ClientMessage{Type: TypeSubscribe, Room: "chat:*"}},
		{`{"type":"unsubscribe","room":"chat:123"}`, ClientMessage{Type: TypeUnsubscribe, Room: "chat:123"}},
		{`{"type":"publish","event":{"type":"message.created","room":"chat:123","payload":{"text":"Hello"}}}`,
			ClientMessage{Type: TypePublish, Event: PublishEvent{Type: "message.created", Room: "chat:123", Payload: json.RawMessage(`{"text":"Hello"}`)}}},
		{`{"type":"publish","event":{"id":"i","type":"t","room":"a:b","payload":null,"metadata":{"a":1},"encrypted":true,"ttlMs":60000}}`,
			ClientMessage{Type: TypePublish, Event: PublishEvent{ID: "i", Type: "t", Room: "a:b", Metadata: json.RawMessage(`{"a":1}`), Encrypted: true, TTLMs: 60000}}},
		{`{"type":"ack","room":"chat:123","sequence":10}`, ClientMessage{Type: TypeAck, Room: "chat:123", Sequence: 10}},
		{`{"type":"replay_request","room":"chat:123","fromSequence":10,"limit":100}`,
			ClientMessage{Type: TypeReplayRequest, Room: "chat:123", FromSequence: 10, HasFrom: true, Limit: 100}},
		{`{"type":"replay_request","room":"chat:123","toSequence":20,"eventTypes":["a"]}`,
			ClientMessage{Type: TypeReplayRequest, Room: "chat:123", ToSequence: 20, EventTypes: []string{"a"}}},
		{`{"\u0074ype":"ack","room":"ch\u0061t:1","sequence":1}`, ClientMessage{Type: TypeAck, Room: "chat:1", Sequence: 1}},
		{`{"type":"subscribe_ephemeral","room":"chat:1","eventTypes":["typing"]}`, ClientMessage{Type: TypeSubscribeEphemeral, Room: "chat:1", EventTypes: []string{"typing"}}},
		{`{"type":"unsubscribe_ephemeral","room":"chat:1"}`, ClientMessage{Type: TypeUnsubscribeEphemeral, Room: "chat:1"}},
		{`{"type":"publish_ephemeral","event":{"type":"typing","room":"chat:1","payload":{"u":1}}}`,
			ClientMessage{Type: TypePublishEphemeral, Event: PublishEvent{Type: "typing", Room: "chat:1", Payload: json.RawMessage(`{"u":1}`)}}},
	} {
		var m ClientMessage
		if err := DecodeClientMessage([]byte(tc.in), &m); err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(m, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.in, m, tc.want)
		}
	}
}

func TestDecodeClientMessageErrors(t *testing.T) {
	for _, in := range []string{
		``, `[]`, `"init"`, `{`, `{}`, `{"type":1}`, `{"type":"nope"}`, `{"type":"init"} x`,
		`{"type":"subscribe"}`, `{"type":"subscribe","room":5}`, `{"type":"subscribe","room":"a:b","fromSequence":-1}`,
		`{"type":"subscribe","room":"a:b","fromSequence":1.5}`, `{"type":"subscribe","room":"a:b","eventTypes":"x"}`,
		`{"type":"subscribe","room":"a:b","eventTypes":[1]}`, `{"type":"ack","room":"a:b"}`, `{"type":"ack","room":"a:b","sequence":0}`,
		`{"type":"ack","sequence":3}`, `{"type":"publish"}`, `{"type":"publish","event":[]}`, `{"type":"publish","event":{"room":"a:b"}}`,
		`{"type":"publish","event":{"type":"t","room":"a:b","metadata":[]}}`, `{"type":"publish","event":{"type":"t","room":"a:b","encrypted":1}}`,
		`{"type":"publish","event":{"type":"t","room":"a:b","ttlMs":-5}}`, `{"type":"replay_request","room":"a:b","limit":99999999999}`,
		`{"type":"init","token":7}`, `{"type":"unsubscribe"}`,
	} {
		m := ClientMessage{Type: "stale"}
		err := DecodeClientMessage([]byte(in), &m)
		if !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("%s: err = %v", in, err)
		}
		if !reflect.DeepEqual(m, ClientMessage{}) {
			t.Errorf("%s: left %+v", in, m)
		}
	}
}

func TestDecodeServerMessage(t *testing.T) {
	ev := sampleEvent()
	evMsg := AppendEventMessage(nil, &ev)
	replay := AppendReplay(nil, "chat:123", []Event{ev, ev})
	for _, tc := range []struct {
		in   []byte
		want ServerMessage
	}{
		{AppendReady(nil, "device-1"), ServerMessage{Type: TypeReady, SubscriberID: "device-1"}},
		{AppendSubscribed(nil, "chat:1"), ServerMessage{Type: TypeSubscribed, Room: "chat:1"}},
		{AppendUnsubscribed(nil, "chat:1"), ServerMessage{Type: TypeUnsubscribed, Room: "chat:1"}},
		{AppendAck(nil, "chat:1", 9), ServerMessage{Type: TypeAck, Room: "chat:1", Sequence: 9}},
		{AppendPublished(nil, "chat:1", 9, "e"), ServerMessage{Type: TypeAck, Room: "chat:1", Sequence: 9, ID: "e"}},
		{AppendError(nil, "no", CodeRateLimited), ServerMessage{Type: TypeError, Message: "no", Code: "4407"}},
		{[]byte(`{"type":"error","message":"x","code":4408}`), ServerMessage{Type: TypeError, Message: "x", Code: "4408"}},
		{evMsg, ServerMessage{Type: TypeEvent, Event: ev}},
		{replay, ServerMessage{Type: TypeReplay, Room: "chat:123", Events: []Event{ev, ev}}},
		{AppendReplay(nil, "chat:123", nil), ServerMessage{Type: TypeReplay, Room: "chat:123"}},
		{[]byte(`{"type":"future","x":1}`), ServerMessage{Type: "future"}},
		{AppendEphemeralReply(nil, TypeSubscribed, "chat:1"), ServerMessage{Type: TypeSubscribed, Room: "chat:1", Ephemeral: true}},
		{AppendEphemeralMessage(nil, &EphemeralEvent{ID: "e", Type: "typing", Room: "chat:1", Payload: json.RawMessage(`1`)}),
			ServerMessage{Type: TypeEphemeral, EphemeralEvent: EphemeralEvent{ID: "e", Type: "typing", Room: "chat:1", Payload: json.RawMessage(`1`)}}},
	} {
		var m ServerMessage
		if err := DecodeServerMessage(tc.in, &m); err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if m.Events != nil && len(m.Events) == 0 {
			m.Events = nil
		}
		if !reflect.DeepEqual(m, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.in, m, tc.want)
		}
	}
	for _, in := range []string{``, `{}`, `{"type":"event"}`, `{"type":"event","data":{}}`, `{"type":"replay","room":"a:b","events":{}}`,
		`{"type":"replay","room":"a:b","events":[{}]}`, `{"type":"ack","room":"a:b","sequence":"1"}`} {
		var m ServerMessage
		if err := DecodeServerMessage([]byte(in), &m); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("%s: err = %v", in, err)
		}
	}
}

// FuzzDecodeClientMessage: any input decodes or fails cleanly, whole or
// split; whatever decodes as a publish re-encodes to the same message.
func FuzzDecodeClientMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"init","subscriberId":"device-1","token":"jwt"}`,
		`{"type":"subscribe","room":"chat:123","eventTypes":["message.created"],"fromSequence":0}`,
		`{"type":"publish","event":{"id":"i","type":"t","room":"a:b","payload":[1,{"x":null}],"metadata":{"a":1},"encrypted":true,"ttlMs":60000}}`,
		`{"type":"replay_request","room":"chat:123","fromSequence":10,"limit":100,"toSequence":null}`,
		`{"type":"ack","room":"chat:123","sequence":18446744073709551615}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m ClientMessage
		if err := DecodeClientMessage(bytes.Clone(b), &m); err != nil {
			return
		}
		if m.Type != TypePublish {
			return
		}
		if m.Event.Payload != nil && !json.Valid(m.Event.Payload) {
			t.Fatalf("payload %q is not JSON", m.Event.Payload)
		}
		out := AppendPublish(nil, &m.Event)
		var back ClientMessage
		if err := DecodeClientMessage(out, &back); err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip of %s: %+v %v", out, back, err)
		}
	})
}

func FuzzDecodeServerMessage(f *testing.F) {
	ev := sampleEvent()
	f.Add(AppendEventMessage(nil, &ev))
	f.Add(AppendReplay(nil, "chat:1", []Event{ev}))
	f.Add(AppendError(nil, "m", "4400"))
	f.Add(AppendPublished(nil, "a:b", 3, "x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m ServerMessage
		_ = DecodeServerMessage(bytes.Clone(b), &m)
	})
}
