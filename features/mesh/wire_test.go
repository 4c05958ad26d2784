package mesh

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/meshfast/meshfast/coord/memory"
	"github.com/meshfast/meshfast/internal/testutil"
	"github.com/meshfast/meshfast/protocol"
)

func TestCommandReplies(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	s.Expose("echo", func(c *Context) (any, error) { return "echo: " + unquote(c.Payload), nil })
	s.Expose("raw", func(c *Context) (any, error) { return c.Payload, nil })
	s.Expose("nothing", func(c *Context) (any, error) { return nil, nil })
	s.Expose("throws-error", func(c *Context) (any, error) { return nil, errors.New("This is a test error") })
	s.Expose("code-error", func(c *Context) (any, error) {
		return nil, protocol.NewCodeError("Not allowed", "EFORBIDDEN", "AuthError")
	})
	s.Expose("panics", func(c *Context) (any, error) { panic("boom") })
	w := dialWire(t, s)
	w.expect(`{"id":1,"command":"echo","payload":"Hello, World!"}`, `{"id":1,"command":"echo","payload":"echo: Hello, World!"}`)
	w.expect(`{"id":2,"command":"raw","payload":{"a":[1,2,{"b":null}]}}`, `{"id":2,"command":"raw","payload":{"a":[1,2,{"b":null}]}}`)
	w.expect(`{"id":3,"command":"nothing"}`, `{"id":3,"command":"nothing"}`)
	w.expect(`{"id":4,"command":"unknown-command","payload":"Should fail"}`,
		`{"id":4,"command":"unknown-command","payload":{"error":"Command \"unknown-command\" not found","code":"ENOTFOUND","name":"CommandError"}}`)
	w.expect(`{"id":5,"command":"throws-error","payload":{}}`,
		`{"id":5,"command":"throws-error","payload":{"error":"This is a test error","code":"ESERVER","name":"Error"}}`)
	w.expect(`{"id":6,"command":"code-error"}`,
		`{"id":6,"command":"code-error","payload":{"error":"Not allowed","code":"EFORBIDDEN","name":"AuthError"}}`)
	w.expect(`{"id":7,"command":"panics"}`,
		`{"id":7,"command":"panics","payload":{"error":"boom","code":"EUNKNOWN","name":"UnknownError"}}`)
	w.expect(`{"id":8,"command":"","payload":{}}`,
		`{"id":8,"command":"","payload":{"error":"Command \"\" not found","code":"ENOTFOUND","name":"CommandError"}}`)
}

func unquote(b []byte) string {
	var s string
	_ = protocol.Unmarshal(b, &s)
	return s
}

func TestIgnoredFrames(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	var calls atomic.Int32
	s.Expose("count", func(c *Context) (any, error) { calls.Add(1); return true, nil })
	w := dialWire(t, s)
	for _, f := range []string{
		`not json`, `{"command":"count"}`, `5`, `"x"`, `[1,2]`, `{"id":1}`, `{"id":1,"command":5}`,
		`{"id":2,"command":"pong","payload":{}}`, `{"id":3,"command":"latency:response","payload":{}}`,
		`{"id":"7","command":"count"}`, `{"id":1.5,"command":"count"}`, `{"id":9,"command":"count"} trailing`,
	} {
		w.send(f)
	}
	w.silent(100 * time.Millisecond)
	if calls.Load() != 0 {
		t.Fatalf("%d ignored frames were dispatched", calls.Load())
	}
	w.expect(`{"id":10,"command":"count"}`, `{"id":10,"command":"count","payload":true}`)
	// binary frames are not Mesh frames
	_ = w.c.Write(bg(), websocket.MessageBinary, []byte(`{"id":11,"command":"count"}`))
	w.silent(50 * time.Millisecond)
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	s.Use(func(c *Context) error {
		if c.Command == protocol.CmdJoinRoom && strings.Contains(string(c.Payload), "admin") {
			return errors.New("Unauthorized")
		}
		return nil
	})
	s.Expose("guarded", func(c *Context) (any, error) {
		v, _ := c.Get("who")
		note("handler")
		return v, nil
	}, func(c *Context) error { note("first"); c.Set("who", "alice"); return nil })
	s.UseFor("guarded", func(c *Context) error { note("prepended"); return nil })
	s.Expose("locked", func(c *Context) (any, error) { return "never", nil },
		func(c *Context) error { return protocol.NewCodeError("nope", "EAUTH", "") })
	w := dialWire(t, s)
	w.expect(`{"id":9,"command":"mesh/join-room","payload":{"roomName":"admin:1"}}`,
		`{"id":9,"command":"mesh/join-room","payload":{"error":"Unauthorized","code":"ESERVER","name":"Error"}}`)
	w.expect(`{"id":1,"command":"guarded"}`, `{"id":1,"command":"guarded","payload":"alice"}`)
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(order) != "[prepended first handler]" {
		t.Fatalf("middleware order %v", order)
	}
	w.expect(`{"id":2,"command":"locked"}`, `{"id":2,"command":"locked","payload":{"error":"nope","code":"EAUTH","name":"CodeError"}}`)
}

