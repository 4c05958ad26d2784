package client

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/meshfast/meshfast/protocol"
)

// TestBuiltinWire checks the exact frame of every built-in command and
// how its reply is returned.
func TestBuiltinWire(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{})
	ctx := ctxT(t)

	cases := []struct {
		name  string
		call  func() (any, error)
		wire  string // %d is the id
		reply string
		want  any
	}{
		{"join-room", func() (any, error) { return c.JoinRoom(ctx, "lobby") },
			`{"id":%d,"command":"mesh/join-room","payload":{"roomName":"lobby"}}`,
			`{"success":true,"present":["a","b"]}`,
			JoinRoomResult{Success: true, Present: []string{"a", "b"}}},
		{"leave-room", func() (any, error) { return c.LeaveRoom(ctx, "lobby") },
			`{"id":%d,"command":"mesh/leave-room","payload":{"roomName":"lobby"}}`,
			`{"success":true}`, true},
		{"subscribe-channel", func() (any, error) {
			return c.SubscribeChannel(ctx, "chat:lobby", func(string) {}, WithHistoryLimit(10))
		},
			`{"id":%d,"command":"mesh/subscribe-channel","payload":{"channel":"chat:lobby","historyLimit":10,"sequenced":true}}`,
			`{"success":true,"history":[]}`,
			SubscribeChannelResult{Success: true, History: []string{}}},
		{"subscribe-channel-no-history", func() (any, error) { return c.SubscribeChannel(ctx, "c2", func(string) {}) },
			`{"id":%d,"command":"mesh/subscribe-channel","payload":{"channel":"c2","sequenced":true}}`,
			`{"success":false,"history":[]}`,
			SubscribeChannelResult{History: []string{}}},
		{"unsubscribe-channel", func() (any, error) { return c.UnsubscribeChannel(ctx, "chat:lobby") },
			`{"id":%d,"command":"mesh/unsubscribe-channel","payload":{"channel":"chat:lobby"}}`,
			`true`, true},
		{"get-connection-metadata", func() (any, error) { return c.GetConnectionMetadata(ctx, "conn-9") },
			`{"id":%d,"command":"mesh/get-connection-metadata","payload":{"connectionId":"conn-9"}}`,
			`{"metadata":{"user":"test-user","permissions":["read","write"]}}`,
			json.RawMessage(`{"user":"test-user","permissions":["read","write"]}`)},
		{"get-my-connection-metadata", func() (any, error) { return c.GetConnectionMetadata(ctx, "") },
			`{"id":%d,"command":"mesh/get-my-connection-metadata","payload":{}}`,
			`{"metadata":null}`, json.RawMessage(nil)},
		{"get-room-metadata", func() (any, error) { return c.GetRoomMetadata(ctx, "test-room") },
			`{"id":%d,"command":"mesh/get-room-metadata","payload":{"roomName":"test-room"}}`,
			`{"metadata":{"key":"value","nested":{"data":true}}}`,
			json.RawMessage(`{"key":"value","nested":{"data":true}}`)},
		{"subscribe-record", func() (any, error) {
			return c.SubscribeRecord(ctx, "test:record:1", RecordPatch, func(RecordUpdate) {})
		},
			`{"id":%d,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:1","mode":"patch"}}`,
			`{"success":true,"record":{"count":0},"version":1}`,
			SubscribeRecordResult{Success: true, Record: json.RawMessage(`{"count":0}`), Version: 1}},
		{"subscribe-record-refused", func() (any, error) { return c.SubscribeRecord(ctx, "unexposed:record", "", func(RecordUpdate) {}) },
			`{"id":%d,"command":"mesh/subscribe-record","payload":{"recordId":"unexposed:record","mode":"full"}}`,
			`{"success":false}`,
			SubscribeRecordResult{Record: json.RawMessage("null")}},
		{"unsubscribe-record", func() (any, error) { return c.UnsubscribeRecord(ctx, "test:record:1") },
			`{"id":%d,"command":"mesh/unsubscribe-record","payload":{"recordId":"test:record:1"}}`,
			`false`, false},
		{"publish-record-update", func() (any, error) {
			return c.PublishRecordUpdate(ctx, "writable:record:1", map[string]string{"value": "initial"})
		},
			`{"id":%d,"command":"mesh/publish-record-update","payload":{"recordId":"writable:record:1","newValue":{"value":"initial"}}}`,
			`{"success":true}`, true},
		{"publish-record-update-string", func() (any, error) { return c.PublishRecordUpdate(ctx, "r", "initial value") },
			`{"id":%d,"command":"mesh/publish-record-update","payload":{"recordId":"r","newValue":"initial value"}}`,
			`{"success":true}`, true},
		{"subscribe-presence", func() (any, error) { return c.SubscribePresence(ctx, "test:room:1", func(PresenceUpdate) {}) },
			`{"id":%d,"command":"mesh/subscribe-presence","payload":{"roomName":"test:room:1"}}`,
			`{"success":true,"present":["x"],"states":{"x":{"status":"away"}}}`,
			SubscribePresenceResult{Success: true, Present: []string{"x"}, States: map[string]json.RawMessage{"x": json.RawMessage(`{"status":"away"}`)}}},
		{"subscribe-presence-refused", func() (any, error) { return c.SubscribePresence(ctx, "untracked:room", func(PresenceUpdate) {}) },
			`{"id":%d,"command":"mesh/subscribe-presence","payload":{"roomName":"untracked:room"}}`,
			`{"success":false,"present":[]}`,
			SubscribePresenceResult{Present: []string{}}},
		{"unsubscribe-presence", func() (any, error) { return c.UnsubscribePresence(ctx, "test:room:1") },
			`{"id":%d,"command":"mesh/unsubscribe-presence","payload":{"roomName":"test:room:1"}}`,
			`true`, true},
		{"publish-presence-state", func() (any, error) {
			return c.PublishPresenceState(ctx, "test:room:1", map[string]string{"status": "typing"}, 200*time.Millisecond)
		},
			`{"id":%d,"command":"mesh/publish-presence-state","payload":{"roomName":"test:room:1","state":{"status":"typing"},"expireAfter":200}}`,
			`true`, true},
		{"publish-presence-state-no-expiry", func() (any, error) { return c.PublishPresenceState(ctx, "r", nil, 0) },
			`{"id":%d,"command":"mesh/publish-presence-state","payload":{"roomName":"r","state":null}}`,
			`false`, false},
		{"clear-presence-state", func() (any, error) { return c.ClearPresenceState(ctx, "test:room:1") },
			`{"id":%d,"command":"mesh/clear-presence-state","payload":{"roomName":"test:room:1"}}`,
			`true`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			type out struct {
				v   any
				err error
			}
			ch := make(chan out, 1)
			go func() {
				v, err := tc.call()
				ch <- out{v, err}
			}()
			f := fc.expectRaw(t, tc.wire)
			fc.reply(f, tc.reply)
			var o out
			select {
			case o = <-ch:
			case <-time.After(waitFor):
				t.Fatal("no result")
			}
			if o.err != nil {
				t.Fatalf("err %v", o.err)
			}
			if !reflect.DeepEqual(o.v, tc.want) {
				t.Fatalf("got %#v, want %#v", o.v, tc.want)
			}
		})
	}
}

