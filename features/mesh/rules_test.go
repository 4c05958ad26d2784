package mesh

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord/memory"
	"github.com/meshfast/meshfast/internal/testutil"
)

// Broadcasts reach every node: to all, to all but some, to chosen
// connections and to a room's members, with exclusions naming connections
// of either node. (Mesh's C-multi-1 has no counterpart of these.)
func TestBroadcastAcrossNodes(t *testing.T) {
	t.Parallel()
	co := memory.New(memory.Options{})
	t.Cleanup(func() { _ = co.Close() })
	sa := startServer(t, Options{Coordinator: co})
	sb := startServer(t, Options{Coordinator: co})
	a1, a2 := dialWire(t, sa), dialWire(t, sa)
	b1, b2 := dialWire(t, sb), dialWire(t, sb)
	all := []*wire{a1, a2, b1, b2}
	expectOnly := func(what, frame string, got ...*wire) {
		t.Helper()
		for _, w := range got {
			if f := w.next(); f != frame {
				t.Fatalf("%s: %s got %s, want %s", what, w.id, f, frame)
			}
		}
		for _, w := range all {
			if !slices.Contains(got, w) {
				w.silent(20 * time.Millisecond)
			}
		}
	}
	if err := sa.Broadcast(bg(), "hi", 1); err != nil {
		t.Fatal(err)
	}
	expectOnly("Broadcast", `{"command":"hi","payload":1}`, all...)

	if err := sa.BroadcastExclude(bg(), "hi", 2, []string{a1.id, b1.id}); err != nil {
		t.Fatal(err)
	}
	expectOnly("BroadcastExclude", `{"command":"hi","payload":2}`, a2, b2)

	if err := sb.Broadcast(bg(), "to", 3, a1.id, b2.id); err != nil {
		t.Fatal(err)
	}
	expectOnly("Broadcast to ids", `{"command":"to","payload":3}`, a1, b2)

	for _, w := range []*wire{a1, a2, b1} {
		if err := sa.AddToRoom(bg(), "r", w.id); err != nil {
			t.Fatal(err)
		}
	}
	// b1 joined from node A: wait until node B applied it, its loop
	// included. The connection's set holds the room before the loop does
	// (subscriptions.take), so wait for the task that applies the join,
	// in b1's queue, to have finished.
	testutil.Eventually(t, 5*time.Second, func() error {
		c := sb.Connection(b1.id)
		if sb.subs.holds(c, roomSource, "r") == nil {
			return fmt.Errorf("node B has not joined %s to the room", b1.id)
		}
		a := c.active.Load()
		a.qmu.Lock()
		busy := a.running
		a.qmu.Unlock()
		if busy {
			return fmt.Errorf("node B is still applying the join of %s", b1.id)
		}
		return nil
	})
	if err := sb.BroadcastRoomExclude(bg(), "r", "room", 4, []string{a2.id}); err != nil {
		t.Fatal(err)
	}
	expectOnly("BroadcastRoomExclude", `{"command":"room","payload":4}`, a1, b1)
}

