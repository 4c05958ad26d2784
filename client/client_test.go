package client

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meshfast/meshfast/protocol"
)

func TestCloseNeverConnected(t *testing.T) {
	c := New("ws://127.0.0.1:1", Options{})
	var events recorder[string]
	c.OnClose(func() { events.add("close") })
	c.OnDisconnect(func() { events.add("disconnect") })
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	<-c.Done()
	if s := c.Status(); s != Offline {
		t.Fatalf("status %v, want OFFLINE", s)
	}
	if got := events.get(); len(got) != 0 {
		t.Fatalf("events %v, want none", got)
	}
	if err := c.Connect(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Connect after Close: %v, want ErrClosed", err)
	}
	if _, err := c.Command(context.Background(), "x", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Command after Close: %v, want ErrClosed", err)
	}
}

func TestCommandWhileOffline(t *testing.T) {
	c := newClient(t, "ws://127.0.0.1:1", Options{})
	if _, err := c.Command(ctxT(t), "echo", "x"); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("err %v, want ErrNotConnected", err)
	}
}

func TestConnectFailure(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	s.refuse.Store(1)
	c := newClient(t, s.url, Options{})
	err := c.Connect(ctxT(t))
	var de *DialError
	if !errors.As(err, &de) || de.URL != s.url {
		t.Fatalf("err %v, want *DialError for %s", err, s.url)
	}
	if c.Status() != Offline {
		t.Fatalf("status %v after failed connect", c.Status())
	}
	// A failed first connect does not retry by itself, but Connect may.
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatalf("second Connect: %v", err)
	}
	s.accept(t)
}

func TestLifecycleEvents(t *testing.T) {
	s := newFakeServer(t, fakeOptions{assignID: true})
	c := newClient(t, s.url, Options{AwaitConnectionID: true})
	var events recorder[string]
	var statusMu sync.Mutex
	statusAt := map[string]Status{}
	note := func(name string) func() {
		return func() {
			statusMu.Lock()
			statusAt[name] = c.Status()
			statusMu.Unlock()
			events.add(name)
		}
	}
	c.OnConnect(note("connect"))
	c.OnClose(note("close"))
	c.OnDisconnect(note("disconnect"))
	off := c.OnReconnect(note("reconnect"))
	off()

	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.accept(t)
	if c.Status() != Online {
		t.Fatalf("status %v after Connect", c.Status())
	}
	if id := c.ConnectionID(); id != "conn-1" {
		t.Fatalf("ConnectionID %q, want conn-1", id)
	}
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatalf("Connect when online: %v", err)
	}
	events.wait(t, 1)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Close waits for queued events when not called from a callback.
	got := events.get()
	want := []string{"connect", "close", "disconnect"}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
	statusMu.Lock()
	defer statusMu.Unlock()
	if statusAt["connect"] != Online || statusAt["close"] != Offline || statusAt["disconnect"] != Offline {
		t.Fatalf("statuses inside callbacks: %v", statusAt)
	}
	if c.ConnectionID() != "" {
		t.Fatalf("ConnectionID %q after Close", c.ConnectionID())
	}
}

// Close right after Connect: OnConnect still sees Online (C-client-5/6).
func TestCloseRightAfterConnect(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c := newClient(t, s.url, Options{})
	var seen recorder[string]
	c.OnConnect(func() { seen.add("connect:" + c.Status().String()) })
	c.OnClose(func() { seen.add("close:" + c.Status().String()) })
	c.OnDisconnect(func() { seen.add("disconnect:" + c.Status().String()) })
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	want := []string{"connect:ONLINE", "close:OFFLINE", "disconnect:OFFLINE"}
	if got := seen.get(); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestCloseFromCallback(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{})
	closed := make(chan error, 1)
	c.On("bye", func(json.RawMessage) { closed <- c.Close() })
	fc.send(`{"command":"bye","payload":null}`)
	if err := waitErr(t, closed); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(waitFor):
		t.Fatal("Done not closed")
	}
}

