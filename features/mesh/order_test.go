package mesh

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfast/meshfast/internal/testutil"
)

// reply is a command reply as it arrives.
type reply struct {
	ID      int64           `json:"id"`
	Command string          `json:"command"`
	Payload json.RawMessage `json:"payload"`
}

// replies reads n command replies (frames with an id), in arrival order.
func (w *wire) replies(n int) []reply {
	w.t.Helper()
	out := make([]reply, 0, n)
	for len(out) < n {
		f := w.next()
		var r struct {
			ID *int64 `json:"id"`
			reply
		}
		if err := json.Unmarshal([]byte(f), &r); err != nil {
			w.t.Fatalf("reply %d: %v in %s", len(out)+1, err, f)
		}
		if r.ID == nil {
			continue // a push
		}
		r.reply.ID = *r.ID
		out = append(out, r.reply)
	}
	return out
}

// inOrder checks that replies answer ids first, first+1, ... with payload want.
func inOrder(t *testing.T, rs []reply, first int64, want string) {
	t.Helper()
	for i, r := range rs {
		if r.ID != first+int64(i) {
			t.Fatalf("reply %d is for id %d, want %d (replies must keep the order of the commands)", i, r.ID, first+int64(i))
		}
		if string(r.Payload) != want {
			t.Fatalf("reply to id %d: %s, want %s", r.ID, r.Payload, want)
		}
	}
}

// 1,000 publishes pipelined on one connection reach a subscriber in the
// order sent and are answered in that order, without an error.
func TestPipelinedPublishesInOrder(t *testing.T) {
	t.Parallel()
	const n = 1000
	s := startServer(t, Options{})
	s.ExposeChannel("order", nil)
	s.Expose("publish", func(c *Context) (any, error) {
		var req struct {
			Channel string `json:"channel"`
			Message string `json:"message"`
		}
		if err := c.Bind(&req); err != nil {
			return nil, err
		}
		if err := s.PublishToChannel(c, req.Channel, req.Message, 0); err != nil {
			return nil, err
		}
		return true, nil
	})
	sub, pub := dialWire(t, s), dialWire(t, s)
	sub.expect(`{"id":1,"command":"mesh/subscribe-channel","payload":{"channel":"order"}}`,
		`{"id":1,"command":"mesh/subscribe-channel","payload":{"success":true,"history":[]}}`)
	for i := 1; i <= n; i++ {
		pub.send(fmt.Sprintf(`{"id":%d,"command":"publish","payload":{"channel":"order","message":"%d"}}`, i, i))
	}
	inOrder(t, pub.replies(n), 1, "true")
	for i := 1; i <= n; i++ {
		want := fmt.Sprintf(`{"command":"mesh/subscription-message","payload":{"channel":"order","message":"%d"}}`, i)
		if got := sub.next(); got != want {
			t.Fatalf("message %d: got %s", i, got)
		}
	}
}