func TestChannelsOnTheWire(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	s.ExposeChannel("test:channel", nil)
	s.ExposeChannel("test:channel2", nil)
	w := dialWire(t, s)
	w.expect(`{"id":1,"command":"mesh/subscribe-channel","payload":{"channel":"unexposed:channel"}}`,
		`{"id":1,"command":"mesh/subscribe-channel","payload":{"success":false,"history":[]}}`)
	w.expect(`{"id":2,"command":"mesh/subscribe-channel","payload":{"channel":"test:channel"}}`,
		`{"id":2,"command":"mesh/subscribe-channel","payload":{"success":true,"history":[]}}`)
	if err := s.PublishToChannel(bg(), "test:channel", "Hello, Redis!", 0); err != nil {
		t.Fatal(err)
	}
	if got := w.next(); got != `{"command":"mesh/subscription-message","payload":{"channel":"test:channel","message":"Hello, Redis!"}}` {
		t.Fatalf("push %s", got)
	}
	w.expect(`{"id":3,"command":"mesh/unsubscribe-channel","payload":{"channel":"test:channel"}}`,
		`{"id":3,"command":"mesh/unsubscribe-channel","payload":true}`)
	w.expect(`{"id":4,"command":"mesh/unsubscribe-channel","payload":{"channel":"not:subscribed"}}`,
		`{"id":4,"command":"mesh/unsubscribe-channel","payload":false}`)
	_ = s.PublishToChannel(bg(), "test:channel", "Message 2", 0)
	w.silent(100 * time.Millisecond)

	for i := 1; i <= 5; i++ {
		if err := s.PublishToChannel(bg(), "test:channel", fmt.Sprintf("History message %d", i), 10); err != nil {
			t.Fatal(err)
		}
	}
	w.expect(`{"id":5,"command":"mesh/subscribe-channel","payload":{"channel":"test:channel","historyLimit":3}}`,
		`{"id":5,"command":"mesh/subscribe-channel","payload":{"success":true,"history":["History message 5","History message 4","History message 3"]}}`)
	w.expect(`{"id":6,"command":"mesh/subscribe-channel","payload":{"channel":"mesh:broadcast:all"}}`,
		`{"id":6,"command":"mesh/subscribe-channel","payload":{"success":false,"history":[]}}`)
}

