package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meshfast/meshfast/client"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/internal/ssetest"
	"github.com/meshfast/meshfast/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.VerifyNoLeaks(m)
}

// node is a running engine and Realtime.
type node struct {
	e  *engine.Engine
	rt *Realtime
}

// startNode runs a Realtime on 127.0.0.1:0 until the test ends. Mesh's
// pings are off unless o says otherwise.
func startNode(t testing.TB, o Options) *node {
	t.Helper()
	e := engine.New(engine.Options{
		Addr: "127.0.0.1:0", Loops: 2, IdleTimeout: -1, PingInterval: -1,
		TickInterval: 10 * time.Millisecond, SweepPeriod: 10 * time.Millisecond,
	})
	if o.Mesh.PingInterval == 0 && o.WebSocket.Heartbeat == 0 {
		o.Mesh.PingInterval = time.Hour
	}
	if o.Mesh.LatencyInterval == 0 {
		o.Mesh.LatencyInterval = time.Hour
	}
	rt, err := New(e, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
		_ = rt.Close()
	})
	return &node{e: e, rt: rt}
}

func (n *node) addr() string { return n.e.Addr().String() }

// stream opens an SSE stream on target ("/events?channel=x") and reads its
// head.
func (n *node) stream(t testing.TB, target string, headers ...string) *ssetest.Client {
	t.Helper()
	c, err := ssetest.Dial(n.addr(), target, "", append([]string{"Accept: text/event-stream"}, headers...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if st, err := c.ReadHead(5 * time.Second); err != nil || st != 200 {
		t.Fatalf("GET %s: %d %v\n%s", target, st, err, c.Head)
	}
	return c
}

// refused opens target expecting the status want, and returns the body.
func (n *node) refused(t testing.TB, target string, want int, headers ...string) string {
	t.Helper()
	c, err := ssetest.Dial(n.addr(), target, "", append([]string{"Accept: text/event-stream"}, headers...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.ReadHead(5 * time.Second)
	if err != nil || st != want {
		t.Fatalf("GET %s: %d %v, want %d\n%s", target, st, err, want, c.Head)
	}
	b, _ := c.ReadBody(time.Second)
	return string(b)
}

// readyEvent is the data of a stream's first event.
type readyEvent struct {
	ID       string   `json:"id"`
	Channels []string `json:"channels"`
	Resumed  string   `json:"resumed"`
	Replayed int      `json:"replayed"`
	Missed   bool     `json:"missed"`
}

// ready reads a stream's first event.
func ready(t testing.TB, c *ssetest.Client) readyEvent {
	t.Helper()
	ev := next(t, c)
	if ev.Type != "ready" {
		t.Fatalf("first event %+v, want ready", ev)
	}
	var r readyEvent
	if err := json.Unmarshal([]byte(ev.Data), &r); err != nil {
		t.Fatalf("ready data %q: %v", ev.Data, err)
	}
	return r
}

func next(t testing.TB, c *ssetest.Client) ssetest.Event {
	t.Helper()
	ev, err := c.Next(5 * time.Second)
	if err != nil {
		t.Fatalf("next event: %v (so far %q)", err, c.Raw.String())
	}
	return ev
}

// meshClient connects a Mesh client to the node.
func (n *node) meshClient(t testing.TB, query string) *client.Client {
	t.Helper()
	c := client.New(n.e.URL()+"/"+query, client.Options{})
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// userAuth names the user from the query string's "user", refusing
// "nobody" with 401.
func userAuth(r *engine.Request) (mesh.Identity, error) {
	u := r.QueryValue("user")
	if u == "nobody" {
		return mesh.Identity{}, mesh.Refuse(401, "who are you?", "WWW-Authenticate: Bearer")
	}
	return mesh.Identity{User: u}, nil
}

// clean waits until the node holds nothing for streams: no connection,
// no channel state, no user index, no channel subscription.
func (n *node) clean(t testing.TB) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error {
		n.rt.chanMu.RLock()
		chans := len(n.rt.chans)
		n.rt.chanMu.RUnlock()
		n.rt.usersMu.Lock()
		users := len(n.rt.users)
		n.rt.usersMu.Unlock()
		st := n.e.Stats()
		topics := n.rt.ms.LocalTopics()
		if chans != 0 || users != 0 || st.Connections != 0 || topics.Channels != 0 || n.rt.sse.Streams() != 0 {
			return fmt.Errorf("%d channel states, %d users, %d connections, %d node channel subscriptions, %d streams counted",
				chans, users, st.Connections, topics.Channels, n.rt.sse.Streams())
		}
		return nil
	})
}

// collect gathers channel messages a Mesh client receives.
type collect chan string

func (c collect) fn(m string) { c <- m }

func (c collect) next(t testing.TB) string {
	t.Helper()
	select {
	case m := <-c:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no channel message")
		return ""
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
