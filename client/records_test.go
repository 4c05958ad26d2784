package client

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/meshfast/meshfast/protocol"
	"github.com/meshfast/meshfast/protocol/jsonx"
)

// subscribeRecord subscribes through fc, answering with reply.
func subscribeRecord(t *testing.T, c *Client, fc *fakeConn, id string, mode RecordMode, reply string) *recorder[RecordUpdate] {
	t.Helper()
	var got recorder[RecordUpdate]
	ch := make(chan error, 1)
	go func() {
		_, err := c.SubscribeRecord(ctxT(t), id, mode, got.add)
		ch <- err
	}()
	fc.reply(fc.expect(t, protocol.CmdSubscribeRecord), reply)
	if err := waitErr(t, ch); err != nil {
		t.Fatal(err)
	}
	return &got
}

func checkUpdate(t *testing.T, u RecordUpdate, version int64, value, patch string) {
	t.Helper()
	if u.Version != version || !jsonSame(t, u.Value, value) || string(u.Patch) != patch {
		t.Fatalf("update {v%d %s patch %s}, want {v%d %s patch %s}", u.Version, u.Value, u.Patch, version, value, patch)
	}
}

// jsonSame compares two JSON texts as JavaScript compares the values
// (jsonx.Equal: members in any order, numbers by value, never 1 for "1").
// Either text not being JSON (a mistyped expectation included) fails the
// test.
func jsonSame(t *testing.T, a []byte, b string) bool {
	t.Helper()
	if len(a) == 0 || len(b) == 0 {
		t.Fatalf("empty JSON %q or %q", a, b)
	}
	eq, err := jsonx.Equal(a, []byte(b))
	if err != nil {
		t.Fatalf("comparing %s with %s: %v", a, b, err)
	}
	return eq
}

func push(fc *fakeConn, payload string) {
	fc.send(`{"command":"mesh/record-update","payload":` + payload + `}`)
}

func TestRecordFull(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{})
	id := "test:record:full"
	got := subscribeRecord(t, c, fc, id, "", `{"success":true,"record":null,"version":0}`)
	push(fc, `{"recordId":"test:record:full","full":{"count":1},"version":1}`)
	push(fc, `{"recordId":"other","full":{"x":1},"version":1}`)
	push(fc, `{"recordId":"test:record:full","full":{"count":2,"name":"hello"},"version":2}`)
	u := got.wait(t, 3)
	checkUpdate(t, u[0], 0, `null`, "")
	checkUpdate(t, u[1], 1, `{"count":1}`, "")
	checkUpdate(t, u[2], 2, `{"count":2,"name":"hello"}`, "")
	if u[0].RecordID != id {
		t.Fatalf("record id %q", u[0].RecordID)
	}

	// Primitive values work in full mode.
	got2 := subscribeRecord(t, c, fc, "test:record:primitive", RecordFull, `{"success":true,"record":"initial value","version":1}`)
	push(fc, `{"recordId":"test:record:primitive","full":"updated value","version":2}`)
	u = got2.wait(t, 2)
	checkUpdate(t, u[0], 1, `"initial value"`, "")
	checkUpdate(t, u[1], 2, `"updated value"`, "")

	// Unsubscribe stops delivery at once.
	done := async(func() error { _, err := c.UnsubscribeRecord(ctxT(t), id); return err })
	fc.reply(fc.expect(t, protocol.CmdUnsubscribeRecord), "true")
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
	push(fc, `{"recordId":"test:record:full","full":{"count":3},"version":3}`)
	var flushed recorder[int]
	c.On("flush", func(json.RawMessage) { flushed.add(1) })
	fc.send(`{"command":"flush"}`)
	flushed.wait(t, 1)
	if got.len() != 3 {
		t.Fatalf("update after unsubscribe: %d calls", got.len())
	}
}

func TestRecordRefused(t *testing.T) {
	s := newFakeServer(t, fakeOptions{respond: replies(map[string]string{protocol.CmdSubscribeRecord: `{"success":false}`})})
	c, fc := connected(t, s, Options{})
	var got recorder[RecordUpdate]
	r, err := c.SubscribeRecord(ctxT(t), "unexposed:record", "", got.add)
	if err != nil || r.Success || string(r.Record) != "null" || r.Version != 0 {
		t.Fatalf("%+v %v", r, err)
	}
	fc.expect(t, protocol.CmdSubscribeRecord)
	push(fc, `{"recordId":"unexposed:record","full":1,"version":1}`)
	var flushed recorder[int]
	c.On("flush", func(json.RawMessage) { flushed.add(1) })
	fc.send(`{"command":"flush"}`)
	flushed.wait(t, 1)
	if got.len() != 0 {
		t.Fatalf("callback called for a refused subscription: %+v", got.get())
	}
}

