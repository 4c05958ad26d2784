package mesh

// Mesh's own test suite (../shared/mesh-protocol/tests.md), case by case,
// with the same intent and values, against a real server on 127.0.0.1:0
// and meshfast's Go client. Case ids are in the test names.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshfast/meshfast/client"
	"github.com/meshfast/meshfast/internal/testutil"
	"github.com/meshfast/meshfast/protocol"
)

// newClient returns a client for s (not connected) closed at the end.
func newClient(t testing.TB, s *Server, o client.Options) *client.Client {
	t.Helper()
	o.AwaitConnectionID = true
	c := client.New(s.Engine().URL()+"/", o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func connected(t testing.TB, s *Server) *client.Client {
	t.Helper()
	c := newClient(t, s, client.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if s.Connection(c.ConnectionID()) == nil {
			return errors.New("not registered")
		}
		return nil
	})
	return c
}

func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// jsonEqual checks that got is the JSON value want: the same types and
// values, whatever the key order and spacing ({"id":1} is not {"id":"1"}).
// A want that is not JSON fails the test rather than matching anything.
func jsonEqual(t testing.TB, got json.RawMessage, want string) {
	t.Helper()
	var a, b any
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("bad expected JSON %s: %v", want, err)
		return
	}
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("bad JSON %s: %v", got, err)
		return
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("got %s want %s", got, want)
	}
}

// recv waits for a value on ch, failing the test with what it waited for
// if none comes in 5 s: a regression fails with a message instead of
// hanging until go test gives up.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestMeshBasic(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	s.Expose("echo", func(c *Context) (any, error) {
		var p string
		_ = c.Bind(&p)
		return "echo: " + p, nil
	})
	t.Run("C-basic-1 clients connect", func(t *testing.T) {
		a, b := connected(t, s), connected(t, s)
		if a.Status() != client.Online || b.Status() != client.Online {
			t.Fatalf("status %v %v", a.Status(), b.Status())
		}
	})
	t.Run("C-basic-2 clients disconnect", func(t *testing.T) {
		a := connected(t, s)
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if a.Status() != client.Offline {
			t.Fatalf("status %v", a.Status())
		}
	})
	t.Run("C-basic-3 command and response", func(t *testing.T) {
		a := connected(t, s)
		var got string
		if err := a.CommandInto(tctx(t), "echo", "Hello, World!", &got); err != nil || got != "echo: Hello, World!" {
			t.Fatalf("%q %v", got, err)
		}
	})
}

func TestMeshBasicMetadata(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	opened := make(chan *Connection, 4)
	closed := make(chan *Connection, 4)
	s.OnConnection(func(c *Connection) { opened <- c })
	s.OnDisconnection(func(c *Connection) { closed <- c })
	a, b := connected(t, s), connected(t, s)
	ctx := tctx(t)
	// C-basic-6: the hook sees a live connection that is also local
	ca := recv(t, opened, "the connection hook")
	if ca.ID() == "" || ca.IsDead() || s.Connection(ca.ID()) != ca {
		t.Fatalf("C-basic-6: %s dead=%v", ca.ID(), ca.IsDead())
	}
	recv(t, opened, "the second connection hook")
	// Mesh's getLocalConnections()[0] and [1]: the two clients' server-side connections
	conns := []*Connection{s.Connection(a.ConnectionID()), s.Connection(b.ConnectionID())}
	if conns[0] == nil || conns[1] == nil {
		t.Fatalf("local connections %v", conns)
	}
	// C-basic-4
	metaA, metaB := `{"name":"Client A","id":1}`, `{"name":"Client B","id":2}`
	_ = s.SetConnectionMetadata(ctx, conns[0].ID(), json.RawMessage(metaA))
	_ = s.SetConnectionMetadata(ctx, conns[1].ID(), json.RawMessage(metaB))
	m, _ := s.ConnectionMetadata(ctx, conns[0].ID())
	jsonEqual(t, m, metaA)
	all, _ := s.AllConnectionMetadata(ctx)
	allJSON, _ := json.Marshal(all)
	jsonEqual(t, allJSON, fmt.Sprintf(`[{%q:%s},{%q:%s}]`, conns[0].ID(), metaA, conns[1].ID(), metaB))
	none, _ := s.RoomConnectionMetadata(ctx, "non-existent-room")
	if len(none) != 0 {
		t.Fatalf("unknown room metadata %v", none)
	}
	// C-basic-5
	_ = s.AddToRoom(ctx, "room-a", conns[0].ID())
	_ = s.AddToRoom(ctx, "room-b", conns[1].ID())
	ra, _ := s.RoomConnectionMetadata(ctx, "room-a")
	raJSON, _ := json.Marshal(ra)
	jsonEqual(t, raJSON, fmt.Sprintf(`[{%q:%s}]`, conns[0].ID(), metaA))
	rb, _ := s.RoomConnectionMetadata(ctx, "room-b")
	rbJSON, _ := json.Marshal(rb)
	jsonEqual(t, rbJSON, fmt.Sprintf(`[{%q:%s}]`, conns[1].ID(), metaB))
	// C-basic-7: the disconnection hook gets the same id, now dead
	id := a.ConnectionID()
	_ = a.Close()
	d := recv(t, closed, "the disconnection hook")
	if d.ID() != id || !d.IsDead() {
		t.Fatalf("C-basic-7: %s dead=%v", d.ID(), d.IsDead())
	}
}

