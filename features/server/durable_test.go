package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/meshfast/meshfast/client"
	"github.com/meshfast/meshfast/internal/ssetest"
	"github.com/meshfast/meshfast/internal/testutil"
)

// Durable channels on nodes that share a Redis: stored in Redis Streams,
// resumed by the Go client on whichever node it reconnects to, while
// Mesh's clients see Mesh's frames.

const durableChannel = "orders:eu"

// durableConfig is multiConfig with the durable channel exposed, as the
// configuration file says it: {name: orders:eu, history: 5, durable: true}.
func durableConfig(t *testing.T, url string) Config {
	t.Helper()
	l := NewLoader()
	if err := l.LoadFile("durable.yaml", []byte("expose:\n  channels:\n    - {name: "+durableChannel+", history: 5, durable: true}\n")); err != nil {
		t.Fatal(err)
	}
	cfg := multiConfig(url)
	cfg.Expose.Channels = append(l.Settings.Node.Expose.Channels, cfg.Expose.Channels...)
	return cfg
}

// got collects a Go client's channel messages.
type got struct {
	mu   sync.Mutex
	msgs []client.ChannelMessage
}

func (g *got) add(m client.ChannelMessage) {
	g.mu.Lock()
	g.msgs = append(g.msgs, m)
	g.mu.Unlock()
}

func (g *got) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.msgs)
}

// exactly waits for n messages and checks they are the channel's 1..n
// ("m<i>" at sequence i), each once, in order.
func (g *got) exactly(t *testing.T, n int) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, func() error {
		if l := g.len(); l < n {
			return fmt.Errorf("%d of %d messages", l, n)
		}
		return nil
	})
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.msgs) != n {
		t.Fatalf("%d messages, want %d", len(g.msgs), n)
	}
	for i, m := range g.msgs {
		if m.Sequence != uint64(i+1) || m.Message != fmt.Sprint("m", i+1) {
			t.Fatalf("message %d is %+v, want m%d at sequence %d", i, m, i+1, i+1)
		}
	}
}

// atLeast waits for n messages.
func (g *got) atLeast(t *testing.T, n int) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, func() error {
		if l := g.len(); l < n {
			return fmt.Errorf("%d of %d messages", l, n)
		}
		return nil
	})
}

// durableClient connects a Go client through px, reconnecting fast, and
// subscribes it to the durable channel.
func durableClient(t *testing.T, px *testutil.Proxy, g *got) *client.Client {
	t.Helper()
	c := client.New("ws://"+px.Addr+"/", client.Options{AwaitConnectionID: true,
		ReconnectDelay: time.Millisecond, MaxReconnectDelay: 20 * time.Millisecond,
		Dialer: (&net.Dialer{KeepAlive: -1}).DialContext})
	t.Cleanup(func() { _ = c.Close() })
	ctx := tctx(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := c.SubscribeChannelMessages(ctx, durableChannel, g.add)
	if err != nil || !r.Durable {
		t.Fatalf("subscribe: %+v, %v", r, err)
	}
	return c
}

// publishing publishes m<from>..m<to> on nd, on a goroutine; wait for it
// with the returned function.
func publishing(t *testing.T, nd *Node, from, to int) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := from; i <= to; i++ {
			if err := nd.PublishToChannel(context.Background(), durableChannel, fmt.Sprint("m", i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	return func() { <-done }
}

// meshWire is a raw connection speaking as Mesh's JavaScript client does
// (no query string: it never asks for its id), recording every frame.
type meshWire struct {
	ws     *websocket.Conn
	frames chan string
}

func dialMesh(t *testing.T, nd *Node) *meshWire {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+nd.Addr().String()+"/", &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{KeepAlive: -1}).DialContext}}})
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	w := &meshWire{ws: ws, frames: make(chan string, 4096)}
	go func() {
		defer close(w.frames)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			if s := string(b); !strings.HasPrefix(s, `{"command":"ping"`) && !strings.HasPrefix(s, `{"command":"latency`) {
				w.frames <- s
			}
		}
	}()
	return w
}

func (w *meshWire) send(t *testing.T, frame string) {
	t.Helper()
	if err := w.ws.Write(tctx(t), websocket.MessageText, []byte(frame)); err != nil {
		t.Fatal(err)
	}
}

func (w *meshWire) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-w.frames:
		if got != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	case <-time.After(wait):
		t.Fatalf("no frame; want %s", want)
	}
}