func TestCommandWire(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{})
	ctx := ctxT(t)

	ch := make(chan json.RawMessage, 1)
	go func() {
		raw, err := c.Command(ctx, "echo", "Hello, World!")
		if err != nil {
			t.Error(err)
		}
		ch <- raw
	}()
	f := fc.expectRaw(t, `{"id":%d,"command":"echo","payload":"Hello, World!"}`)
	fc.reply(f, `"echo: Hello, World!"`)
	if got := string(<-ch); got != `"echo: Hello, World!"` {
		t.Fatalf("reply %s", got)
	}

	// nil payload is {}; ids increase.
	prev := f.id
	go func() {
		raw, err := c.Command(ctx, "noargs", nil)
		if err != nil {
			t.Error(err)
		}
		ch <- raw
	}()
	f = fc.expectRaw(t, `{"id":%d,"command":"noargs","payload":{}}`)
	if f.id <= prev {
		t.Fatalf("id %d after %d", f.id, prev)
	}
	// A reply without payload (a handler returning undefined).
	fc.send(`{"id":` + jsonInt(f.id) + `,"command":"noargs"}`)
	if got := <-ch; got != nil {
		t.Fatalf("reply %q, want nil", got)
	}

	// CommandInto decodes; a struct payload is encoded as JSON.
	type echo struct {
		Name  string   `json:"name"`
		Items []string `json:"items"`
	}
	done := async(func() error {
		var out echo
		if err := c.CommandInto(ctx, "echo", echo{Name: "<a&b>", Items: []string{"x"}}, &out); err != nil {
			return err
		}
		if out.Name != "<a&b>" || len(out.Items) != 1 {
			t.Errorf("decoded %+v", out)
		}
		return nil
	})
	f = fc.expectRaw(t, `{"id":%d,"command":"echo","payload":{"name":"<a&b>","items":["x"]}}`)
	fc.reply(f, f.payload)
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
}

func jsonInt(n int64) string {
	b, _ := protocol.Marshal(n)
	return string(b)
}

func TestRepliesMatchedByID(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{})
	ctx := ctxT(t)
	const n = 20
	type res struct {
		i   int
		raw string
	}
	out := make(chan res, n)
	for i := range n {
		go func() {
			raw, err := c.Command(ctx, "echo", i)
			if err != nil {
				t.Error(err)
			}
			out <- res{i, string(raw)}
		}()
	}
	frames := make([]frame, n)
	for i := range frames {
		frames[i] = fc.expect(t, "echo")
	}
	seen := map[int64]bool{}
	for i := len(frames) - 1; i >= 0; i-- { // reply in reverse order
		if seen[frames[i].id] {
			t.Fatalf("id %d used twice", frames[i].id)
		}
		seen[frames[i].id] = true
		fc.reply(frames[i], frames[i].payload)
	}
	for range n {
		r := <-out
		if r.raw != jsonInt(int64(r.i)) {
			t.Fatalf("command %d got reply %s", r.i, r.raw)
		}
	}
}

