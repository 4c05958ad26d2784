package mesh

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/coord/memory"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/internal/testutil"
	"github.com/meshfast/meshfast/perf"
)

const limitErr = `"code":"ELIMIT","name":"LimitError"}`

// metricLine is the Prometheus line of series (name and labels) in reg's
// output, "" if absent.
func metricLine(reg *perf.Metrics, series string) string {
	for _, l := range strings.Split(string(reg.WritePrometheus(nil)), "\n") {
		if strings.HasPrefix(l, series+" ") {
			return l
		}
	}
	return ""
}

// A connection past its command rate is answered ELIMIT, in turn, and the
// refusals are counted; the bucket refills with time.
func TestCommandRate(t *testing.T) {
	t.Parallel()
	reg := perf.NewMetrics()
	s := startServer(t, Options{CommandRate: 2, CommandBurst: 3, Metrics: reg})
	s.Expose("n", func(c *Context) (any, error) { return c.Payload, nil })
	w := dialWire(t, s)
	for i := 1; i <= 6; i++ {
		w.send(fmt.Sprintf(`{"id":%d,"command":"n","payload":%d}`, i, i))
	}
	for i := 1; i <= 6; i++ {
		got := w.next()
		ok := fmt.Sprintf(`{"id":%d,"command":"n","payload":%d}`, i, i)
		switch {
		case i <= 3 && got != ok:
			t.Fatalf("command %d within the burst: %s", i, got)
		case i > 3 && !(strings.HasPrefix(got, fmt.Sprintf(`{"id":%d,"command":"n","payload":{"error":"command rate limit exceeded`, i)) && strings.HasSuffix(got, limitErr+"}")):
			t.Fatalf("command %d past the burst: %s", i, got)
		}
	}
	if l := metricLine(reg, `mesh_limit_refusals_total{limit="command_rate"}`); !strings.HasSuffix(l, " 3") {
		t.Fatalf("counted: %q", l)
	}
	time.Sleep(600 * time.Millisecond) // one token at 2 per second
	w.expect(`{"id":7,"command":"n","payload":7}`, `{"id":7,"command":"n","payload":7}`)
}

// Rooms and subscriptions per connection: past the limit a join or a
// subscription is answered ELIMIT and counted; what the connection holds
// already is no new one; leaving makes room.
func TestRoomAndSubscriptionLimits(t *testing.T) {
	t.Parallel()
	reg := perf.NewMetrics()
	s := startServer(t, Options{MaxRoomsPerConnection: 2, MaxSubscriptionsPerConnection: 2, Metrics: reg})
	s.ExposeChannel("a", nil)
	s.ExposeChannel("b", nil)
	s.ExposeChannel("c", nil)
	s.ExposeRecord("r", nil)
	w := dialWire(t, s)
	join := func(id int, room string) string {
		w.send(fmt.Sprintf(`{"id":%d,"command":"mesh/join-room","payload":{"roomName":%q}}`, id, room))
		return w.next()
	}
	joined := func(id int) string {
		return fmt.Sprintf(`{"id":%d,"command":"mesh/join-room","payload":{"success":true,"present":[]}}`, id)
	}
	if got := join(1, "x"); got != joined(1) {
		t.Fatal(got)
	}
	if got := join(2, "y"); got != joined(2) {
		t.Fatal(got)
	}
	if got := join(3, "z"); !strings.Contains(got, `"error":"too many rooms joined by this connection",`+limitErr) {
		t.Fatalf("third room: %s", got)
	}
	if got := join(4, "x"); got != joined(4) {
		t.Fatalf("a room it is in: %s", got)
	}
	w.expect(`{"id":5,"command":"mesh/leave-room","payload":{"roomName":"y"}}`, `{"id":5,"command":"mesh/leave-room","payload":{"success":true}}`)
	if got := join(6, "z"); got != joined(6) {
		t.Fatalf("after leaving one: %s", got)
	}

	sub := func(id int, ch string) string {
		w.send(fmt.Sprintf(`{"id":%d,"command":"mesh/subscribe-channel","payload":{"channel":%q}}`, id, ch))
		return w.next()
	}
	if got := sub(7, "a"); !strings.Contains(got, `"success":true`) {
		t.Fatal(got)
	}
	w.expect(`{"id":8,"command":"mesh/subscribe-record","payload":{"recordId":"r"}}`,
		`{"id":8,"command":"mesh/subscribe-record","payload":{"success":true,"record":null,"version":0}}`)
	if got := sub(9, "b"); !strings.Contains(got, `"error":"too many subscriptions held by this connection",`+limitErr) {
		t.Fatalf("third subscription: %s", got)
	}
	if got := sub(10, "a"); !strings.Contains(got, `"success":true`) {
		t.Fatalf("one it holds: %s", got)
	}
	w.expect(`{"id":11,"command":"mesh/unsubscribe-channel","payload":{"channel":"a"}}`, `{"id":11,"command":"mesh/unsubscribe-channel","payload":true}`)
	if got := sub(12, "c"); !strings.Contains(got, `"success":true`) {
		t.Fatalf("after unsubscribing: %s", got)
	}
	if l := metricLine(reg, `mesh_limit_refusals_total{limit="rooms"}`); !strings.HasSuffix(l, " 1") {
		t.Fatalf("rooms counted: %q", l)
	}
	if l := metricLine(reg, `mesh_limit_refusals_total{limit="subscriptions"}`); !strings.HasSuffix(l, " 1") {
		t.Fatalf("subscriptions counted: %q", l)
	}
}

