package mesh

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord/memory"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/internal/testutil"
	"github.com/meshfast/meshfast/protocol"
	"github.com/meshfast/meshfast/protocol/jsonx"
)

// recordServer is the setup of Mesh's record-subscription.test.ts.
func recordServer(t testing.TB) *Server {
	s := startServer(t, Options{})
	s.ExposeRecordPattern(regexp.MustCompile(`^test:record:.*`), nil)
	s.ExposeRecord("guarded:record", nil)
	s.ExposeWritableRecordPattern(regexp.MustCompile(`^writable:record:.*`), nil)
	s.ExposeWritableRecord("guarded:writable", nil)
	return s
}

func publishRecord(t testing.TB, s *Server, id, value string) {
	t.Helper()
	if err := s.PublishRecordUpdate(bg(), id, json.RawMessage(value)); err != nil {
		t.Fatal(err)
	}
}

// recordPush checks the next frame.
func (w *wire) recordPush(want string) {
	w.t.Helper()
	if got := w.next(); got != want {
		w.t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// recordFrames reads n frames and returns them sorted, for frames whose
// order is not fixed (a writer's reply and its own update).
func (w *wire) recordFrames(n int) []string {
	w.t.Helper()
	out := make([]string, n)
	for i := range out {
		out[i] = w.next()
	}
	slices.Sort(out)
	return out
}

func fullPush(id, full string, version int) string {
	return `{"command":"mesh/record-update","payload":{"recordId":"` + id + `","full":` + full + `,"version":` + strconv.Itoa(version) + `}}`
}

func patchPush(id, patch string, version int) string {
	return `{"command":"mesh/record-update","payload":{"recordId":"` + id + `","patch":` + patch + `,"version":` + strconv.Itoa(version) + `}}`
}

func subscribeReply(id int, record string, version int) string {
	return `{"id":` + strconv.Itoa(id) + `,"command":"mesh/subscribe-record","payload":{"success":true,"record":` + record + `,"version":` + strconv.Itoa(version) + `}}`
}

const refusedSubscribe = `"command":"mesh/subscribe-record","payload":{"success":false}}`

func checkRecord(t testing.TB, s *Server, id, want string, version int64) {
	t.Helper()
	v, ver, err := s.Record(bg(), id)
	if err != nil {
		t.Fatal(err)
	}
	if want == "" && v != nil || want != "" && string(v) != want || ver != version {
		t.Fatalf("record %q = %s v%d, want %s v%d", id, v, ver, want, version)
	}
}

// C-record-1, C-record-2, C-record-3
func TestRecordSubscribe(t *testing.T) {
	t.Parallel()
	s := recordServer(t)
	publishRecord(t, s, "test:record:1", `{"count":0,"name":"initial"}`)
	a, b := dialWire(t, s), dialWire(t, s)
	a.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:1"}}`,
		subscribeReply(1, `{"count":0,"name":"initial"}`, 1))
	// Mesh's server sends only success:false; its client fills in
	// record:null and version:0.
	a.expect(`{"id":2,"command":"mesh/subscribe-record","payload":{"recordId":"unexposed:record"}}`, `{"id":2,`+refusedSubscribe)
	publishRecord(t, s, "unexposed:record", `{"x":1}`)
	a.silent(50 * time.Millisecond)

	var mu sync.Mutex // guards run on command goroutines
	var guarded []string
	first := a.id // the first local connection
	s.ExposeRecord("guarded:record", func(c *Connection, id string) bool {
		mu.Lock()
		defer mu.Unlock()
		guarded = append(guarded, id)
		return c.ID() == first
	})
	a.expect(`{"id":3,"command":"mesh/subscribe-record","payload":{"recordId":"guarded:record"}}`, subscribeReply(3, `null`, 0))
	b.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"guarded:record"}}`, `{"id":1,`+refusedSubscribe)
	mu.Lock()
	if !slices.Equal(guarded, []string{"guarded:record", "guarded:record"}) {
		t.Fatalf("guard calls %v", guarded)
	}
	mu.Unlock()
	// A RegExp exposure's guard gets the concrete id.
	var got atomic.Value
	s.ExposeRecordPattern(regexp.MustCompile(`^test:record:.*`), func(c *Connection, id string) bool { got.Store(id); return false })
	b.expect(`{"id":2,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:9"}}`, `{"id":2,`+refusedSubscribe)
	if got.Load() != "test:record:9" {
		t.Fatalf("guard got %v", got.Load())
	}
}

// C-record-4, C-record-7
func TestRecordFullModeAndUnsubscribe(t *testing.T) {
	t.Parallel()
	s := recordServer(t)
	w := dialWire(t, s)
	const id = "test:record:full"
	w.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:full"}}`, subscribeReply(1, `null`, 0))
	publishRecord(t, s, id, `{"count":1}`)
	w.recordPush(fullPush(id, `{"count":1}`, 1))
	publishRecord(t, s, id, `{"count":2,"name":"hello"}`)
	w.recordPush(`{"command":"mesh/record-update","payload":{"recordId":"test:record:full","full":{"count":2,"name":"hello"},"version":2}}`)

	w.expect(`{"id":2,"command":"mesh/unsubscribe-record","payload":{"recordId":"test:record:full"}}`,
		`{"id":2,"command":"mesh/unsubscribe-record","payload":true}`)
	publishRecord(t, s, id, `{"count":3}`)
	w.silent(50 * time.Millisecond)
	w.expect(`{"id":3,"command":"mesh/unsubscribe-record","payload":{"recordId":"test:record:full"}}`,
		`{"id":3,"command":"mesh/unsubscribe-record","payload":false}`)
	w.expect(`{"id":4,"command":"mesh/unsubscribe-record","payload":{"recordId":"never:subscribed"}}`,
		`{"id":4,"command":"mesh/unsubscribe-record","payload":false}`)
	checkRecord(t, s, id, `{"count":3}`, 3)
}

// C-record-5, C-record-6
func TestRecordPatchMode(t *testing.T) {
	t.Parallel()
	s := recordServer(t)
	full, patch := dialWire(t, s), dialWire(t, s)
	const id = "test:record:patch"
	patch.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:patch","mode":"patch"}}`, subscribeReply(1, `null`, 0))
	full.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:patch","mode":"full"}}`, subscribeReply(1, `null`, 0))
	publishRecord(t, s, id, `{"count":1}`)
	patch.recordPush(`{"command":"mesh/record-update","payload":{"recordId":"test:record:patch","patch":[{"op":"add","path":"/count","value":1}],"version":1}}`)
	full.recordPush(fullPush(id, `{"count":1}`, 1))
	publishRecord(t, s, id, `{"count":1,"name":"added"}`)
	patch.recordPush(patchPush(id, `[{"op":"add","path":"/name","value":"added"}]`, 2))
	full.recordPush(fullPush(id, `{"count":1,"name":"added"}`, 2))
	publishRecord(t, s, id, `{"name":"added"}`)
	patch.recordPush(patchPush(id, `[{"op":"remove","path":"/count"}]`, 3))
	full.recordPush(fullPush(id, `{"name":"added"}`, 3))

	const multi = "test:record:multi"
	full.expect(`{"id":2,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:multi"}}`, subscribeReply(2, `null`, 0))
	patch.expect(`{"id":2,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:multi","mode":"patch"}}`, subscribeReply(2, `null`, 0))
	publishRecord(t, s, multi, `{"value":"a"}`)
	publishRecord(t, s, multi, `{"value":"b"}`)
	full.recordPush(fullPush(multi, `{"value":"a"}`, 1))
	full.recordPush(fullPush(multi, `{"value":"b"}`, 2))
	patch.recordPush(patchPush(multi, `[{"op":"add","path":"/value","value":"a"}]`, 1))
	patch.recordPush(patchPush(multi, `[{"op":"replace","path":"/value","value":"b"}]`, 2))
	full.silent(30 * time.Millisecond)
	patch.silent(10 * time.Millisecond)
}

// A connection has one mode per record: subscribing again switches it, and
// never doubles the pushes.
func TestRecordModeSwitch(t *testing.T) {
	t.Parallel()
	s := recordServer(t)
	w := dialWire(t, s)
	const id = "test:record:switch"
	w.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:switch"}}`, subscribeReply(1, `null`, 0))
	w.expect(`{"id":2,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:switch"}}`, subscribeReply(2, `null`, 0))
	publishRecord(t, s, id, `{"a":1}`)
	w.recordPush(fullPush(id, `{"a":1}`, 1))
	w.silent(30 * time.Millisecond)
	w.expect(`{"id":3,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:switch","mode":"patch"}}`, subscribeReply(3, `{"a":1}`, 1))
	publishRecord(t, s, id, `{"a":2}`)
	w.recordPush(patchPush(id, `[{"op":"replace","path":"/a","value":2}]`, 2))
	w.silent(30 * time.Millisecond)
	w.expect(`{"id":4,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:switch","mode":"full"}}`, subscribeReply(4, `{"a":2}`, 2))
	publishRecord(t, s, id, `{"a":3}`)
	w.recordPush(fullPush(id, `{"a":3}`, 3))
	w.silent(30 * time.Millisecond)
	w.expect(`{"id":5,"command":"mesh/unsubscribe-record","payload":{"recordId":"test:record:switch"}}`,
		`{"id":5,"command":"mesh/unsubscribe-record","payload":true}`)
	publishRecord(t, s, id, `{"a":4}`)
	w.silent(50 * time.Millisecond)
}

// C-record-8: versions bumped without a push leave a gap the client sees;
// its recovery (unsubscribe, subscribe) gets the current value.
func TestRecordVersionGap(t *testing.T) {
	t.Parallel()
	s := recordServer(t)
	w := dialWire(t, s)
	const id = "test:record:desync"
	w.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:desync","mode":"patch"}}`, subscribeReply(1, `null`, 0))
	publishRecord(t, s, id, `{"count":1}`)
	w.recordPush(patchPush(id, `[{"op":"add","path":"/count","value":1}]`, 1))
	for i, v := range []string{`{"count":2}`, `{"count":3}`} { // Mesh's recordManager.publishUpdate
		u, err := s.Coordinator().SetRecord(bg(), id, []byte(v))
		if err != nil || u.Version != int64(i+2) {
			t.Fatalf("SetRecord: %+v %v", u, err)
		}
	}
	publishRecord(t, s, id, `{"count":4}`)
	w.recordPush(patchPush(id, `[{"op":"replace","path":"/count","value":4}]`, 4))
	w.expect(`{"id":2,"command":"mesh/unsubscribe-record","payload":{"recordId":"test:record:desync"}}`,
		`{"id":2,"command":"mesh/unsubscribe-record","payload":true}`)
	w.expect(`{"id":3,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:desync","mode":"patch"}}`, subscribeReply(3, `{"count":4}`, 4))
}

// C-record-9 to C-record-13, and the writer getting its own update.
func TestRecordClientWrites(t *testing.T) {
	t.Parallel()
	s := recordServer(t)
	a, b := dialWire(t, s), dialWire(t, s)
	b.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"writable:record:1"}}`, subscribeReply(1, `null`, 0))
	a.expect(`{"id":1,"command":"mesh/publish-record-update","payload":{"recordId":"writable:record:1","newValue":{"value":"initial"}}}`,
		`{"id":1,"command":"mesh/publish-record-update","payload":{"success":true}}`)
	b.recordPush(fullPush("writable:record:1", `{"value":"initial"}`, 1))
	checkRecord(t, s, "writable:record:1", `{"value":"initial"}`, 1)

	// read-only and unexposed records refuse writes with an error reply
	a.expect(`{"id":2,"command":"mesh/publish-record-update","payload":{"recordId":"test:record:readonly","newValue":{"value":"attempt"}}}`,
		`{"id":2,"command":"mesh/publish-record-update","payload":{"error":"Record \"test:record:readonly\" is not writable by this connection.","code":"ESERVER","name":"Error"}}`)
	checkRecord(t, s, "test:record:readonly", "", 0)
	a.expect(`{"id":3,"command":"mesh/publish-record-update","payload":{"recordId":"not:exposed:at:all","newValue":{"value":"attempt"}}}`,
		`{"id":3,"command":"mesh/publish-record-update","payload":{"error":"Record \"not:exposed:at:all\" is not writable by this connection.","code":"ESERVER","name":"Error"}}`)
	checkRecord(t, s, "not:exposed:at:all", "", 0)

	// the write guard
	first := a.id // the first local connection
	s.ExposeWritableRecord("guarded:writable", func(c *Connection, id string) bool { return c.ID() == first })
	a.expect(`{"id":4,"command":"mesh/publish-record-update","payload":{"recordId":"guarded:writable","newValue":{"value":"from client 1"}}}`,
		`{"id":4,"command":"mesh/publish-record-update","payload":{"success":true}}`)
	b.expect(`{"id":2,"command":"mesh/publish-record-update","payload":{"recordId":"guarded:writable","newValue":{"value":"from client 2"}}}`,
		`{"id":2,"command":"mesh/publish-record-update","payload":{"error":"Record \"guarded:writable\" is not writable by this connection.","code":"ESERVER","name":"Error"}}`)
	checkRecord(t, s, "guarded:writable", `{"value":"from client 1"}`, 1)
	// writable implies readable, whatever the write guard says
	b.expect(`{"id":3,"command":"mesh/subscribe-record","payload":{"recordId":"guarded:writable"}}`, subscribeReply(3, `{"value":"from client 1"}`, 1))

	// propagation in patch mode; the writer is not subscribed and gets nothing
	const prop = "writable:record:propagate"
	b.expect(`{"id":4,"command":"mesh/subscribe-record","payload":{"recordId":"writable:record:propagate","mode":"patch"}}`, subscribeReply(4, `null`, 0))
	a.expect(`{"id":5,"command":"mesh/publish-record-update","payload":{"recordId":"writable:record:propagate","newValue":{"count":1}}}`,
		`{"id":5,"command":"mesh/publish-record-update","payload":{"success":true}}`)
	b.recordPush(patchPush(prop, `[{"op":"add","path":"/count","value":1}]`, 1))
	a.expect(`{"id":6,"command":"mesh/publish-record-update","payload":{"recordId":"writable:record:propagate","newValue":{ "count" : 1, "name" : "added" }}}`,
		`{"id":6,"command":"mesh/publish-record-update","payload":{"success":true}}`)
	b.recordPush(patchPush(prop, `[{"op":"add","path":"/name","value":"added"}]`, 2))
	a.silent(30 * time.Millisecond)

	// a subscribed writer gets its own update (reply and push in either order)
	a.expect(`{"id":7,"command":"mesh/subscribe-record","payload":{"recordId":"writable:record:propagate"}}`, subscribeReply(7, `{"count":1,"name":"added"}`, 2))
	a.send(`{"id":8,"command":"mesh/publish-record-update","payload":{"recordId":"writable:record:propagate","newValue":{"count":2}}}`)
	if got, want := a.recordFrames(2), []string{
		`{"command":"mesh/record-update","payload":{"recordId":"writable:record:propagate","full":{"count":2},"version":3}}`,
		`{"id":8,"command":"mesh/publish-record-update","payload":{"success":true}}`,
	}; !slices.Equal(got, want) {
		t.Fatalf("writer got %q", got)
	}
	b.recordPush(patchPush(prop, `[{"op":"remove","path":"/name"},{"op":"replace","path":"/count","value":2}]`, 3))

	// a write that changes nothing: success, no bump, no push
	a.expect(`{"id":9,"command":"mesh/publish-record-update","payload":{"recordId":"writable:record:propagate","newValue":{"count":2.0}}}`,
		`{"id":9,"command":"mesh/publish-record-update","payload":{"success":true}}`)
	a.silent(50 * time.Millisecond)
	b.silent(10 * time.Millisecond)
	checkRecord(t, s, prop, `{"count":2}`, 3)
}

// C-record-14: a record value may be a string.
func TestRecordPrimitiveValues(t *testing.T) {
	t.Parallel()
	s := recordServer(t)
	w, p := dialWire(t, s), dialWire(t, s)
	const id = "test:record:primitive"
	publishRecord(t, s, id, `"initial value"`)
	w.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:primitive"}}`, subscribeReply(1, `"initial value"`, 1))
	p.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:primitive","mode":"patch"}}`, subscribeReply(1, `"initial value"`, 1))
	if err := s.PublishRecordUpdate(bg(), id, "updated value"); err != nil {
		t.Fatal(err)
	}
	w.recordPush(fullPush(id, `"updated value"`, 2))
	// fast-json-patch would diff the strings character by character;
	// meshfast replaces the whole value.
	p.recordPush(patchPush(id, `[{"op":"replace","path":"","value":"updated value"}]`, 2))
	checkRecord(t, s, id, `"updated value"`, 2)
	// Go values are encoded as JSON
	if err := s.PublishRecordUpdate(bg(), id, map[string]any{"n": 1, "list": []int{1, 2}}); err != nil {
		t.Fatal(err)
	}
	w.recordPush(fullPush(id, `{"list":[1,2],"n":1}`, 3))
	p.recordPush(patchPush(id, `[{"op":"replace","path":"","value":{"list":[1,2],"n":1}}]`, 3))
	if err := s.PublishRecordUpdate(bg(), id, nil); err != nil {
		t.Fatal(err)
	}
	w.recordPush(fullPush(id, `null`, 4))
	p.recordPush(patchPush(id, `[{"op":"replace","path":"","value":null}]`, 4))
	// after null, the next patch is from {} as in Mesh (compare(old ?? {}, new))
	publishRecord(t, s, id, `{"a":[]}`)
	w.recordPush(fullPush(id, `{"a":[]}`, 5))
	p.recordPush(patchPush(id, `[{"op":"add","path":"/a","value":[]}]`, 5))
}