func TestChannelGuards(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	a, b := dialWire(t, s), dialWire(t, s)
	s.ExposeChannel("guarded:channel", func(c *Connection, ch string) bool { return c.ID() == a.id })
	var seen atomic.Value
	s.ExposeChannelPattern(regexp.MustCompile(`^test:channel:\d+$`), func(c *Connection, ch string) bool {
		seen.Store(ch)
		return true
	})
	a.expect(`{"id":1,"command":"mesh/subscribe-channel","payload":{"channel":"guarded:channel"}}`,
		`{"id":1,"command":"mesh/subscribe-channel","payload":{"success":true,"history":[]}}`)
	b.expect(`{"id":1,"command":"mesh/subscribe-channel","payload":{"channel":"guarded:channel"}}`,
		`{"id":1,"command":"mesh/subscribe-channel","payload":{"success":false,"history":[]}}`)
	b.expect(`{"id":2,"command":"mesh/subscribe-channel","payload":{"channel":"test:channel:1"}}`,
		`{"id":2,"command":"mesh/subscribe-channel","payload":{"success":true,"history":[]}}`)
	if seen.Load() != "test:channel:1" {
		t.Fatalf("guard saw %v", seen.Load())
	}
	b.expect(`{"id":3,"command":"mesh/subscribe-channel","payload":{"channel":"test:channel:x"}}`,
		`{"id":3,"command":"mesh/subscribe-channel","payload":{"success":false,"history":[]}}`)
}