// A Go client subscribed to a durable channel on node A, with the
// publisher on A, loses its connection twice and comes back on node B:
// once while messages are in flight, once for longer than the node keeps
// in memory. It ends with every message once, in order. A Mesh client on
// B gets Mesh's frames throughout, and the history from the stream.
func TestDurableChannelAcrossNodes(t *testing.T) {
	r := singleRedis(t)
	a := startNode(t, durableConfig(t, r.url))
	b := startNode(t, durableConfig(t, r.url))
	px := testutil.StartProxy(t, a.Addr().String())
	var g got
	durableClient(t, px, &g)
	mesh := dialMesh(t, b)
	mesh.send(t, `{"id":1,"command":"mesh/subscribe-channel","payload":{"channel":"orders:eu"}}`)
	mesh.expect(t, `{"id":1,"command":"mesh/subscribe-channel","payload":{"success":true,"history":[]}}`)

	done := publishing(t, a, 1, 300)
	g.atLeast(t, 50)
	px.Retarget(b.Addr().String())
	px.Drop()
	done()
	g.exactly(t, 300)

	px.Retarget("127.0.0.1:1") // refused: the client stays away
	px.Drop()
	publishing(t, a, 301, 1000)()
	px.Retarget(b.Addr().String())
	publishing(t, a, 1001, 1200)()
	g.exactly(t, 1200)

	for i := 1; i <= 1200; i++ {
		mesh.expect(t, fmt.Sprintf(`{"command":"mesh/subscription-message","payload":{"channel":"orders:eu","message":"m%d"}}`, i))
	}
	// History from the stream, bounded by the exposure's 5.
	mesh.send(t, `{"id":2,"command":"mesh/subscribe-channel","payload":{"channel":"orders:eu","historyLimit":100}}`)
	mesh.expect(t, `{"id":2,"command":"mesh/subscribe-channel","payload":{"success":true,"history":["m1200","m1199","m1198","m1197","m1196"]}}`)
}

// The node a Go client is on shuts down and another starts in its place
// on the same Redis, while a node beside them publishes: the client
// resumes on the new node with nothing lost or repeated.
func TestDurableChannelNodeRestart(t *testing.T) {
	r := singleRedis(t)
	pub := startNode(t, durableConfig(t, r.url))
	cfg := durableConfig(t, r.url)
	cfg.Engine.Addr = "127.0.0.1:0"
	first, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	px := testutil.StartProxy(t, first.Addr().String())
	var g got
	durableClient(t, px, &g)

	done := publishing(t, pub, 1, 300)
	g.atLeast(t, 100)
	px.Retarget("127.0.0.1:1")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := first.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	done()
	publishing(t, pub, 301, 900)()
	second := startNode(t, durableConfig(t, r.url))
	px.Retarget(second.Addr().String())
	publishing(t, pub, 901, 1000)()
	g.exactly(t, 1000)
}

// A durable channel's name must be a stream room.
func TestDurableChannelConfig(t *testing.T) {
	l := NewLoader()
	err := l.LoadFile("c.yaml", []byte("expose:\n  channels:\n    - {name: lobby, durable: true}\n"))
	if err == nil {
		err = l.Validate()
	}
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), `durable channel "lobby": its name must be scope:resourceId`) {
		t.Fatalf("got %v", err)
	}
}

// A Server-Sent Events stream on a durable channel gets its messages live,
// through the topic of the channel's Mesh frames.
func TestDurableChannelReachesStreams(t *testing.T) {
	n := startNode(t, Config{Expose: Exposures{Channels: []ChannelExposure{{Exposure: Exposure{Name: durableChannel}, Durable: true}}}})
	c, err := ssetest.Dial(n.Addr().String(), "/events?channel="+durableChannel, "", "Accept: text/event-stream")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if st, err := c.ReadHead(wait); err != nil || st != 200 {
		t.Fatalf("GET: %d %v\n%s", st, err, c.Head)
	}
	if ev, err := c.Next(wait); err != nil || ev.Type != "ready" {
		t.Fatalf("first event %+v %v", ev, err)
	}
	if err := n.PublishToChannel(tctx(t), durableChannel, "hello"); err != nil {
		t.Fatal(err)
	}
	if ev, err := c.Next(wait); err != nil || ev.Type != "message" || ev.Data != "hello" {
		t.Fatalf("got %+v %v", ev, err)
	}
}