// join/leave pipelined on 100 rooms leaves the connection in none of them;
// leave/join leaves it in all of them, receiving their broadcasts.
func TestPipelinedJoinLeave(t *testing.T) {
	t.Parallel()
	const rooms = 100
	s := startServer(t, Options{})
	w := dialWire(t, s)
	pair := func(first, second string, id int) {
		for i := range rooms {
			w.send(fmt.Sprintf(`{"id":%d,"command":"mesh/%s","payload":{"roomName":"r%d"}}`, id+2*i, first, i))
			w.send(fmt.Sprintf(`{"id":%d,"command":"mesh/%s","payload":{"roomName":"r%d"}}`, id+2*i+1, second, i))
		}
		rs := w.replies(2 * rooms)
		for i, r := range rs {
			if r.ID != int64(id+i) || !strings.Contains(string(r.Payload), `"success":true`) {
				t.Fatalf("%s/%s: reply %d is %d %s", first, second, i, r.ID, r.Payload)
			}
		}
	}
	pair("join-room", "leave-room", 1)
	in, err := s.ConnectionRooms(bg(), w.id)
	if err != nil || len(in) != 0 {
		t.Fatalf("after join/leave: in rooms %v (%v), want none", in, err)
	}
	if n := s.LocalTopics().Rooms; n != 0 {
		t.Fatalf("after join/leave: node subscribed to %d rooms, want 0", n)
	}
	for i := range rooms {
		if err := s.BroadcastRoom(bg(), fmt.Sprintf("r%d", i), "hello", i); err != nil {
			t.Fatal(err)
		}
	}
	w.silent(50 * time.Millisecond)

	pair("leave-room", "join-room", 1000)
	in, err = s.ConnectionRooms(bg(), w.id)
	if err != nil || len(in) != rooms {
		t.Fatalf("after leave/join: in %d rooms (%v), want %d", len(in), err, rooms)
	}
	if n := s.LocalTopics().Rooms; n != rooms {
		t.Fatalf("after leave/join: node subscribed to %d rooms, want %d", n, rooms)
	}
	for i := range rooms {
		if err := s.BroadcastRoom(bg(), fmt.Sprintf("r%d", i), "hello", i); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for range rooms {
		got[w.next()] = true
	}
	for i := range rooms {
		if f := fmt.Sprintf(`{"command":"hello","payload":%d}`, i); !got[f] {
			t.Fatalf("room r%d's broadcast did not arrive", i)
		}
	}
}

// A connection that floods commands while its handler is slow is paused,
// not refused: its queue never holds more than the bound, it gets every
// reply in order once the handler moves, and other connections keep being
// served while it is stuck.
func TestFloodIsSlowedNotRefused(t *testing.T) {
	t.Parallel()
	const bound, n = 8, 400 // n is past the old per-connection limit of 256
	s := startServer(t, Options{MaxQueuedCommands: bound})
	gate := make(chan struct{})
	var ran atomic.Int32
	s.Expose("slow", func(c *Context) (any, error) {
		<-gate
		ran.Add(1)
		return "done", nil
	})
	s.Expose("echo", func(c *Context) (any, error) { return c.Payload, nil })
	flood, other := dialWire(t, s), dialWire(t, s)
	for i := 1; i <= n; i++ {
		flood.send(fmt.Sprintf(`{"id":%d,"command":"slow"}`, i))
	}
	c := s.Connection(flood.id)
	state := func() (pending, peak int32, paused bool) {
		a := c.active.Load()
		if a == nil {
			return 0, 0, false
		}
		a.qmu.Lock()
		defer a.qmu.Unlock()
		return a.pending, a.peak, a.paused
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if pending, _, paused := state(); pending != bound || !paused {
			return fmt.Errorf("flooding connection: %d queued, paused %v; want %d and paused", pending, paused, bound)
		}
		return nil
	})
	// The flood is stuck behind its handler; another connection is not.
	for i := 1; i <= 20; i++ {
		other.expect(fmt.Sprintf(`{"id":%d,"command":"echo","payload":%d}`, i, i), fmt.Sprintf(`{"id":%d,"command":"echo","payload":%d}`, i, i))
	}
	if r := ran.Load(); r != 0 {
		t.Fatalf("%d slow commands finished while the gate was shut", r)
	}
	close(gate)
	inOrder(t, flood.replies(n), 1, `"done"`)
	if _, peak, _ := state(); peak > bound {
		t.Fatalf("the queue held %d commands, over its bound of %d", peak, bound)
	}
	if pending, _, paused := state(); pending != 0 || paused {
		t.Fatalf("after the flood: %d queued, paused %v", pending, paused)
	}
}

// While its reading is paused for its queue, a connection's pongs wait
// unread behind its commands: it must not be closed for missing them.
func TestPausedConnectionKeepsItsPongs(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{MaxQueuedCommands: 2, PingInterval: 20 * time.Millisecond, MaxMissedPongs: 1})
	gate := make(chan struct{})
	s.Expose("slow", func(c *Context) (any, error) { <-gate; return "done", nil })
	w := dialWire(t, s)
	w.skip = map[string]bool{"latency": true, "latency:request": true}
	const n = 10
	for i := 1; i <= n; i++ {
		w.send(fmt.Sprintf(`{"id":%d,"command":"slow"}`, i))
	}
	// Answer pings as a live client does; the pongs wait behind the queue.
	// Unpaused, a connection is closed at its second unanswered ping.
	for pings := 0; pings < 5; {
		f := w.next()
		if f != `{"command":"ping","payload":{}}` {
			t.Fatalf("while paused: %s", f)
		}
		pings++
		w.send(`{"command":"pong","payload":{}}`)
	}
	close(gate)
	var got []reply
	for len(got) < n {
		f := w.next()
		if f == `{"command":"ping","payload":{}}` {
			w.send(`{"command":"pong","payload":{}}`)
			continue
		}
		var r reply
		_ = json.Unmarshal([]byte(f), &r)
		got = append(got, r)
	}
	inOrder(t, got, 1, `"done"`)
}