func TestBuiltinErrors(t *testing.T) {
	s := newFakeServer(t, fakeOptions{respond: replies(map[string]string{
		protocol.CmdJoinRoom:            `{"error":"Access denied","code":"ESERVER","name":"Error"}`,
		protocol.CmdPublishRecordUpdate: `{"error":"Record \"test:record:readonly\" is not writable by this connection.","code":"ESERVER","name":"Error"}`,
		protocol.CmdGetRoomMetadata:     `"not an object"`,
	})})
	c, _ := connected(t, s, Options{})
	ctx := ctxT(t)
	var ce *protocol.CodeError
	res, err := c.JoinRoom(ctx, "admin:1")
	if !errors.As(err, &ce) || ce.Message != "Access denied" || res.Success {
		t.Fatalf("JoinRoom: %+v, %v", res, err)
	}
	ok, err := c.PublishRecordUpdate(ctx, "test:record:readonly", map[string]string{"value": "attempt"})
	if ok || !errors.As(err, &ce) || ce.Code != protocol.CodeServer {
		t.Fatalf("PublishRecordUpdate: %v, %v", ok, err)
	}
	if _, err := c.GetRoomMetadata(ctx, "x"); !errors.Is(err, ErrBadReply) {
		t.Fatalf("GetRoomMetadata: %v, want ErrBadReply", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.rooms) != 0 {
		t.Fatalf("refused room remembered: %v", c.rooms)
	}
}

func TestChannel(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{})
	ctx := ctxT(t)
	var got recorder[string]
	type res struct {
		r   SubscribeChannelResult
		err error
	}
	ch := make(chan res, 1)
	go func() {
		r, err := c.SubscribeChannel(ctx, "test:channel", got.add, WithHistoryLimit(3))
		ch <- res{r, err}
	}()
	f := fc.expect(t, protocol.CmdSubscribeChannel)
	fc.reply(f, `{"success":true,"history":["History message 5","History message 4","History message 3"]}`)
	fc.send(`{"command":"mesh/subscription-message","payload":{"channel":"test:channel","message":"Hello, Redis!"}}`)
	fc.send(`{"command":"mesh/subscription-message","payload":{"channel":"other","message":"not mine"}}`)
	r := <-ch
	if r.err != nil || !r.r.Success || len(r.r.History) != 3 {
		t.Fatalf("%+v", r)
	}
	want := []string{"History message 5", "History message 4", "History message 3", "Hello, Redis!"}
	if g := got.wait(t, 4); !reflect.DeepEqual(g, want) {
		t.Fatalf("callback got %q, want %q", g, want)
	}

	done := async(func() error {
		ok, err := c.UnsubscribeChannel(ctx, "test:channel")
		if !ok {
			t.Error("unsubscribe false")
		}
		return err
	})
	fc.reply(fc.expect(t, protocol.CmdUnsubscribeChannel), "true")
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
	fc.send(`{"command":"mesh/subscription-message","payload":{"channel":"test:channel","message":"Message 2"}}`)
	fc.send(`{"command":"flush","payload":0}`)
	var flushed recorder[int]
	c.On("flush", func(json.RawMessage) { flushed.add(1) })
	fc.send(`{"command":"flush","payload":0}`)
	flushed.wait(t, 1)
	if got.len() != 4 {
		t.Fatalf("delivery after unsubscribe: %q", got.get())
	}
}