func TestRoomsOnTheWire(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	a, b := dialWire(t, s), dialWire(t, s)
	a.expect(`{"id":1,"command":"mesh/join-room","payload":{"roomName":"room1"}}`,
		`{"id":1,"command":"mesh/join-room","payload":{"success":true,"present":[]}}`)
	b.expect(`{"id":1,"command":"mesh/join-room","payload":{"roomName":"room1"}}`,
		`{"id":1,"command":"mesh/join-room","payload":{"success":true,"present":[]}}`)
	a.expect(`{"id":2,"command":"mesh/join-room","payload":{"roomName":"room2"}}`,
		`{"id":2,"command":"mesh/join-room","payload":{"success":true,"present":[]}}`)
	for _, tc := range []struct {
		room, id string
		want     bool
	}{{"room1", a.id, true}, {"room1", b.id, true}, {"room2", a.id, true}, {"room2", b.id, false}, {"room3", a.id, false}} {
		if got, err := s.IsInRoom(bg(), tc.room, tc.id); err != nil || got != tc.want {
			t.Fatalf("IsInRoom(%s, %s) = %v %v", tc.room, tc.id, got, err)
		}
	}
	if err := s.BroadcastRoom(bg(), "room2", "hello", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if got := a.next(); got != `{"command":"hello","payload":{"n":1}}` {
		t.Fatalf("room push %s", got)
	}
	b.silent(50 * time.Millisecond)
	if err := s.BroadcastRoomExclude(bg(), "room1", "hi", "x", []string{a.id}); err != nil {
		t.Fatal(err)
	}
	if got := b.next(); got != `{"command":"hi","payload":"x"}` {
		t.Fatalf("room push %s", got)
	}
	a.silent(50 * time.Millisecond)
	a.expect(`{"id":3,"command":"mesh/leave-room","payload":{"roomName":"room2"}}`,
		`{"id":3,"command":"mesh/leave-room","payload":{"success":true}}`)
	_ = s.BroadcastRoom(bg(), "room2", "hello", nil)
	a.silent(50 * time.Millisecond)
	if in, _ := s.IsInRoom(bg(), "room2", a.id); in {
		t.Fatal("still in room2 after leaving")
	}
	// everyone, then one connection
	_ = s.Broadcast(bg(), "all", "world")
	for _, w := range []*wire{a, b} {
		if got := w.next(); got != `{"command":"all","payload":"world"}` {
			t.Fatalf("broadcast %s", got)
		}
	}
	_ = s.Broadcast(bg(), "just-b", true, b.id)
	if got := b.next(); got != `{"command":"just-b","payload":true}` {
		t.Fatalf("targeted %s", got)
	}
	_ = s.BroadcastExclude(bg(), "not-a", 1, []string{a.id})
	if got := b.next(); got != `{"command":"not-a","payload":1}` {
		t.Fatalf("exclude %s", got)
	}
	a.silent(50 * time.Millisecond)
	// a disconnect removes the connection from its rooms
	b.c.CloseNow()
	testutil.Eventually(t, 5*time.Second, func() error {
		if in, _ := s.IsInRoom(bg(), "room1", b.id); in {
			return errors.New("b still in room1")
		}
		return nil
	})
}

func TestMetadataOnTheWire(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	a, b := dialWire(t, s), dialWire(t, s)
	a.expect(`{"id":1,"command":"mesh/get-my-connection-metadata","payload":{}}`,
		`{"id":1,"command":"mesh/get-my-connection-metadata","payload":{"metadata":null}}`)
	if err := s.SetConnectionMetadata(bg(), a.id, map[string]any{"user": "test-user", "permissions": []string{"read", "write"}}); err != nil {
		t.Fatal(err)
	}
	a.expect(`{"id":2,"command":"mesh/get-my-connection-metadata","payload":{}}`,
		`{"id":2,"command":"mesh/get-my-connection-metadata","payload":{"metadata":{"permissions":["read","write"],"user":"test-user"}}}`)
	b.expect(`{"id":1,"command":"mesh/get-connection-metadata","payload":{"connectionId":"`+a.id+`"}}`,
		`{"id":1,"command":"mesh/get-connection-metadata","payload":{"metadata":{"permissions":["read","write"],"user":"test-user"}}}`)
	_ = s.SetRoomMetadata(bg(), "test-room", map[string]any{"key": "value", "nested": map[string]bool{"data": true}})
	a.expect(`{"id":3,"command":"mesh/get-room-metadata","payload":{"roomName":"test-room"}}`,
		`{"id":3,"command":"mesh/get-room-metadata","payload":{"metadata":{"key":"value","nested":{"data":true}}}}`)
	a.expect(`{"id":4,"command":"mesh/get-room-metadata","payload":{"roomName":"nope"}}`,
		`{"id":4,"command":"mesh/get-room-metadata","payload":{"metadata":null}}`)
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{MaxQueuedCommands: 4})
	block := make(chan struct{})
	s.Expose("slow", func(c *Context) (any, error) { <-block; return "done", nil })
	w := dialWire(t, s)
	// wrong payload types get Mesh's error reply; the connection stays
	w.expect(`{"id":1,"command":"mesh/join-room","payload":"lobby"}`,
		`{"id":1,"command":"mesh/join-room","payload":{"error":"Invalid payload: expected {\"roomName\": string}","code":"EINVALID","name":"CodeError"}}`)
	w.expect(`{"id":2,"command":"mesh/subscribe-channel","payload":[1,2]}`,
		`{"id":2,"command":"mesh/subscribe-channel","payload":{"success":false,"history":[]}}`)
	// a flood of commands past the queue's bound is slowed down, not refused
	for i := 0; i < 10; i++ {
		w.send(fmt.Sprintf(`{"id":%d,"command":"slow"}`, 100+i))
	}
	w.silent(20 * time.Millisecond)
	close(block)
	for i := 0; i < 10; i++ {
		if got, want := w.next(), fmt.Sprintf(`{"id":%d,"command":"slow","payload":"done"}`, 100+i); got != want {
			t.Fatalf("slow reply %s, want %s", got, want)
		}
	}
	// a message over the engine's limit closes with 1009; others are unaffected
	other := dialWire(t, s)
	big := `{"id":3,"command":"x","payload":"` + strings.Repeat("a", 2<<20) + `"}`
	_ = w.c.Write(bg(), websocket.MessageText, []byte(big))
	_, err := w.read(5 * time.Second)
	if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("huge payload: %v", err)
	}
	other.expect(`{"id":1,"command":"mesh/get-room-metadata","payload":{"roomName":"r"}}`,
		`{"id":1,"command":"mesh/get-room-metadata","payload":{"metadata":null}}`)
}