func TestRecordPatch(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{})
	got := subscribeRecord(t, c, fc, "test:record:patch", RecordPatch, `{"success":true,"record":null,"version":0}`)
	push(fc, `{"recordId":"test:record:patch","patch":[{"op":"add","path":"/count","value":1}],"version":1}`)
	push(fc, `{"recordId":"test:record:patch","patch":[{"op":"add","path":"/name","value":"added"}],"version":2}`)
	push(fc, `{"recordId":"test:record:patch","patch":[{"op":"remove","path":"/count"}],"version":3}`)
	u := got.wait(t, 4)
	checkUpdate(t, u[0], 0, `null`, "")
	checkUpdate(t, u[1], 1, `{"count":1}`, `[{"op":"add","path":"/count","value":1}]`)
	checkUpdate(t, u[2], 2, `{"count":1,"name":"added"}`, `[{"op":"add","path":"/name","value":"added"}]`)
	checkUpdate(t, u[3], 3, `{"name":"added"}`, `[{"op":"remove","path":"/count"}]`)
}

// TestRecordResync is C-record-8: a version gap in patch mode makes the
// client drop the update, unsubscribe, subscribe again and hand the
// callback the full value.
func TestRecordResync(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{})
	id := "test:record:desync"
	got := subscribeRecord(t, c, fc, id, RecordPatch, `{"success":true,"record":null,"version":0}`)
	push(fc, `{"recordId":"test:record:desync","patch":[{"op":"add","path":"/count","value":1}],"version":1}`)
	got.wait(t, 2)
	push(fc, `{"recordId":"test:record:desync","patch":[{"op":"replace","path":"/count","value":4}],"version":4}`)
	fc.reply(fc.expectRaw(t, `{"id":%d,"command":"mesh/unsubscribe-record","payload":{"recordId":"test:record:desync"}}`), "true")
	sub := fc.expectRaw(t, `{"id":%d,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:desync","mode":"patch"}}`)
	// Updates that arrive before the snapshot are held, then replayed
	// against it: v4 is in the snapshot, v5 follows it.
	push(fc, `{"recordId":"test:record:desync","patch":[{"op":"replace","path":"/count","value":4}],"version":4}`)
	push(fc, `{"recordId":"test:record:desync","patch":[{"op":"add","path":"/x","value":true}],"version":5}`)
	fc.reply(sub, `{"success":true,"record":{"count":4},"version":4}`)
	push(fc, `{"recordId":"test:record:desync","patch":[{"op":"remove","path":"/x"}],"version":6}`)
	u := got.wait(t, 5)
	checkUpdate(t, u[0], 0, `null`, "")
	checkUpdate(t, u[1], 1, `{"count":1}`, `[{"op":"add","path":"/count","value":1}]`)
	checkUpdate(t, u[2], 4, `{"count":4}`, "")
	checkUpdate(t, u[3], 5, `{"count":4,"x":true}`, `[{"op":"add","path":"/x","value":true}]`)
	checkUpdate(t, u[4], 6, `{"count":4}`, `[{"op":"remove","path":"/x"}]`)
	fc.quiet(t, 20*time.Millisecond)
}

// A patch that does not apply to the local copy also resyncs.
func TestRecordBadPatchResyncs(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{})
	got := subscribeRecord(t, c, fc, "r", RecordPatch, `{"success":true,"record":{"a":1},"version":1}`)
	push(fc, `{"recordId":"r","patch":[{"op":"remove","path":"/missing"}],"version":2}`)
	fc.reply(fc.expect(t, protocol.CmdUnsubscribeRecord), "true")
	fc.reply(fc.expect(t, protocol.CmdSubscribeRecord), `{"success":true,"record":{"b":2},"version":2}`)
	u := got.wait(t, 2)
	checkUpdate(t, u[0], 1, `{"a":1}`, "")
	checkUpdate(t, u[1], 2, `{"b":2}`, "")
}
