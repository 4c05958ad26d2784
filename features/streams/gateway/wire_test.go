package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meshfast/meshfast/features/streams"
	"github.com/meshfast/meshfast/protocol/zps"
)

// envelope is the event message the document shows, written out by hand
// with the stored event's id and times: the bytes a client must get.
func envelope(ev *streams.Event, payload string) string {
	at := func(t time.Time) string { return string(zps.AppendTime(nil, t)) }
	return fmt.Sprintf(`{"type":"event","data":{"id":%q,"type":%q,"room":%q,"sequence":%d,"emittedAt":"%s","expiresAt":"%s","payload":%s}}`,
		ev.ID, ev.Type, ev.Room, ev.Sequence, at(ev.EmittedAt), at(ev.ExpiresAt), payload)
}

// TestWireMessages walks every message of the protocol, both ways, byte
// for byte, with a raw WebSocket client.
func TestWireMessages(t *testing.T) {
	n := startNode(t, Options{Limits: Limits{AllowClientPublish: true}}, nil)
	w := dial(t, n)

	// init → ready
	w.expect(`{"type":"init","subscriberId":"device-1","token":"jwt"}`, `{"type":"ready","subscriberId":"device-1"}`)

	// publish → ack with the stored sequence and id
	w.send(`{"type":"publish","event":{"type":"message.created","room":"chat:123","payload":{"text":"Hello"}}}`)
	if got, want := w.next(), `{"type":"ack","room":"chat:123","sequence":1,"id":"`+mustEvent(t, n, "chat:123", 1).ID+`"}`; got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
	w.expect(`{"type":"publish","event":{"id":"evt_2","type":"message.created","room":"chat:123","payload":{"text":"again"},"metadata":{"producer":"web"},"encrypted":true}}`,
		`{"type":"ack","room":"chat:123","sequence":2,"id":"evt_2"}`)
	// the same id again: the stored event, no new sequence
	w.expect(`{"type":"publish","event":{"id":"evt_2","type":"message.created","room":"chat:123","payload":{"text":"dup"}}}`,
		`{"type":"ack","room":"chat:123","sequence":2,"id":"evt_2"}`)

	// subscribe → subscribed, then the events after fromSequence, then live
	w.expect(`{"type":"subscribe","room":"chat:123","eventTypes":["message.created"],"fromSequence":0}`, `{"type":"subscribed","room":"chat:123"}`)
	ev1, ev2 := mustEvent(t, n, "chat:123", 1), mustEvent(t, n, "chat:123", 2)
	w.want(envelope(ev1, `{"text":"Hello"}`))
	at := func(t time.Time) string { return string(zps.AppendTime(nil, t)) }
	w.want(`{"type":"event","data":{"id":"evt_2","type":"message.created","room":"chat:123","sequence":2,"emittedAt":"` +
		at(ev2.EmittedAt) + `","expiresAt":"` + at(ev2.ExpiresAt) + `","payload":{"text":"again"},"metadata":{"producer":"web"},"encrypted":true}}`)
	n.publish(t, "chat:123", 1, "message.created")
	w.want(envelope(mustEvent(t, n, "chat:123", 3), `{"n":0}`))

	// replay_request → replay
	w.expect(`{"type":"replay_request","room":"chat:123","fromSequence":1,"limit":1}`,
		`{"type":"replay","room":"chat:123","events":[`+string(ev2.AppendJSON(nil))+`]}`)
	w.expect(`{"type":"replay_request","room":"chat:123","fromSequence":10,"limit":100}`, `{"type":"replay","room":"chat:123","events":[]}`)

	// ack → ack, and the cursor moved
	w.expect(`{"type":"ack","room":"chat:123","sequence":1}`, `{"type":"ack","room":"chat:123","sequence":1}`)
	if c, err := n.st.Cursor(bg(), "chat:123", "device-1"); err != nil || c != 1 {
		t.Fatalf("cursor %d, %v", c, err)
	}

	// unsubscribe → unsubscribed, and no more events
	w.expect(`{"type":"unsubscribe","room":"chat:123"}`, `{"type":"unsubscribed","room":"chat:123"}`)
	n.publish(t, "chat:123", 1, "message.created")
	w.silent(100 * time.Millisecond)

	// error
	w.expect(`{"type":"subscribe","room":"chat"}`,
		`{"type":"error","message":"Invalid message: invalid room \"chat\": want scope:resourceId","code":"4400"}`)
	w.expect(`not json`, `{"type":"error","message":"Invalid message: not a JSON object","code":"4400"}`)
	w.expect(`{"type":"shout"}`, `{"type":"error","message":"Invalid message: unknown type \"shout\"","code":"4400"}`)
	w.expect(`{"type":"init","subscriberId":"again"}`, `{"type":"error","message":"Invalid message: the connection is already initialized","code":"4400"}`)
	w.expect(`{"type":"ack","room":"chat:123","sequence":99}`,
		`{"type":"error","message":"Invalid message: sequence 99 is beyond the last sequence of chat:123","code":"4400"}`)
}