// A name that matches both an exact exposure and a pattern is governed by
// the exact one's guard, whichever order they were registered in and
// whichever of the two refuses: for channels, readable and writable records.
func TestExactExposureWinsOverPattern(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	refuse := func(*Connection, string) bool { return false }
	allow := func(*Connection, string) bool { return true }
	s.ExposeChannelPattern(regexp.MustCompile(`^g:`), refuse)
	s.ExposeChannel("g:open", allow)
	s.ExposeChannel("h:closed", refuse)
	s.ExposeChannelPattern(regexp.MustCompile(`^h:`), allow)
	s.ExposeRecordPattern(regexp.MustCompile(`^g:`), refuse)
	s.ExposeRecord("g:open", allow)
	s.ExposeRecord("h:closed", refuse)
	s.ExposeRecordPattern(regexp.MustCompile(`^h:`), allow)
	s.ExposeWritableRecordPattern(regexp.MustCompile(`^w:`), refuse)
	s.ExposeWritableRecord("w:open", allow)
	s.ExposeWritableRecord("v:closed", refuse)
	s.ExposeWritableRecordPattern(regexp.MustCompile(`^v:`), allow)
	w := dialWire(t, s)
	id := 0
	channel := func(name string, ok bool) {
		t.Helper()
		id++
		want := `{"success":false,"history":[]}`
		if ok {
			want = `{"success":true,"history":[]}`
		}
		w.expect(fmt.Sprintf(`{"id":%d,"command":"mesh/subscribe-channel","payload":{"channel":%q}}`, id, name),
			fmt.Sprintf(`{"id":%d,"command":"mesh/subscribe-channel","payload":%s}`, id, want))
	}
	record := func(name string, ok bool) {
		t.Helper()
		id++
		want := fmt.Sprintf(`{"id":%d,`+refusedSubscribe, id)
		if ok {
			want = subscribeReply(id, "null", 0)
		}
		w.expect(fmt.Sprintf(`{"id":%d,"command":"mesh/subscribe-record","payload":{"recordId":%q}}`, id, name), want)
	}
	write := func(name string, ok bool) {
		t.Helper()
		id++
		want := fmt.Sprintf(`{"id":%d,"command":"mesh/publish-record-update","payload":{"error":"Record \"%s\" is not writable by this connection.","code":"ESERVER","name":"Error"}}`, id, name)
		if ok {
			want = fmt.Sprintf(`{"id":%d,"command":"mesh/publish-record-update","payload":{"success":true}}`, id)
		}
		w.send(fmt.Sprintf(`{"id":%d,"command":"mesh/publish-record-update","payload":{"recordId":%q,"newValue":1}}`, id, name))
		for {
			f := w.next()
			if f[:6] == `{"id":` {
				if f != want {
					t.Fatalf("write %s: got %s, want %s", name, f, want)
				}
				return
			}
		}
	}
	channel("g:open", true)
	channel("g:other", false)
	channel("h:closed", false)
	channel("h:other", true)
	record("g:open", true)
	record("g:other", false)
	record("h:closed", false)
	record("h:other", true)
	write("w:open", true)
	write("w:other", false)
	write("v:closed", false)
	write("v:other", true)
}

// Global middleware runs before a command's own, and what it sets with
// Context.Set is visible to the command's middleware and handler.
func TestGlobalMiddlewareFirst(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	var mu sync.Mutex
	var seen []string
	note := func(s string) { mu.Lock(); seen = append(seen, s); mu.Unlock() }
	s.Use(func(c *Context) error { note("global"); c.Set("user", "ada"); return nil })
	s.Expose("who", func(c *Context) (any, error) {
		u, _ := c.Get("user")
		r, _ := c.Get("role")
		note(fmt.Sprint("handler ", u, " ", r))
		return u, nil
	}, func(c *Context) error {
		u, ok := c.Get("user")
		note(fmt.Sprint("own ", u, " ", ok))
		c.Set("role", "admin")
		return nil
	})
	w := dialWire(t, s)
	w.expect(`{"id":1,"command":"who"}`, `{"id":1,"command":"who","payload":"ada"}`)
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"global", "own ada true", "handler ada admin"}; !slices.Equal(seen, want) {
		t.Fatalf("ran %q, want %q", seen, want)
	}
}

// fatalRecorder is a testing.TB whose Fatalf only records.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Helper()               {}
func (f *fatalRecorder) Fatalf(string, ...any) { f.failed = true }

// jsonEqual, which the conformance tests compare values with, tells types
// apart and refuses an expected value that is not JSON.
func TestJSONEqualComparesTypes(t *testing.T) {
	for _, tc := range []struct {
		got, want string
		equal     bool
	}{
		{`{"id":1,"b":[true,null]}`, `{"b":[true,null],"id":1}`, true},
		{`{"n":1}`, `{"n":1.0}`, true},
		{`{"id":1}`, `{"id":"1"}`, false},
		{`true`, `"true"`, false},
		{`null`, `"null"`, false},
		{`[1,2]`, `[2,1]`, false},
		{`{"a":1}`, `{"a":1,"b":null}`, false},
		{`{"id":1}`, `{"id":1`, false}, // a bad expected value
		{`{"id":1`, `{"id":1}`, false},
	} {
		r := &fatalRecorder{TB: t}
		jsonEqual(r, json.RawMessage(tc.got), tc.want)
		if r.failed == tc.equal {
			t.Errorf("jsonEqual(%s, %s) passed %v, want %v", tc.got, tc.want, !r.failed, tc.equal)
		}
	}
}