func TestMeshClient(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	s.Expose("never-responds", func(c *Context) (any, error) { <-c.Done(); return nil, nil })
	s.Expose("throws-error", func(c *Context) (any, error) { return nil, errors.New("This is a test error") })
	s.Expose("echo", func(c *Context) (any, error) { return c.Payload, nil })
	t.Run("C-client-1 command times out", func(t *testing.T) {
		a := connected(t, s)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := a.Command(ctx, "never-responds", "Should time out")
		var ce *protocol.CodeError
		if !errors.As(err, &ce) || ce.Code != "ETIMEOUT" || !strings.Contains(err.Error(), "timed out") {
			t.Fatalf("want ETIMEOUT, got %v", err)
		}
	})
	t.Run("C-client-2 unknown command", func(t *testing.T) {
		a := connected(t, s)
		_, err := a.Command(tctx(t), "unknown-command", "Should fail")
		var ce *protocol.CodeError
		if !errors.As(err, &ce) || *ce != (protocol.CodeError{Code: "ENOTFOUND", Message: `Command "unknown-command" not found`, Name: "CommandError"}) {
			t.Fatalf("got %#v", err)
		}
	})
	t.Run("C-client-3 thrown errors", func(t *testing.T) {
		a := connected(t, s)
		_, err := a.Command(tctx(t), "throws-error", nil)
		var ce *protocol.CodeError
		if !errors.As(err, &ce) || *ce != (protocol.CodeError{Code: "ESERVER", Message: "This is a test error", Name: "Error"}) {
			t.Fatalf("got %#v", err)
		}
	})
	t.Run("C-client-4 large payloads", func(t *testing.T) {
		a := connected(t, s)
		items := make([]string, 1000)
		for i := range items {
			items[i] = fmt.Sprintf("item-%d", i)
		}
		in := map[string]any{"array": items, "nested": map[string]any{"deep": map[string]any{"object": map[string]string{"with": "lots of data"}}}}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		out, err := a.Command(ctx, "echo", in)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(in)
		jsonEqual(t, out, string(want))
	})
	t.Run("C-client-5/6 connect and close events", func(t *testing.T) {
		a := newClient(t, s, client.Options{})
		var mu sync.Mutex
		var seen []string
		a.OnConnect(func() { mu.Lock(); seen = append(seen, "connect:"+a.Status().String()); mu.Unlock() })
		a.OnDisconnect(func() { mu.Lock(); seen = append(seen, "disconnect:"+a.Status().String()); mu.Unlock() })
		a.OnClose(func() { mu.Lock(); seen = append(seen, "close:"+a.Status().String()); mu.Unlock() })
		if err := a.Connect(tctx(t)); err != nil {
			t.Fatal(err)
		}
		_ = a.Close()
		testutil.Eventually(t, 5*time.Second, func() error {
			mu.Lock()
			defer mu.Unlock()
			want := []string{"connect:" + client.Online.String(), "disconnect:" + client.Offline.String(), "close:" + client.Offline.String()}
			for _, w := range want {
				if !slices.Contains(seen, w) {
					return fmt.Errorf("events %v lack %s", seen, w)
				}
			}
			return nil
		})
	})
	t.Run("C-client-7 message event", func(t *testing.T) {
		a := connected(t, s)
		got := make(chan string, 1)
		a.On("hello", func(p json.RawMessage) { got <- string(p) })
		_ = s.Broadcast(tctx(t), "hello", "world")
		if p := recv(t, got, "the hello event"); p != `"world"` {
			t.Fatalf("payload %s", p)
		}
	})
	t.Run("C-client-10/11/12 metadata", func(t *testing.T) {
		a := connected(t, s)
		ctx := tctx(t)
		if _, err := a.JoinRoom(ctx, "test-room"); err != nil {
			t.Fatal(err)
		}
		_ = s.SetRoomMetadata(ctx, "test-room", json.RawMessage(`{"key":"value","nested":{"data":true}}`))
		m, err := a.GetRoomMetadata(ctx, "test-room")
		if err != nil {
			t.Fatal(err)
		}
		jsonEqual(t, m, `{"key":"value","nested":{"data":true}}`)
		_ = s.SetConnectionMetadata(ctx, a.ConnectionID(), json.RawMessage(`{"user":"test-user","permissions":["read","write"]}`))
		m, _ = a.GetConnectionMetadata(ctx, a.ConnectionID())
		jsonEqual(t, m, `{"user":"test-user","permissions":["read","write"]}`)
		m, _ = a.GetConnectionMetadata(ctx, "")
		jsonEqual(t, m, `{"user":"test-user","permissions":["read","write"]}`)
	})
}