func mustEvent(t testing.TB, n *node, room string, seq uint64) *streams.Event {
	t.Helper()
	res, err := n.st.Replay(bg(), streams.ReplayOptions{Room: room, FromSequence: seq - 1, Limit: 1})
	if err != nil || len(res.Events) != 1 || res.Events[0].Sequence != seq {
		t.Fatalf("event %s #%d: %+v %v", room, seq, res.Events, err)
	}
	return &res.Events[0]
}

// A subscribe without fromSequence resumes after the subscriber's
// acknowledged cursor; with one, after it; a new subscriber from the start.
func TestSubscribeStart(t *testing.T) {
	n := startNode(t, Options{}, nil)
	evs := n.publish(t, "order:1", 5, "order.updated")
	if err := n.st.Ack(bg(), "order:1", 3, "dev"); err != nil {
		t.Fatal(err)
	}
	w := dialInit(t, n, "dev")
	w.expect(`{"type":"subscribe","room":"order:1"}`, `{"type":"subscribed","room":"order:1"}`)
	w.want(eventMsg(&evs[3]))
	w.want(eventMsg(&evs[4]))
	w.silent(50 * time.Millisecond)

	w2 := dialInit(t, n, "other")
	w2.expect(`{"type":"subscribe","room":"order:1"}`, `{"type":"subscribed","room":"order:1"}`)
	for i := range evs {
		w2.want(eventMsg(&evs[i]))
	}
	w3 := dialInit(t, n, "dev")
	w3.expect(`{"type":"subscribe","room":"order:1","fromSequence":1}`, `{"type":"subscribed","room":"order:1"}`)
	for i := 1; i < 5; i++ {
		w3.want(eventMsg(&evs[i]))
	}
	// Beyond the head: refused, not waited for.
	w3.expect(`{"type":"subscribe","room":"order:2","fromSequence":7}`,
		errMsg("Invalid message: fromSequence 7 is beyond the last sequence of order:2, 0", zps.CodeInvalidMessage))
	// Live after the backlog, on all three.
	more := n.publish(t, "order:1", 1, "order.updated")
	for _, x := range []*wire{w, w2, w3} {
		x.want(eventMsg(&more[0]))
	}
}

// eventTypes: only those types, from the store and live; scope:* gets
// every room of the scope live.
func TestFiltersAndWildcard(t *testing.T) {
	n := startNode(t, Options{}, nil)
	a := n.publish(t, "chat:1", 2, "message.created")
	b := n.publish(t, "chat:1", 1, "typing")
	w := dialInit(t, n, "d")
	w.expect(`{"type":"subscribe","room":"chat:1","eventTypes":["typing"],"fromSequence":0}`, `{"type":"subscribed","room":"chat:1"}`)
	w.want(eventMsg(&b[0]))
	wc := dialInit(t, n, "e")
	wc.expect(`{"type":"subscribe","room":"chat:*"}`, `{"type":"subscribed","room":"chat:*"}`)
	wc.silent(50 * time.Millisecond) // live only
	c := n.publish(t, "chat:1", 1, "message.created")
	d := n.publish(t, "chat:2", 1, "typing")
	e := n.publish(t, "chat:1", 1, "typing")
	w.want(eventMsg(&e[0]))
	// Rooms are ordered each on its own: chat:1's two in order, chat:2's
	// anywhere.
	var one []string
	sawTwo := false
	for range 3 {
		f := wc.next()
		switch f {
		case eventMsg(&d[0]):
			sawTwo = true
		default:
			one = append(one, f)
		}
	}
	if !sawTwo || len(one) != 2 || one[0] != eventMsg(&c[0]) || one[1] != eventMsg(&e[0]) {
		t.Fatalf("scope subscriber got chat:1 %v, chat:2 %v", one, sawTwo)
	}
	w.silent(50 * time.Millisecond)
	_ = a

	// Wildcard on the global * is refused.
	wc.expect(`{"type":"subscribe","room":"*"}`,
		errMsg(`Invalid message: invalid room pattern "*": the global wildcard is not supported, only scope:*`, zps.CodeInvalidMessage))
}

// A subscribe to a room already subscribed starts over from its own
// fromSequence; events are not doubled.
func TestResubscribe(t *testing.T) {
	n := startNode(t, Options{}, nil)
	evs := n.publish(t, "chat:1", 3, "m")
	w := dialInit(t, n, "d")
	w.expect(`{"type":"subscribe","room":"chat:1","fromSequence":2}`, `{"type":"subscribed","room":"chat:1"}`)
	w.want(eventMsg(&evs[2]))
	w.expect(`{"type":"subscribe","room":"chat:1","fromSequence":1}`, `{"type":"subscribed","room":"chat:1"}`)
	w.want(eventMsg(&evs[1]))
	w.want(eventMsg(&evs[2]))
	more := n.publish(t, "chat:1", 1, "m")
	w.want(eventMsg(&more[0]))
	w.silent(50 * time.Millisecond)
}