func TestLiveness(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{PingInterval: 30 * time.Millisecond, LatencyInterval: 20 * time.Millisecond, MaxMissedPongs: 1})
	w := dialWire(t, s)
	w.skip = map[string]bool{}
	// a client that never answers gets pings, then is closed
	pings := 0
	var sawLatency, sawRequest bool
	for {
		f, err := w.read(5 * time.Second)
		if err != nil {
			break
		}
		switch {
		case f == `{"command":"ping","payload":{}}`:
			pings++
		case f == `{"command":"latency:request","payload":{}}`:
			sawRequest = true
		case f == `{"command":"latency","payload":0}`:
			sawLatency = true
		default:
			t.Fatalf("unexpected %s", f)
		}
	}
	if pings != 2 || !sawRequest || !sawLatency {
		t.Fatalf("pings=%d latency=%v request=%v before close", pings, sawLatency, sawRequest)
	}
	// a client that answers stays, and its latency is measured
	w2 := dialWire(t, s)
	w2.skip = map[string]bool{}
	deadline := time.Now().Add(400 * time.Millisecond)
	for time.Now().Before(deadline) {
		f, err := w2.read(time.Second)
		if err != nil {
			t.Fatalf("answering client closed: %v", err)
		}
		switch f {
		case `{"command":"ping","payload":{}}`:
			w2.send(`{"id":1,"command":"pong","payload":{}}`)
		case `{"command":"latency:request","payload":{}}`:
			w2.send(`{"id":2,"command":"latency:response","payload":{}}`)
		}
	}
}

func TestConnectionHooks(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	opened := make(chan *Connection, 1)
	closed := make(chan *Connection, 1)
	s.OnConnection(func(c *Connection) { opened <- c })
	s.OnDisconnection(func(c *Connection) { closed <- c })
	w := dialWire(t, s)
	c := recv(t, opened, "the connection hook")
	if c.ID() != w.id || c.IsDead() {
		t.Fatalf("opened %s dead=%v, want %s", c.ID(), c.IsDead(), w.id)
	}
	if got := s.Connection(w.id); got != c {
		t.Fatalf("Connection(%s) = %v, want the hook's %v", w.id, got, c)
	}
	w.c.Close(websocket.StatusNormalClosure, "")
	d := recv(t, closed, "the disconnection hook")
	if d.ID() != w.id || !d.IsDead() {
		t.Fatalf("closed %s dead=%v", d.ID(), d.IsDead())
	}
}

// Room changes made on one node for a connection on another reach the
// node that owns it.
func TestRoomChangesAcrossNodes(t *testing.T) {
	t.Parallel()
	co := memory.New(memory.Options{})
	t.Cleanup(func() { _ = co.Close() }) // runs after the servers' cleanups
	sa := startServer(t, Options{Coordinator: co})
	sb := startServer(t, Options{Coordinator: co})
	wb := dialWire(t, sb)
	if err := sa.AddToRoom(bg(), "far", wb.id); err != nil {
		t.Fatal(err)
	}
	if in, _ := sb.IsInRoom(bg(), "far", wb.id); !in {
		t.Fatal("membership not shared")
	}
	// B subscribes its connection asynchronously: poll with broadcasts
	testutil.Eventually(t, 5*time.Second, func() error {
		_ = sa.BroadcastRoom(bg(), "far", "hello", "from a")
		f, err := wb.read(50 * time.Millisecond)
		if err != nil {
			return err
		}
		if f != `{"command":"hello","payload":"from a"}` {
			return fmt.Errorf("got %s", f)
		}
		return nil
	})
	if err := sa.RemoveFromRoom(bg(), "far", wb.id); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		for {
			if _, err := wb.read(20 * time.Millisecond); err != nil {
				break // drained
			}
		}
		_ = sa.BroadcastRoom(bg(), "far", "hello", "again")
		if f, err := wb.read(100 * time.Millisecond); err == nil {
			return fmt.Errorf("still receiving after removal: %s", f)
		}
		return nil
	})
}