func TestRoomWithPresence(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{})
	ctx := ctxT(t)
	var updates recorder[PresenceUpdate]
	type res struct {
		r   JoinRoomResult
		err error
	}
	ch := make(chan res, 1)
	go func() {
		r, err := c.JoinRoom(ctx, "test:room:1", WithPresence(updates.add))
		ch <- res{r, err}
	}()
	fc.reply(fc.expectRaw(t, `{"id":%d,"command":"mesh/join-room","payload":{"roomName":"test:room:1"}}`), `{"success":true,"present":["me"]}`)
	fc.reply(fc.expectRaw(t, `{"id":%d,"command":"mesh/subscribe-presence","payload":{"roomName":"test:room:1"}}`), `{"success":true,"present":["me","other"],"states":{}}`)
	r := <-ch
	if r.err != nil || !r.r.Success || len(r.r.Present) != 2 || r.r.States == nil {
		t.Fatalf("%+v", r)
	}
	fc.send(`{"command":"mesh/presence-update","payload":{"type":"join","connectionId":"c2","roomName":"test:room:1","timestamp":1000}}`)
	fc.send(`{"command":"mesh/presence-update","payload":{"type":"state","connectionId":"c2","roomName":"test:room:1","state":{"status":"typing"},"timestamp":1001}}`)
	fc.send(`{"command":"mesh/presence-update","payload":{"type":"state","connectionId":"c2","roomName":"test:room:1","state":null,"timestamp":1002}}`)
	fc.send(`{"command":"mesh/presence-update","payload":{"type":"join","connectionId":"c3","roomName":"elsewhere","timestamp":1003}}`)
	fc.send(`{"command":"mesh/presence-update","payload":{"type":"leave","connectionId":"c2","roomName":"test:room:1","timestamp":1004}}`)
	got := updates.wait(t, 4)
	if got[0].Type != "join" || got[0].ConnectionID != "c2" || got[0].Timestamp != 1000 {
		t.Fatalf("%+v", got[0])
	}
	if got[1].Type != "state" || string(got[1].State) != `{"status":"typing"}` {
		t.Fatalf("%+v", got[1])
	}
	if got[2].Type != "state" || string(got[2].State) != "null" {
		t.Fatalf("%+v", got[2])
	}
	if got[3].Type != "leave" || got[3].Timestamp != 1004 {
		t.Fatalf("%+v", got[3])
	}

	// LeaveRoom also ends the presence subscription.
	done := async(func() error { _, err := c.LeaveRoom(ctx, "test:room:1"); return err })
	fc.reply(fc.expect(t, protocol.CmdLeaveRoom), `{"success":true}`)
	fc.reply(fc.expectRaw(t, `{"id":%d,"command":"mesh/unsubscribe-presence","payload":{"roomName":"test:room:1"}}`), `true`)
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.rooms) != 0 || len(c.presence) != 0 {
		t.Fatalf("still registered: %v %v", c.rooms, c.presence)
	}
}