// A publish's payload and metadata are stored and routed as given.
func TestClientPublishRoundTrip(t *testing.T) {
	n := startNode(t, Options{Limits: Limits{AllowClientPublish: true}}, nil)
	w := dialInit(t, n, "d")
	w.expect(`{"type":"subscribe","room":"chat:9"}`, `{"type":"subscribed","room":"chat:9"}`)
	w.send(`{"type":"publish","event":{"type":"t","room":"chat:9","payload":[1,"x",{"y":null}],"ttlMs":60000}}`)
	var got []string
	for len(got) < 2 {
		got = append(got, w.next())
	}
	var ack zps.ServerMessage
	for _, f := range got {
		var m zps.ServerMessage
		if err := zps.DecodeServerMessage([]byte(f), &m); err != nil {
			t.Fatal(err)
		}
		if m.Type == zps.TypeAck {
			ack = m
			continue
		}
		if string(m.Event.Payload) != `[1,"x",{"y":null}]` || m.Event.ExpiresAt.Sub(m.Event.EmittedAt) != time.Minute {
			t.Fatalf("event %s", f)
		}
	}
	if ack.Sequence != 1 || ack.ID == "" {
		t.Fatalf("ack %+v from %v", ack, got)
	}
	var payload json.RawMessage
	_ = payload
	_ = context.Background
}

// Ephemeral events: subscribe, filter, publish (from Go and from a
// client), unsubscribe; their messages byte for byte.
func TestEphemeralWire(t *testing.T) {
	n := startNode(t, Options{Limits: Limits{AllowClientPublish: true}}, nil)
	w := dialInit(t, n, "d")
	w.expect(`{"type":"subscribe_ephemeral","room":"chat:1","eventTypes":["typing"]}`, `{"type":"subscribed","room":"chat:1","ephemeral":true}`)
	all := dialInit(t, n, "e")
	all.expect(`{"type":"subscribe_ephemeral","room":"chat:*"}`, `{"type":"subscribed","room":"chat:*","ephemeral":true}`)
	if err := n.st.PublishEphemeral(bg(), streams.EphemeralMessage{Room: "chat:1", Type: "cursor", Payload: json.RawMessage(`{"x":1}`)}); err != nil {
		t.Fatal(err)
	}
	f := all.next()
	var m zps.ServerMessage
	if err := zps.DecodeServerMessage([]byte(f), &m); err != nil || m.Type != zps.TypeEphemeral || m.EphemeralEvent.Type != "cursor" {
		t.Fatalf("ephemeral %s %v", f, err)
	}
	want := `{"type":"ephemeral","data":{"id":"` + m.EphemeralEvent.ID + `","type":"cursor","room":"chat:1","emittedAt":"` +
		string(zps.AppendTime(nil, m.EphemeralEvent.EmittedAt)) + `","payload":{"x":1}}}`
	if f != want {
		t.Fatalf("\n got %s\nwant %s", f, want)
	}
	w.expect(`{"type":"publish_ephemeral","event":{"type":"typing","room":"chat:1","payload":{"userId":"u1"}}}`, `{"type":"ack","room":"chat:1","ephemeral":true}`)
	got := w.next() // its own typing event, through the node
	if !strings.HasPrefix(got, `{"type":"ephemeral","data":{"id":"`) || !strings.Contains(got, `"type":"typing","room":"chat:1"`) ||
		!strings.HasSuffix(got, `"payload":{"userId":"u1"}}}`) {
		t.Fatalf("typing %s", got)
	}
	if f := all.next(); !strings.Contains(f, `"type":"typing"`) {
		t.Fatalf("scope subscriber: %s", f)
	}
	w.silent(50 * time.Millisecond) // the cursor event was filtered out
	w.expect(`{"type":"publish_ephemeral","event":{"type":"presence.enter","room":"chat:1"}}`,
		errMsg(`Invalid message: event type "presence.enter" is reserved for presence`, zps.CodeInvalidMessage))
	w.expect(`{"type":"unsubscribe_ephemeral","room":"chat:1"}`, `{"type":"unsubscribed","room":"chat:1","ephemeral":true}`)
	if err := n.st.PublishEphemeral(bg(), streams.EphemeralMessage{Room: "chat:1", Type: "typing"}); err != nil {
		t.Fatal(err)
	}
	all.next()
	w.silent(50 * time.Millisecond)

	off := startNode(t, Options{}, nil)
	o := dialInit(t, off, "d")
	o.expect(`{"type":"publish_ephemeral","event":{"type":"typing","room":"chat:1"}}`, errMsg("Client publish is disabled", zps.CodePublishDisabled))
}