// A command exposed with ExposeConcurrent does not wait its turn: a
// serial command sent after it is answered first while it is blocked.
func TestConcurrentCommandOvertakes(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	gate := make(chan struct{})
	s.ExposeConcurrent("report", func(c *Context) (any, error) { <-gate; return "report", nil })
	s.Expose("quick", func(c *Context) (any, error) { return "quick", nil })
	s.Expose("slow", func(c *Context) (any, error) { <-gate; return "slow", nil })
	w := dialWire(t, s)
	w.send(`{"id":1,"command":"report"}`)
	w.expect(`{"id":2,"command":"quick"}`, `{"id":2,"command":"quick","payload":"quick"}`)
	// a serial command waits for the one before it
	w.send(`{"id":3,"command":"slow"}`)
	w.send(`{"id":4,"command":"quick"}`)
	w.silent(30 * time.Millisecond)
	close(gate)
	got := map[int64]string{}
	var order []int64
	for _, r := range w.replies(3) {
		got[r.ID] = string(r.Payload)
		order = append(order, r.ID)
	}
	if got[1] != `"report"` || got[3] != `"slow"` || got[4] != `"quick"` {
		t.Fatalf("replies %v", got)
	}
	if i3, i4 := indexOf(order, 3), indexOf(order, 4); i3 > i4 {
		t.Fatalf("serial replies out of order: %v", order)
	}
}

func indexOf(xs []int64, x int64) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// Past MaxQueuedBytes of payload a connection is paused as past
// MaxQueuedCommands: its queue holds the bound plus one message at most.
func TestQueuedBytesBound(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{MaxQueuedBytes: 200})
	gate := make(chan struct{})
	s.Expose("slow", func(c *Context) (any, error) { <-gate; return len(c.Payload), nil })
	w := dialWire(t, s)
	payload := `"` + strings.Repeat("x", 98) + `"` // 100 bytes
	const n = 20
	for i := 1; i <= n; i++ {
		w.send(fmt.Sprintf(`{"id":%d,"command":"slow","payload":%s}`, i, payload))
	}
	c := s.Connection(w.id)
	state := func() (pending, peak int32, bytes int, paused bool) {
		a := c.active.Load()
		if a == nil {
			return 0, 0, 0, false
		}
		a.qmu.Lock()
		defer a.qmu.Unlock()
		return a.pending, a.peak, a.pendingBytes, a.paused
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if pending, _, bytes, paused := state(); pending != 2 || !paused {
			return fmt.Errorf("%d queued (%d bytes), paused %v; want 2 and paused", pending, bytes, paused)
		}
		return nil
	})
	close(gate)
	inOrder(t, w.replies(n), 1, "100")
	if _, peak, _, _ := state(); peak > 2 {
		t.Fatalf("the queue held %d commands of 104 bytes under a 200-byte bound", peak)
	}
}

// Past MaxInFlight commands across the server, a command is answered EBUSY
// at once but in its turn: the replies keep the order of the commands.
func TestServerBusyAnswersInOrder(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{MaxInFlight: 4})
	gate := make(chan struct{})
	s.Expose("slow", func(c *Context) (any, error) { <-gate; return "done", nil })
	w := dialWire(t, s)
	const n = 10
	for i := 1; i <= n; i++ {
		w.send(fmt.Sprintf(`{"id":%d,"command":"slow"}`, i))
	}
	w.silent(30 * time.Millisecond) // nothing overtakes the blocked first command
	close(gate)
	rs := w.replies(n)
	inOrder(t, rs[:4], 1, `"done"`)
	inOrder(t, rs[4:], 5, `{"error":"server busy","code":"EBUSY","name":"LimitError"}`)
	// Once the server has caught up, commands run again.
	w.expect(`{"id":11,"command":"slow"}`, `{"id":11,"command":"slow","payload":"done"}`)
}