func TestCommandTimeout(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{CommandTimeout: 50 * time.Millisecond})
	ctx := ctxT(t)

	_, err := c.Command(ctx, "never-responds", "Should time out")
	var ce *protocol.CodeError
	if !errors.As(err, &ce) {
		t.Fatalf("err %v (%T), want *protocol.CodeError", err, err)
	}
	if ce.Code != protocol.CodeTimeout || ce.Name != protocol.NameTimeoutError || ce.Message != "Command timed out after 50ms." {
		t.Fatalf("err %+v", ce)
	}
	late := fc.expect(t, "never-responds")
	fc.reply(late, `"too late"`) // dropped

	// A context deadline is a command timeout too.
	dctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	c2 := newClient(t, s.url, Options{}) // default 30s timeout
	if err := c2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	s.accept(t)
	_, err = c2.Command(dctx, "never-responds", nil)
	if !errors.As(err, &ce) || ce.Code != protocol.CodeTimeout {
		t.Fatalf("err %v, want ETIMEOUT", err)
	}

	// A canceled context is context.Canceled.
	cctx, cancel2 := context.WithCancel(ctx)
	done := async(func() error { _, err := c.Command(cctx, "never-responds", nil); return err })
	fc.expect(t, "never-responds")
	cancel2()
	if err := waitErr(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}

	// The connection still works, and the late reply was not taken for
	// another request.
	done = async(func() error {
		raw, err := c.Command(ctx, "echo", "ok")
		if err == nil && string(raw) != `"ok"` {
			t.Errorf("reply %s", raw)
		}
		return err
	})
	f := fc.expect(t, "echo")
	fc.reply(f, f.payload)
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
}

func TestErrorPayload(t *testing.T) {
	s := newFakeServer(t, fakeOptions{respond: replies(map[string]string{
		"unknown-command": `{"error":"Command \"unknown-command\" not found","code":"ENOTFOUND","name":"CommandError"}`,
		"throws-error":    `{"error":"This is a test error","code":"ESERVER","name":"Error"}`,
		"secret":          `{"error":"Not allowed","code":"EFORBIDDEN","name":"AuthError"}`,
	})})
	c, _ := connected(t, s, Options{})
	for _, tc := range []struct {
		cmd  string
		want protocol.CodeError
	}{
		{"unknown-command", protocol.CodeError{Message: `Command "unknown-command" not found`, Code: "ENOTFOUND", Name: "CommandError"}},
		{"throws-error", protocol.CodeError{Message: "This is a test error", Code: "ESERVER", Name: "Error"}},
		{"secret", protocol.CodeError{Message: "Not allowed", Code: "EFORBIDDEN", Name: "AuthError"}},
	} {
		raw, err := c.Command(ctxT(t), tc.cmd, "Should fail")
		var ce *protocol.CodeError
		if !errors.As(err, &ce) || *ce != tc.want {
			t.Fatalf("%s: reply %s err %v, want %+v", tc.cmd, raw, err, tc.want)
		}
		if err.Error() != tc.want.Message {
			t.Fatalf("%s: Error() %q", tc.cmd, err.Error())
		}
	}
}

func TestAutoReplies(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{})
	var pings recorder[Status]
	var latencies recorder[time.Duration]
	var messages recorder[string]
	c.OnPing(func() { pings.add(c.Status()) })
	c.OnLatency(func(d time.Duration) { latencies.add(d) })
	c.OnMessage(func(cmd string, p json.RawMessage) { messages.add(cmd + " " + string(p)) })

	fc.send(`{"command":"ping","payload":{}}`)
	fc.expectRaw(t, `{"id":%d,"command":"pong","payload":{}}`)
	if got := pings.wait(t, 1); got[0] != Online {
		t.Fatalf("status in OnPing %v", got[0])
	}

	fc.send(`{"command":"latency:request","payload":{}}`)
	fc.expectRaw(t, `{"id":%d,"command":"latency:response","payload":{}}`)
	fc.send(`{"command":"latency:request","payload":{"t":123}}`)
	fc.expectRaw(t, `{"id":%d,"command":"latency:response","payload":{"t":123}}`)

	fc.send(`{"command":"latency","payload":12}`)
	if got := latencies.wait(t, 1); got[0] != 12*time.Millisecond {
		t.Fatalf("latency %v", got[0])
	}
	if c.Latency() != 12*time.Millisecond {
		t.Fatalf("Latency() %v", c.Latency())
	}
	got := messages.wait(t, 4)
	want := []string{`ping {}`, `latency:request {}`, `latency:request {"t":123}`, `latency 12`}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("messages %q, want %q", got, want)
		}
	}
}

