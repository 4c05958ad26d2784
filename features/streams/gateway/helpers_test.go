package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/streams"
	"github.com/meshfast/meshfast/internal/testutil"
	"github.com/meshfast/meshfast/protocol/zps"
)

func TestMain(m *testing.M) {
	testutil.VerifyNoLeaks(m)
}

// fastEngine keeps timers fine-grained so limit tests take milliseconds.
var fastEngine = engine.Options{
	Addr: "127.0.0.1:0", Loops: 2, IdleTimeout: -1, PingInterval: -1,
	TickInterval: 5 * time.Millisecond, SweepPeriod: 5 * time.Millisecond,
}

type node struct {
	e  *engine.Engine
	st *streams.Streams
	g  *Gateway
}

// startNode runs an engine with a gateway over st (a memory Streams of its
// own when nil) until the test ends.
func startNode(t testing.TB, o Options, st *streams.Streams) *node {
	t.Helper()
	if st == nil {
		var err error
		if st, err = streams.New(streams.Options{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
	}
	e := engine.New(fastEngine)
	g, err := New(e, st, o)
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
		_ = g.Close()
	})
	return &node{e: e, st: st, g: g}
}

func (n *node) url() string { return n.e.URL() + n.g.o.Path }

// publish stores events through the Go API and returns them as stored.
func (n *node) publish(t testing.TB, room string, count int, typ string) []streams.Event {
	t.Helper()
	out := make([]streams.Event, 0, count)
	for i := range count {
		p, err := n.st.Publish(context.Background(), streams.Message{Room: room, Type: typ,
			Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *p.Event)
	}
	return out
}

// wire is a raw client that sees the exact JSON on the wire.
type wire struct {
	t      testing.TB
	c      *websocket.Conn
	frames chan string
	done   chan error
}

var noKeepAlive = &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{KeepAlive: -1}).DialContext}}

func dial(t testing.TB, n *node) *wire {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, n.url(), &websocket.DialOptions{HTTPClient: noKeepAlive})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(16 << 20)
	t.Cleanup(func() { c.CloseNow() })
	w := &wire{t: t, c: c, frames: make(chan string, 100000), done: make(chan error, 1)}
	go func() {
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				w.done <- err
				close(w.frames)
				return
			}
			w.frames <- string(b)
		}
	}()
	return w
}

// dialInit connects and inits as subscriberID.
func dialInit(t testing.TB, n *node, subscriberID string) *wire {
	t.Helper()
	w := dial(t, n)
	w.expect(`{"type":"init","subscriberId":"`+subscriberID+`"}`, `{"type":"ready","subscriberId":"`+subscriberID+`"}`)
	return w
}

func (w *wire) send(frame string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
		w.t.Fatalf("send: %v", err)
	}
}

var errTimeout = errors.New("timed out")

func (w *wire) read(d time.Duration) (string, error) {
	select {
	case f, ok := <-w.frames:
		if !ok {
			err := <-w.done
			w.done <- err
			return "", err
		}
		return f, nil
	case <-time.After(d):
		return "", errTimeout
	}
}

func (w *wire) next() string {
	w.t.Helper()
	s, err := w.read(10 * time.Second)
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	return s
}

// expect sends frame and checks the exact reply.
func (w *wire) expect(frame, want string) {
	w.t.Helper()
	w.send(frame)
	if got := w.next(); got != want {
		w.t.Fatalf("sent %s\n got %s\nwant %s", frame, got, want)
	}
}

// want checks the next frame exactly.
func (w *wire) want(want string) {
	w.t.Helper()
	if got := w.next(); got != want {
		w.t.Fatalf("\n got %s\nwant %s", got, want)
	}
}

// silent checks that nothing arrives for d.
func (w *wire) silent(d time.Duration) {
	w.t.Helper()
	s, err := w.read(d)
	if err == nil {
		w.t.Fatalf("unexpected frame %s", s)
	}
	if err != errTimeout {
		w.t.Fatalf("connection ended while expecting silence: %v", err)
	}
}

// closed waits for the connection's end and returns its close code.
func (w *wire) closed() websocket.StatusCode {
	w.t.Helper()
	for {
		_, err := w.read(10 * time.Second)
		if err == errTimeout {
			w.t.Fatal("connection still open")
		}
		if err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

// eventMsg is what a subscriber receives for ev.
func eventMsg(ev *streams.Event) string { return string(zps.AppendEventMessage(nil, ev)) }

// seqOf reads an event message's room and sequence.
func seqOf(t testing.TB, frame string) (string, uint64) {
	t.Helper()
	var m zps.ServerMessage
	if err := zps.DecodeServerMessage([]byte(frame), &m); err != nil || m.Type != zps.TypeEvent {
		t.Fatalf("not an event: %s (%v)", frame, err)
	}
	return m.Event.Room, m.Event.Sequence
}

func errMsg(message, code string) string { return string(zps.AppendError(nil, message, code)) }

func bg() context.Context { return context.Background() }

func isEvent(frame string) bool { return strings.HasPrefix(frame, `{"type":"event",`) }