func TestMeshClientLiveness(t *testing.T) {
	t.Parallel()
	// C-client-8/9: fast pings and latency reports reach the client
	s := startServer(t, Options{PingInterval: 10 * time.Millisecond, LatencyInterval: 10 * time.Millisecond, MaxMissedPongs: 10})
	a := newClient(t, s, client.Options{PingTimeout: 10 * time.Millisecond, MaxMissedPings: 10})
	pinged := make(chan client.Status, 1)
	latency := make(chan time.Duration, 1)
	// The client's reader runs before Connect returns, so a ping can land
	// while it is still Connecting (10 ms here); count those after.
	connected := make(chan struct{})
	a.OnPing(func() {
		select {
		case <-connected:
		default:
			return
		}
		select {
		case pinged <- a.Status():
		default:
		}
	})
	a.OnLatency(func(d time.Duration) {
		select {
		case latency <- d:
		default:
		}
	})
	if err := a.Connect(tctx(t)); err != nil {
		t.Fatal(err)
	}
	close(connected)
	if st := recv(t, pinged, "a ping"); st != client.Online {
		t.Fatalf("status at ping %v", st)
	}
	recv(t, latency, "a latency report")
	// and the client answers, so the server keeps it through many intervals
	time.Sleep(300 * time.Millisecond)
	if a.Status() != client.Online || s.Connection(a.ConnectionID()) == nil {
		t.Fatal("client dropped despite answering pings")
	}
}

func TestMeshRooms(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	a, b := connected(t, s), connected(t, s)
	ctx := tctx(t)
	// C-rooms-1
	for _, j := range []struct {
		c    *client.Client
		room string
	}{{a, "room1"}, {b, "room1"}, {a, "room2"}} {
		if r, err := j.c.JoinRoom(ctx, j.room); err != nil || !r.Success {
			t.Fatalf("join %s: %v %v", j.room, r, err)
		}
	}
	for _, tc := range []struct {
		room string
		c    *client.Client
		want bool
	}{{"room1", a, true}, {"room1", b, true}, {"room2", a, true}, {"room2", b, false}, {"room3", a, false}} {
		if got, _ := s.IsInRoom(ctx, tc.room, tc.c.ConnectionID()); got != tc.want {
			t.Fatalf("IsInRoom(%s) = %v", tc.room, got)
		}
	}
	// C-rooms-2
	_ = s.SetRoomMetadata(ctx, "meta-room-1", json.RawMessage(`{"topic":"General","owner":"userA"}`))
	m, _ := s.RoomMetadata(ctx, "meta-room-1")
	jsonEqual(t, m, `{"topic":"General","owner":"userA"}`)
	if _, err := s.UpdateRoomMetadata(ctx, "meta-room-1", json.RawMessage(`{"topic":"Updated Topic","settings":{"max":10}}`)); err != nil {
		t.Fatal(err)
	}
	m, _ = s.RoomMetadata(ctx, "meta-room-1")
	jsonEqual(t, m, `{"topic":"Updated Topic","owner":"userA","settings":{"max":10}}`)
	_ = s.SetRoomMetadata(ctx, "meta-room-2", json.RawMessage(`{"topic":"Gaming","private":true}`))
	if m, _ := s.RoomMetadata(ctx, "non-existent-room"); m != nil {
		t.Fatalf("unknown room metadata %s", m)
	}
	all, _ := s.AllRoomMetadata(ctx)
	if len(all) != 2 {
		t.Fatalf("all room metadata %v", all)
	}
	jsonEqual(t, all["meta-room-2"], `{"topic":"Gaming","private":true}`)
	_ = s.ClearRoom(ctx, "meta-room-1")
	if m, _ := s.RoomMetadata(ctx, "meta-room-1"); m != nil {
		t.Fatalf("metadata survived ClearRoom: %s", m)
	}
}

