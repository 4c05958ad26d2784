package client

import (
	"testing"
	"time"
)

// TestRecordPatchAfterNull: in patch mode a null value counts as {} before
// every patch, not only the first. Once an update sets the record to null,
// Mesh's server diffs the next value against {} (old ?? {}), so the patch
// after it is a list of adds to {}, which must apply without a resync.
func TestRecordPatchAfterNull(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{})
	id := "test:record:null"
	got := subscribeRecord(t, c, fc, id, RecordPatch, `{"success":true,"record":null,"version":0}`)
	push(fc, `{"recordId":"test:record:null","patch":[{"op":"add","path":"/count","value":1}],"version":1}`)
	push(fc, `{"recordId":"test:record:null","patch":[{"op":"replace","path":"","value":null}],"version":2}`)
	push(fc, `{"recordId":"test:record:null","patch":[{"op":"add","path":"/name","value":"back"}],"version":3}`)
	push(fc, `{"recordId":"test:record:null","patch":[{"op":"replace","path":"","value":null}],"version":4}`)
	push(fc, `{"recordId":"test:record:null","patch":[{"op":"add","path":"/again","value":true}],"version":5}`)
	u := got.wait(t, 6)
	checkUpdate(t, u[0], 0, `null`, "")
	checkUpdate(t, u[1], 1, `{"count":1}`, `[{"op":"add","path":"/count","value":1}]`)
	checkUpdate(t, u[2], 2, `null`, `[{"op":"replace","path":"","value":null}]`)
	checkUpdate(t, u[3], 3, `{"name":"back"}`, `[{"op":"add","path":"/name","value":"back"}]`)
	checkUpdate(t, u[4], 4, `null`, `[{"op":"replace","path":"","value":null}]`)
	checkUpdate(t, u[5], 5, `{"again":true}`, `[{"op":"add","path":"/again","value":true}]`)
	// no resync: the client sent nothing after its subscribe
	fc.quiet(t, 20*time.Millisecond)
	if n := got.len(); n != 6 {
		t.Fatalf("%d callback calls, want 6", n)
	}

	// The same from a snapshot that is null although written before
	// (version > 0): the first patch applies to {} as well.
	got2 := subscribeRecord(t, c, fc, "r2", RecordPatch, `{"success":true,"record":null,"version":7}`)
	push(fc, `{"recordId":"r2","patch":[{"op":"add","path":"/a","value":1}],"version":8}`)
	u = got2.wait(t, 2)
	checkUpdate(t, u[0], 7, `null`, "")
	checkUpdate(t, u[1], 8, `{"a":1}`, `[{"op":"add","path":"/a","value":1}]`)
	fc.quiet(t, 20*time.Millisecond)
}