// The fallback runs for every unregistered command, in order with the
// registered ones, and never for Mesh's own namespace.
func TestExposeFallback(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	s.Expose("known", func(c *Context) (any, error) { return "known", nil })
	s.ExposeFallback(func(c *Context) (any, error) {
		time.Sleep(5 * time.Millisecond) // slower than "known": order must still hold
		return "fallback:" + c.Command + ":" + string(c.Payload), nil
	})
	w := dialWire(t, s)
	w.send(`{"id":1,"command":"chat/send","payload":1}`)
	w.send(`{"id":2,"command":"known"}`)
	w.send(`{"id":3,"command":"mesh/no-such"}`)
	w.send(`{"id":4,"command":"other","payload":{"a":1}}`)
	for _, want := range []string{
		`{"id":1,"command":"chat/send","payload":"fallback:chat/send:1"}`,
		`{"id":2,"command":"known","payload":"known"}`,
		`{"id":3,"command":"mesh/no-such","payload":{"error":"Command \"mesh/no-such\" not found","code":"ENOTFOUND","name":"CommandError"}}`,
		`{"id":4,"command":"other","payload":"fallback:other:{\"a\":1}"}`,
	} {
		if got := w.next(); got != want {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	}
	s.ExposeFallback(nil)
	w.expect(`{"id":5,"command":"other"}`, `{"id":5,"command":"other","payload":{"error":"Command \"other\" not found","code":"ENOTFOUND","name":"CommandError"}}`)
}

// userNodes starts two servers on one memory coordinator, each user taken
// from the "user" query parameter.
func userNodes(t *testing.T) (a, b *Server) {
	co := memory.New(memory.Options{})
	t.Cleanup(func() { _ = co.Close() })
	auth := func(r *engine.Request) (Identity, error) { return Identity{User: r.QueryValue("user")}, nil }
	return startServer(t, Options{Coordinator: co, Authenticate: auth}), startServer(t, Options{Coordinator: co, Authenticate: auth})
}

func dialUser(t *testing.T, s *Server, user string) *wire {
	w, _, err := dialWireWith(t, s, "/?user="+user, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.welcome(s)
	return w
}

// SendToUser reaches every connection of the user on every node, and no
// one else; a node drops its subscription to a user with the user's last
// connection there.
func TestSendToUser(t *testing.T) {
	t.Parallel()
	for _, hooked := range []bool{false, true} {
		t.Run(fmt.Sprint("workers=", hooked), func(t *testing.T) { testSendToUser(t, hooked) })
	}
}

// testSendToUser runs TestSendToUser with registrations on the loop, or
// on the workers with a coordinator slow to register (the connection's
// queue held until its user's subscription is queued: its first command
// must not run first).
func testSendToUser(t *testing.T, workers bool) {
	var a, b *Server
	if workers {
		mem := memory.New(memory.Options{})
		t.Cleanup(func() { _ = mem.Close() })
		co := delayedRegistry{mem}
		auth := func(r *engine.Request) (Identity, error) { return Identity{User: r.QueryValue("user")}, nil }
		a, b = startServer(t, Options{Coordinator: co, Authenticate: auth}), startServer(t, Options{Coordinator: co, Authenticate: auth})
	} else {
		a, b = userNodes(t)
	}
	alice1, alice2, bob := dialUser(t, a, "alice"), dialUser(t, b, "alice"), dialUser(t, b, "bob")
	// The user's subscription is taken in the queue ahead of commands: a
	// command's answer says it is in place.
	for _, w := range []*wire{alice1, alice2, bob} {
		w.expect(`{"id":1,"command":"mesh/get-my-connection-metadata"}`, `{"id":1,"command":"mesh/get-my-connection-metadata","payload":{"metadata":null}}`)
	}
	if err := a.SendToUser(bg(), "alice", "dm", map[string]string{"text": "hi"}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*wire{alice1, alice2} {
		if got := w.next(); got != `{"command":"dm","payload":{"text":"hi"}}` {
			t.Fatalf("alice got %s", got)
		}
	}
	bob.silent(50 * time.Millisecond)
	if err := a.SendToUser(bg(), "nobody", "dm", 1); err != nil {
		t.Fatalf("a user with no connection: %v", err)
	}
	holds := func(s *Server, user string) bool {
		s.subs.mu.Lock()
		defer s.subs.mu.Unlock()
		return s.subs.node[subKey{userSource, user}] != nil
	}
	if !holds(b, "alice") || !holds(b, "bob") || holds(a, "bob") {
		t.Fatal("node subscriptions do not follow the users' connections")
	}
	alice2.c.Close(websocket.StatusNormalClosure, "")
	testutil.Eventually(t, 5*time.Second, func() error {
		if holds(b, "alice") {
			return errors.New("node b still subscribed to alice")
		}
		return nil
	})
	if lt := b.LocalTopics(); lt != (TopicCounts{}) {
		t.Fatalf("a user's subscription counted as a topic: %+v", lt)
	}
}

// Disconnect closes a connection on whichever node has it, with the code
// and reason given; an unknown id is ErrConnectionNotFound.
func TestDisconnectAnyNode(t *testing.T) {
	t.Parallel()
	a, b := userNodes(t)
	local, remote := dialUser(t, a, "u"), dialUser(t, b, "v")
	for _, tc := range []struct {
		w    *wire
		code engine.CloseCode
	}{{local, 4001}, {remote, 4002}} {
		if err := a.Disconnect(bg(), tc.w.id, tc.code, "bye"); err != nil {
			t.Fatal(err)
		}
		_, err := tc.w.read(5 * time.Second)
		var ce websocket.CloseError
		if !errors.As(err, &ce) || int(ce.Code) != int(tc.code) || ce.Reason != "bye" {
			t.Fatalf("%s: %v, want close %d bye", tc.w.id, err, tc.code)
		}
	}
	if err := a.Disconnect(bg(), "conn-nosuch1", 0, ""); !errors.Is(err, ErrConnectionNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if err := a.Disconnect(bg(), local.id, 1005, ""); err == nil {
		t.Fatal("a close code no server may send was accepted")
	}
}

// delayedRegistry is a coordinator whose registrations take a while, and
// that is no LocalRegistry: connections register on the workers.
type delayedRegistry struct{ coord.Coordinator }

func (s delayedRegistry) RegisterConnection(ctx context.Context, connID, nodeID string) error {
	time.Sleep(30 * time.Millisecond)
	return s.Coordinator.RegisterConnection(ctx, connID, nodeID)
}