// collector gathers channel messages for assertions.
type collector struct {
	mu   sync.Mutex
	msgs []string
}

func (c *collector) add(m string) { c.mu.Lock(); c.msgs = append(c.msgs, m); c.mu.Unlock() }
func (c *collector) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}
func (c *collector) waitFor(t testing.TB, n int) []string {
	t.Helper()
	testutil.Eventually(t, time.Second, func() error {
		if got := c.get(); len(got) < n {
			return fmt.Errorf("%d of %d messages: %v", len(got), n, got)
		}
		return nil
	})
	return c.get()
}

func TestMeshSubscription(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	s.ExposeChannel("test:channel", nil)
	s.ExposeChannel("test:channel2", nil)
	ctx := tctx(t)
	t.Run("C-subscription-1/2", func(t *testing.T) {
		a := connected(t, s)
		r, err := a.SubscribeChannel(ctx, "test:channel", func(string) {})
		if err != nil || !r.Success || r.History == nil {
			t.Fatalf("%+v %v", r, err)
		}
		r, err = a.SubscribeChannel(ctx, "unexposed:channel", func(string) { t.Error("callback on refused channel") })
		if err != nil || r.Success || len(r.History) != 0 || r.History == nil {
			t.Fatalf("%+v %v", r, err)
		}
	})
	t.Run("C-subscription-3/4/5 deliver, unsubscribe, many", func(t *testing.T) {
		a, b := connected(t, s), connected(t, s)
		var ca, cb collector
		_, _ = a.SubscribeChannel(ctx, "test:channel", ca.add)
		_, _ = b.SubscribeChannel(ctx, "test:channel", cb.add)
		_ = s.PublishToChannel(ctx, "test:channel", "Hello, Redis!", 0)
		if got := ca.waitFor(t, 1); got[0] != "Hello, Redis!" {
			t.Fatalf("got %v", got)
		}
		cb.waitFor(t, 1)
		if ok, err := a.UnsubscribeChannel(ctx, "test:channel"); !ok || err != nil {
			t.Fatalf("unsubscribe %v %v", ok, err)
		}
		_ = s.PublishToChannel(ctx, "test:channel", "Message 2", 0)
		cb.waitFor(t, 2)
		time.Sleep(100 * time.Millisecond)
		if got := ca.get(); len(got) != 1 {
			t.Fatalf("delivered after unsubscribe: %v", got)
		}
	})
	t.Run("C-subscription-6/7 only subscribed channels", func(t *testing.T) {
		a := connected(t, s)
		var c1, c2 collector
		_, _ = a.SubscribeChannel(ctx, "test:channel", c1.add)
		_, _ = a.SubscribeChannel(ctx, "test:channel2", c2.add)
		_ = s.PublishToChannel(ctx, "test:channel", "Message for channel 1", 0)
		_ = s.PublishToChannel(ctx, "test:channel2", "Message for channel 2", 0)
		if g1, g2 := c1.waitFor(t, 1), c2.waitFor(t, 1); len(g1) != 1 || len(g2) != 1 || g1[0] != "Message for channel 1" || g2[0] != "Message for channel 2" {
			t.Fatalf("crossover: %v %v", g1, g2)
		}
		if ok, _ := a.UnsubscribeChannel(ctx, "not:subscribed"); ok {
			t.Fatal("unsubscribing an unknown channel returned true")
		}
	})
	t.Run("C-subscription-8/9 guards", func(t *testing.T) {
		a, b := connected(t, s), connected(t, s)
		first := a.ConnectionID()
		s.ExposeChannel("guarded:channel", func(c *Connection, _ string) bool { return c.ID() == first })
		if r, _ := a.SubscribeChannel(ctx, "guarded:channel", func(string) {}); !r.Success {
			t.Fatal("first connection refused")
		}
		if r, _ := b.SubscribeChannel(ctx, "guarded:channel", func(string) {}); r.Success {
			t.Fatal("second connection admitted")
		}
		var mu sync.Mutex
		var names []string
		record := func(_ *Connection, ch string) bool { mu.Lock(); names = append(names, ch); mu.Unlock(); return true }
		s.ExposeChannel("test:channel", record)
		_, _ = a.SubscribeChannel(ctx, "test:channel", func(string) {})
		s.ExposeChannelPattern(regexp.MustCompile(`^test:channel:\d+$`), record)
		_, _ = a.SubscribeChannel(ctx, "test:channel:1", func(string) {})
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(names) != "[test:channel test:channel:1]" {
			t.Fatalf("guard saw %v", names)
		}
		s.ExposeChannel("test:channel", nil)
	})
	t.Run("C-subscription-10 history", func(t *testing.T) {
		a := connected(t, s)
		// Mesh publishes 5 keeping 10, which trims nothing: publish 12, so
		// that the history is trimmed to exactly 10 (Mesh keeps 11).
		for i := 1; i <= 12; i++ {
			if err := s.PublishToChannel(ctx, "hist:channel", fmt.Sprintf("History message %d", i), 10); err != nil {
				t.Fatal(err)
			}
		}
		kept, err := s.ChannelHistory(ctx, "hist:channel", 100)
		if err != nil || len(kept) != 10 || kept[0] != "History message 12" || kept[9] != "History message 3" {
			t.Fatalf("history kept %d: %v %v, want 12 down to 3", len(kept), kept, err)
		}
		s.ExposeChannel("hist:channel", nil)
		var c collector
		r, err := a.SubscribeChannel(ctx, "hist:channel", c.add, client.WithHistoryLimit(3))
		if err != nil || !r.Success {
			t.Fatal(err)
		}
		want := []string{"History message 12", "History message 11", "History message 10"}
		if !slices.Equal(r.History, want) {
			t.Fatalf("history %v", r.History)
		}
		got := c.waitFor(t, 3)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("replayed %v", got)
		}
	})
}