func TestRecordBadInput(t *testing.T) {
	t.Parallel()
	s := recordServer(t)
	s.ExposeRecord("panics", func(*Connection, string) bool { panic("guard bug") })
	s.ExposeWritableRecord("panics:writable", func(*Connection, string) bool { panic("guard bug") })
	w := dialWire(t, s)
	for i, p := range []string{
		``, `,"payload":null`, `,"payload":"test:record:1"`, `,"payload":{}`, `,"payload":{"recordId":5}`,
		`,"payload":{"recordId":""}`, `,"payload":{"recordId":"test:record:1","mode":"delta"}`,
		`,"payload":{"recordId":"test:record:1","mode":1}`, `,"payload":{"recordId":"panics"}`,
	} {
		w.expect(`{"id":`+strconv.Itoa(i)+`,"command":"mesh/subscribe-record"`+p+`}`, `{"id":`+strconv.Itoa(i)+`,`+refusedSubscribe)
		w.expect(`{"id":`+strconv.Itoa(i)+`,"command":"mesh/unsubscribe-record"`+p+`}`,
			`{"id":`+strconv.Itoa(i)+`,"command":"mesh/unsubscribe-record","payload":false}`)
	}
	// a panicking write guard refuses; the read side is still open (writable)
	w.expect(`{"id":20,"command":"mesh/publish-record-update","payload":{"recordId":"panics:writable","newValue":1}}`,
		`{"id":20,"command":"mesh/publish-record-update","payload":{"error":"Record \"panics:writable\" is not writable by this connection.","code":"ESERVER","name":"Error"}}`)
	w.expect(`{"id":21,"command":"mesh/publish-record-update","payload":{"recordId":5,"newValue":1}}`,
		`{"id":21,"command":"mesh/publish-record-update","payload":{"error":"Invalid payload: expected {\"recordId\": string, \"newValue\": any}","code":"ESERVER","name":"Error"}}`)
	w.expect(`{"id":22,"command":"mesh/publish-record-update","payload":"x"}`,
		`{"id":22,"command":"mesh/publish-record-update","payload":{"error":"Invalid payload: expected {\"recordId\": string, \"newValue\": any}","code":"ESERVER","name":"Error"}}`)
	w.expect(`{"id":23,"command":"mesh/publish-record-update"}`,
		`{"id":23,"command":"mesh/publish-record-update","payload":{"error":"Record \"\" is not writable by this connection.","code":"ESERVER","name":"Error"}}`)
	// no newValue means null, which a missing record already is: no change
	w.expect(`{"id":24,"command":"mesh/publish-record-update","payload":{"recordId":"writable:record:null"}}`,
		`{"id":24,"command":"mesh/publish-record-update","payload":{"success":true}}`)
	checkRecord(t, s, "writable:record:null", "", 0)

	// server API errors
	if err := s.PublishRecordUpdate(bg(), "test:record:x", json.RawMessage(`{"a":`)); !errors.Is(err, errRecordInvalidJSON) {
		t.Fatalf("invalid JSON: %v", err)
	}
	if err := s.PublishRecordUpdate(bg(), "test:record:x", json.RawMessage("\"\xff\"")); !errors.Is(err, errRecordInvalidUTF8) {
		t.Fatalf("invalid UTF-8: %v", err)
	}
	if err := s.PublishRecordUpdate(bg(), "", 1); !errors.Is(err, errEmptyRecordID) {
		t.Fatalf("empty id: %v", err)
	}
	if err := s.PublishRecordUpdate(bg(), "test:record:x", func() {}); err == nil {
		t.Fatal("a func encoded as JSON")
	}
	checkRecord(t, s, "test:record:x", "", 0)

	// global middleware guards the record commands like any other
	s.Use(func(c *Context) error {
		if c.Command == protocol.CmdSubscribeRecord {
			return errors.New("Access denied")
		}
		return nil
	})
	w.expect(`{"id":30,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:1"}}`,
		`{"id":30,"command":"mesh/subscribe-record","payload":{"error":"Access denied","code":"ESERVER","name":"Error"}}`)
	w.silent(20 * time.Millisecond)
}