func TestPushes(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{})
	var messages recorder[string]
	var hello, other recorder[string]
	c.OnMessage(func(cmd string, p json.RawMessage) { messages.add(cmd + " " + string(p)) })
	off := c.On("hello", func(p json.RawMessage) { hello.add(string(p)) })
	c.On("other", func(p json.RawMessage) { other.add(string(p)) })

	fc.send(`{"command":"hello","payload":"world"}`)
	fc.send(`not json`)
	fc.send(`{"command":"other","payload":{"a":[1,2]}}`)
	fc.send(`{"id":999,"command":"hello","payload":"unmatched id"}`)
	if got := hello.wait(t, 2); got[0] != `"world"` || got[1] != `"unmatched id"` {
		t.Fatalf("hello %q", got)
	}
	if got := other.wait(t, 1); got[0] != `{"a":[1,2]}` {
		t.Fatalf("other %q", got)
	}
	off()
	fc.send(`{"command":"hello","payload":"again"}`)
	got := messages.wait(t, 4)
	if got[0] != `hello "world"` || got[3] != `hello "again"` {
		t.Fatalf("messages %q", got)
	}
	if hello.len() != 2 {
		t.Fatalf("handler called after off: %q", hello.get())
	}
}

func TestCommandsWaitWhileConnecting(t *testing.T) {
	s := newFakeServer(t, fakeOptions{assignID: false})
	// AwaitConnectionID holds Connect (status Connecting) until the test
	// sends the id.
	c := newClient(t, s.url, Options{AwaitConnectionID: true})
	connectDone := async(func() error { return c.Connect(ctxT(t)) })
	fc := s.accept(t)
	eventually(t, "Connecting", func() bool { return c.Status() == Connecting })
	cmdDone := async(func() error {
		raw, err := c.Command(ctxT(t), "echo", 1)
		if err == nil && string(raw) != "1" {
			t.Errorf("reply %s", raw)
		}
		return err
	})
	fc.quiet(t, 20*time.Millisecond)
	fc.send(`{"command":"mesh/assign-id","payload":{"connectionId":"abc"}}`) // the object form is accepted too
	if err := waitErr(t, connectDone); err != nil {
		t.Fatal(err)
	}
	if c.ConnectionID() != "abc" {
		t.Fatalf("ConnectionID %q", c.ConnectionID())
	}
	f := fc.expect(t, "echo")
	fc.reply(f, f.payload)
	if err := waitErr(t, cmdDone); err != nil {
		t.Fatal(err)
	}
}

func TestInFlightCommandFailsOnLoss(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{NoReconnect: true})
	var closes recorder[Status]
	c.OnClose(func() { closes.add(c.Status()) })
	done := async(func() error { _, err := c.Command(ctxT(t), "slow", nil); return err })
	fc.expect(t, "slow")
	fc.drop()
	if err := waitErr(t, done); !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("err %v, want ErrConnectionLost", err)
	}
	closes.wait(t, 1)
	eventually(t, "Offline", func() bool { return c.Status() == Offline })
	if _, err := c.Command(ctxT(t), "x", nil); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("err %v, want ErrNotConnected", err)
	}
	if s.accepted.Load() != 1 {
		t.Fatalf("%d connections with NoReconnect", s.accepted.Load())
	}
}

func TestStatusString(t *testing.T) {
	for s, want := range map[Status]string{Offline: "OFFLINE", Connecting: "CONNECTING", Online: "ONLINE", Reconnecting: "RECONNECTING", 9: "Status(9)"} {
		if s.String() != want {
			t.Errorf("%d: %q", s, s.String())
		}
	}
}

func TestGoroutineID(t *testing.T) {
	a := goroutineID()
	ch := make(chan uint64)
	go func() { ch <- goroutineID() }()
	b := <-ch
	if a == 0 || b == 0 || a == b || goroutineID() != a {
		t.Fatalf("ids %d %d", a, b)
	}
}