// meshfast goes beyond Mesh: after the server drops it, the Go client
// reconnects by itself and restores its rooms and subscriptions.
func TestClientReconnectRestoresState(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	s.ExposeChannel("news", nil)
	s.ExposeRecord("doc", nil)
	a := connected(t, s)
	ctx := tctx(t)
	if r, err := a.JoinRoom(ctx, "lobby"); err != nil || !r.Success {
		t.Fatal(r, err)
	}
	var news collector
	if r, err := a.SubscribeChannel(ctx, "news", news.add); err != nil || !r.Success {
		t.Fatal(r, err)
	}
	var mu sync.Mutex
	var versions []int64
	if _, err := a.SubscribeRecord(ctx, "doc", client.RecordPatch, func(u client.RecordUpdate) {
		mu.Lock()
		versions = append(versions, u.Version)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	reconnected := make(chan struct{}, 1)
	a.OnReconnect(func() { reconnected <- struct{}{} })
	old := a.ConnectionID()
	s.Connection(old).Close()
	select {
	case <-reconnected:
	case <-time.After(5 * time.Second):
		t.Fatal("client did not reconnect")
	}
	id := a.ConnectionID()
	if id == old || id == "" {
		t.Fatalf("connection id after reconnect %q (was %q)", id, old)
	}
	if in, _ := s.IsInRoom(ctx, "lobby", id); !in {
		t.Fatal("room not rejoined")
	}
	if in, _ := s.IsInRoom(ctx, "lobby", old); in {
		t.Fatal("old connection still in the room")
	}
	_ = s.PublishToChannel(ctx, "news", "after", 0)
	if got := news.waitFor(t, 1); got[0] != "after" {
		t.Fatalf("channel after reconnect: %v", got)
	}
	_ = s.PublishRecordUpdate(ctx, "doc", map[string]int{"v": 1})
	testutil.Eventually(t, 2*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if !slices.Contains(versions, 1) {
			return fmt.Errorf("record versions %v", versions)
		}
		return nil
	})
}