// A large value goes through both modes and the subscribe reply; a client
// may write one up to the engine's message limit.
func TestRecordHugeValue(t *testing.T) {
	t.Parallel()
	s := recordServer(t)
	full, patch := dialWire(t, s), dialWire(t, s)
	const id = "writable:record:huge"
	full.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"writable:record:huge"}}`, subscribeReply(1, `null`, 0))
	patch.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"writable:record:huge","mode":"patch"}}`, subscribeReply(1, `null`, 0))
	blob := `"` + strings.Repeat("x", 2<<20) + `"`
	publishRecord(t, s, id, `{"blob":`+blob+`}`)
	full.recordPush(fullPush(id, `{"blob":`+blob+`}`, 1))
	// the patch would outweigh the value: patch mode gets the value (patchTooLarge)
	patch.recordPush(fullPush(id, `{"blob":`+blob+`}`, 1))
	w := dialWire(t, s)
	w.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"writable:record:huge"}}`, subscribeReply(1, `{"blob":`+blob+`}`, 1))

	big := `{"list":[` + strings.Repeat(`"abcdefgh",`, 50000) + `0]}`
	w.send(`{"id":2,"command":"mesh/publish-record-update","payload":{"recordId":"writable:record:huge","newValue":` + big + `}}`)
	if got := w.recordFrames(2); got[1] != `{"id":2,"command":"mesh/publish-record-update","payload":{"success":true}}` || got[0] != fullPush(id, big, 2) {
		t.Fatalf("big write: %.200q", got)
	}
	full.recordPush(fullPush(id, big, 2))
	patch.recordPush(fullPush(id, big, 2))
}

// C-record-15 to C-record-17 with two nodes on one coordinator: server and
// client writes reach subscribers on both, the writer included.
func TestRecordAcrossNodes(t *testing.T) {
	t.Parallel()
	co := memory.New(memory.Options{})
	t.Cleanup(func() { _ = co.Close() }) // after both servers
	var nodes [2]*Server
	for i := range nodes {
		nodes[i] = startServer(t, Options{Coordinator: co})
		nodes[i].ExposeRecordPattern(regexp.MustCompile(`^test:record:.*`), nil)
		nodes[i].ExposeWritableRecordPattern(regexp.MustCompile(`^writable:record:.*`), nil)
	}
	a, b := dialWire(t, nodes[0]), dialWire(t, nodes[1])
	const id = "test:record:multi-instance"
	for _, w := range []*wire{a, b} {
		w.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:multi-instance"}}`, subscribeReply(1, `null`, 0))
	}
	publishRecord(t, nodes[0], id, `{"value":"update1"}`)
	a.recordPush(fullPush(id, `{"value":"update1"}`, 1))
	b.recordPush(fullPush(id, `{"value":"update1"}`, 1))

	const wid = "writable:record:multi-instance"
	for _, w := range []*wire{a, b} {
		w.expect(`{"id":2,"command":"mesh/subscribe-record","payload":{"recordId":"writable:record:multi-instance"}}`, subscribeReply(2, `null`, 0))
	}
	a.send(`{"id":3,"command":"mesh/publish-record-update","payload":{"recordId":"writable:record:multi-instance","newValue":{"message":"hello from client A"}}}`)
	if got := a.recordFrames(2); !slices.Equal(got, []string{fullPush(wid, `{"message":"hello from client A"}`, 1),
		`{"id":3,"command":"mesh/publish-record-update","payload":{"success":true}}`}) {
		t.Fatalf("writer got %q", got)
	}
	b.recordPush(fullPush(wid, `{"message":"hello from client A"}`, 1))

	const pid = "writable:record:multi-patch"
	for _, w := range []*wire{a, b} {
		w.expect(`{"id":4,"command":"mesh/subscribe-record","payload":{"recordId":"writable:record:multi-patch","mode":"patch"}}`, subscribeReply(4, `null`, 0))
	}
	for i, step := range [][2]string{
		{`{"count":1}`, `[{"op":"add","path":"/count","value":1}]`},
		{`{"count":1,"name":"added"}`, `[{"op":"add","path":"/name","value":"added"}]`},
	} {
		n := strconv.Itoa(5 + i)
		a.send(`{"id":` + n + `,"command":"mesh/publish-record-update","payload":{"recordId":"writable:record:multi-patch","newValue":` + step[0] + `}}`)
		if got := a.recordFrames(2); !slices.Equal(got, []string{patchPush(pid, step[1], i+1),
			`{"id":` + n + `,"command":"mesh/publish-record-update","payload":{"success":true}}`}) {
			t.Fatalf("writer got %q", got)
		}
		b.recordPush(patchPush(pid, step[1], i+1))
	}
	a.silent(30 * time.Millisecond)
	b.silent(10 * time.Millisecond)
}

// Closing a subscriber releases the node's coordinator subscription.
func TestRecordDisconnectCleanup(t *testing.T) {
	t.Parallel()
	s := recordServer(t)
	a, b := dialWire(t, s), dialWire(t, s)
	const id = "test:record:cleanup"
	a.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:cleanup","mode":"patch"}}`, subscribeReply(1, `null`, 0))
	b.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"test:record:cleanup"}}`, subscribeReply(1, `null`, 0))
	refs := func() int {
		s.subs.mu.Lock()
		defer s.subs.mu.Unlock()
		if ns := s.subs.node[subKey{recordSource, id}]; ns != nil {
			return ns.refs
		}
		return 0
	}
	if refs() != 2 {
		t.Fatalf("refs %d", refs())
	}
	a.c.CloseNow()
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := refs(); n != 1 {
			return fmt.Errorf("refs %d", n)
		}
		return nil
	})
	publishRecord(t, s, id, `{"still":"here"}`)
	b.recordPush(fullPush(id, `{"still":"here"}`, 1))
	b.expect(`{"id":2,"command":"mesh/unsubscribe-record","payload":{"recordId":"test:record:cleanup"}}`,
		`{"id":2,"command":"mesh/unsubscribe-record","payload":true}`)
	if n := refs(); n != 0 {
		t.Fatalf("refs %d after the last unsubscribe", n)
	}
}

// TestRecordPatchProperty writes random sequences of values. A patch-mode
// subscriber that applies every patch to the first full value (null read as
// {}, as Mesh's patches assume) always holds the server's value at the
// pushed version; versions go up by one per real change; no-op writes push
// nothing (a stray push would show up as a version mismatch).
func TestRecordPatchProperty(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	s.ExposeRecordPattern(regexp.MustCompile(`.*`), nil)
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 3 {
		id := "prop:" + strconv.Itoa(round)
		p, f := dialWire(t, s), dialWire(t, s)
		p.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"`+id+`","mode":"patch"}}`, subscribeReply(1, `null`, 0))
		f.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"`+id+`"}}`, subscribeReply(1, `null`, 0))
		doc := []byte("null")
		cur := []byte("null")
		version := 0
		for step := range 150 {
			var next []byte
			switch k := r.IntN(10); {
			case k == 0:
				next = respace(cur) // the same value, written differently
			case k < 4:
				next = randomValue(r, 4)
			default:
				next = mutateValue(r, cur, 4)
			}
			publishRecord(t, s, id, string(next))
			if eq, _ := jsonx.Equal(cur, next); eq {
				continue
			}
			cur, version = next, version+1
			var up protocol.RecordUpdate
			if err := json.Unmarshal(recordPayload(t, p.next()), &up); err != nil {
				t.Fatal(err)
			}
			if up.Version != int64(version) || up.Patch == nil || up.Full != nil {
				t.Fatalf("round %d step %d: patch push %+v, want version %d", round, step, up, version)
			}
			if string(doc) == "null" {
				doc = []byte("{}")
			}
			var err error
			if doc, err = jsonx.Apply(doc, up.Patch); err != nil {
				t.Fatalf("round %d step %d: apply %s: %v", round, step, up.Patch, err)
			}
			if eq, _ := jsonx.Equal(doc, cur); !eq {
				t.Fatalf("round %d step %d: patched %s, server %s (patch %s)", round, step, doc, cur, up.Patch)
			}
			var fu protocol.RecordUpdate
			if err := json.Unmarshal(recordPayload(t, f.next()), &fu); err != nil {
				t.Fatal(err)
			}
			if fu.Version != int64(version) || string(fu.Full) != string(mustCompact(t, cur)) {
				t.Fatalf("round %d step %d: full push %+v, want %s v%d", round, step, fu, cur, version)
			}
		}
		p.silent(30 * time.Millisecond)
		f.silent(10 * time.Millisecond)
		v, ver, err := s.Record(bg(), id)
		if eq, _ := jsonx.Equal(v, cur); err != nil || !eq || ver != int64(version) {
			t.Fatalf("round %d: server has %s v%d, want %s v%d", round, v, ver, cur, version)
		}
	}
}

func recordPayload(t testing.TB, frame string) []byte {
	t.Helper()
	var m struct {
		Command string
		Payload json.RawMessage
	}
	if err := json.Unmarshal([]byte(frame), &m); err != nil || m.Command != protocol.CmdRecordUpdate {
		t.Fatalf("not a record update: %s", frame)
	}
	return m.Payload
}

func mustCompact(t testing.TB, v []byte) []byte {
	raw, err := recordJSON(json.RawMessage(v))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// respace writes the same JSON value with extra whitespace.
func respace(v []byte) []byte {
	var x any
	_ = json.Unmarshal(v, &x)
	b, _ := json.MarshalIndent(x, " ", "  ")
	return b
}

var recordKeys = []string{"a", "b", "count", "name", "0", "1", "10", "~x", "a/b", "", "é"}

func randomValue(r *rand.Rand, depth int) []byte {
	var x any
	switch k := r.IntN(9); {
	case k == 0:
		x = nil
	case k == 1:
		x = r.IntN(2) == 0
	case k == 2:
		x = r.IntN(100)
	case k == 3:
		x = float64(r.IntN(1000)) / 4
	case k == 4:
		x = []string{"x", "hello", "", "line\nbreak", "quote\"", "ü"}[r.IntN(6)]
	case depth == 0:
		x = "leaf"
	case k < 7:
		m := map[string]json.RawMessage{}
		for range r.IntN(5) {
			m[recordKeys[r.IntN(len(recordKeys))]] = randomValue(r, depth-1)
		}
		x = m
	default:
		var a []json.RawMessage
		for range r.IntN(5) {
			a = append(a, randomValue(r, depth-1))
		}
		if a == nil {
			a = []json.RawMessage{}
		}
		x = a
	}
	b, _ := json.Marshal(x)
	return b
}

// mutateValue changes, drops and adds a few members or elements of v.
func mutateValue(r *rand.Rand, v []byte, depth int) []byte {
	var m map[string]json.RawMessage
	var a []json.RawMessage
	change := func(e json.RawMessage) json.RawMessage {
		if r.IntN(3) == 0 {
			return randomValue(r, depth-1)
		}
		return mutateValue(r, e, depth-1)
	}
	switch {
	case depth > 0 && json.Unmarshal(v, &m) == nil && m != nil:
		for k, e := range m {
			switch r.IntN(5) {
			case 0:
				delete(m, k)
			case 1:
				m[k] = change(e)
			}
		}
		if r.IntN(2) == 0 {
			m[recordKeys[r.IntN(len(recordKeys))]] = randomValue(r, depth-1)
		}
		b, _ := json.Marshal(m)
		return b
	case depth > 0 && json.Unmarshal(v, &a) == nil && a != nil:
		var out []json.RawMessage
		for _, e := range a {
			switch r.IntN(5) {
			case 0:
			case 1:
				out = append(out, change(e))
			default:
				out = append(out, e)
			}
		}
		if r.IntN(2) == 0 {
			out = append(out, randomValue(r, depth-1))
		}
		if out == nil {
			out = []json.RawMessage{}
		}
		b, _ := json.Marshal(out)
		return b
	}
	if r.IntN(2) == 0 {
		return v
	}
	return randomValue(r, depth)
}

func TestRecordMessageEncoding(t *testing.T) {
	msg := appendRecordMessage(nil, "user:1", 42, []byte(`{"a":1}`))
	msg = append(msg, `[{"op":"add","path":"/a","value":1}]`...)
	id, v, full, patch, ok := parseRecordMessage(msg)
	if !ok || string(id) != "user:1" || v != 42 || string(full) != `{"a":1}` || string(patch) != `[{"op":"add","path":"/a","value":1}]` {
		t.Fatalf("round trip: %q %d %q %q %v", id, v, full, patch, ok)
	}
	for i := range len(msg) - len(patch) {
		if _, _, _, _, ok := parseRecordMessage(msg[:i]); ok {
			t.Fatalf("truncated message of %d bytes accepted", i)
		}
	}
	for _, bad := range []string{"", "X", "R\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "R\x01\x05ab"} {
		if _, _, _, _, ok := parseRecordMessage([]byte(bad)); ok {
			t.Fatalf("%q accepted", bad)
		}
	}
}

// raceEnabled reports whether the test binary was built with -race, where
// sync.Pool drops items at random and allocation counts mean nothing.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

// simRecordServer subscribes n simulated connections to id in patch mode
// (and one in full mode), on the engine's in-process simulator.
func simRecordServer(tb testing.TB, n int, id string) (*engine.Simulator, *Server) {
	sim, s := simServer(tb, 2, Options{PingInterval: -1, LatencyInterval: -1, AssignID: AssignIDNever})
	for i := 0; i <= n; i++ {
		c := sim.Open((*handler)(s)).Conn().Value().(*Connection)
		waitRegistered(tb, c)
		if _, err := s.subscribeRecord(bg(), c, id, i < n); err != nil {
			tb.Fatal(err)
		}
	}
	return sim, s
}

// TestRecordDeliveryAllocs: a node's delivery of one update (decode, two
// encodes, two engine publishes, the fan-out) allocates nothing, whatever
// the number of subscribers.
func TestRecordDeliveryAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("allocation counts are meaningless under -race")
	}
	sim, s := simRecordServer(t, 100, "alloc")
	msg := appendRecordMessage(nil, "alloc", 7, []byte(`{"count":2}`))
	msg = append(msg, `[{"op":"replace","path":"/count","value":2}]`...)
	h := s.recordUpdateHandler("alloc")
	before := sim.Engine().Stats().FramesWritten
	h("", msg) // warm the pools
	if got := sim.Engine().Stats().FramesWritten - before; got != 101 {
		t.Fatalf("%d frames written, want 101", got)
	}
	if n := testing.AllocsPerRun(200, func() { h("", msg) }); n != 0 {
		t.Fatalf("%.1f allocations per delivered update", n)
	}
}

// BenchmarkRecordFanout is one node's cost of one record update to N
// patch-mode subscribers (plus one full-mode), over the engine's simulated
// sockets: the message is decoded once, each push encoded once, and the
// engine queues the same bytes for every subscriber.
func BenchmarkRecordFanout(b *testing.B) {
	for _, subs := range []int{1, 1000, 10000} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			sim, s := simRecordServer(b, subs, "bench")
			msg := appendRecordMessage(nil, "bench", 7, []byte(`{"id":42,"name":"alice","online":false,"score":1295}`))
			msg = append(msg, `[{"op":"replace","path":"/score","value":1295},{"op":"replace","path":"/online","value":false}]`...)
			h := s.recordUpdateHandler("bench")
			start := sim.Engine().Stats().FramesWritten
			b.ReportAllocs()
			for b.Loop() {
				h("", msg)
			}
			if got := sim.Engine().Stats().FramesWritten - start; got < uint64(b.N*(subs+1)) {
				b.Fatalf("%d frames for %d updates", got, b.N)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(subs+1)), "ns/delivery")
		})
	}
}

// BenchmarkPublishRecordUpdate is the whole server path of one changing
// write: store and compare in the coordinator, one diff, one coordinator
// message, then the node's delivery to N patch-mode subscribers. The diff
// and the encoding happen once per update: allocs/op does not grow with N.
func BenchmarkPublishRecordUpdate(b *testing.B) {
	for _, subs := range []int{1, 1000} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			sim, s := simRecordServer(b, subs, "bench")
			vals := []json.RawMessage{
				json.RawMessage(`{"id":42,"name":"alice","online":true,"score":1280,"tags":["admin","beta"]}`),
				json.RawMessage(`{"id":42,"name":"alice","online":false,"score":1295,"tags":["admin","beta","pro"]}`),
			}
			want := sim.Engine().Stats().FramesWritten
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := s.PublishRecordUpdate(bg(), "bench", vals[i&1]); err != nil {
					b.Fatal(err)
				}
				i++
				want += uint64(subs + 1)
				for sim.Engine().Stats().FramesWritten < want {
					time.Sleep(time.Microsecond)
				}
			}
		})
	}
}

// A patch can be several times the value: a list replaced by its reverse,
// every key of an object changed. Patch-mode subscribers then get the
// value, as full-mode ones do, and neither is closed as a slow consumer for
// a frame past the engine's MaxPendingBytes that it never had to get.
func TestRecordPatchLargerThanValue(t *testing.T) {
	t.Parallel()
	var list, reversed strings.Builder
	list.WriteByte('[')
	reversed.WriteByte('[')
	const n = 110_000
	for i := range n {
		if i > 0 {
			list.WriteByte(',')
			reversed.WriteByte(',')
		}
		list.WriteString(strconv.Itoa(i))
		reversed.WriteString(strconv.Itoa(n - 1 - i))
	}
	list.WriteByte(']')
	reversed.WriteByte(']')
	var obj, changed strings.Builder
	obj.WriteByte('{')
	changed.WriteByte('{')
	for i := range 40_000 {
		if i > 0 {
			obj.WriteByte(',')
			changed.WriteByte(',')
		}
		fmt.Fprintf(&obj, `"k%05d":"v%07d"`, i, i)
		fmt.Fprintf(&changed, `"k%05d":"w%07d"`, i, i)
	}
	obj.WriteByte('}')
	changed.WriteByte('}')

	for _, tc := range []struct {
		name        string
		first, then string
		minPatch    int // what the patch would have been at least
	}{
		{"list reversed", list.String(), reversed.String(), engine.DefaultMaxPendingBytes},
		{"every key changed", obj.String(), changed.String(), 2 * len(changed.String())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			patch, err := jsonx.Diff([]byte(tc.first), []byte(tc.then))
			if err != nil || len(patch) < tc.minPatch {
				t.Fatalf("the case is not what it claims: patch of %d bytes for a value of %d (%v)", len(patch), len(tc.then), err)
			}
			s := recordServer(t)
			full, patchMode := dialWire(t, s), dialWire(t, s)
			id := "test:record:" + strings.ReplaceAll(tc.name, " ", "-")
			full.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"`+id+`"}}`, subscribeReply(1, `null`, 0))
			patchMode.expect(`{"id":1,"command":"mesh/subscribe-record","payload":{"recordId":"`+id+`","mode":"patch"}}`, subscribeReply(1, `null`, 0))
			publishRecord(t, s, id, tc.first)
			publishRecord(t, s, id, tc.then)
			for _, w := range []*wire{full, patchMode} {
				w.recordPush(fullPush(id, tc.first, 1))
				w.recordPush(fullPush(id, tc.then, 2))
				// still open, still served
				w.expect(`{"id":2,"command":"mesh/get-room-metadata","payload":{"roomName":"r"}}`,
					`{"id":2,"command":"mesh/get-room-metadata","payload":{"metadata":null}}`)
			}
		})
	}
}

// patchTooLarge's rule: the value when the patch outweighs it, past a
// floor under which Mesh's patch is kept.
func TestPatchTooLarge(t *testing.T) {
	for _, tc := range []struct {
		patch, value int
		want         bool
	}{
		{10, 5, false}, // a primitive replaced: Mesh's patch
		{minFullFallback, 10, false},
		{minFullFallback + 1, 10, true},
		{5000, 5000, false},
		{5001, 5000, true},
		{100, 5000, false},
	} {
		if got := patchTooLarge(tc.patch, tc.value); got != tc.want {
			t.Errorf("patchTooLarge(%d, %d) = %v", tc.patch, tc.value, got)
		}
	}
}
