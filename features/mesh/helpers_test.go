package mesh

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/internal/testutil"
	"github.com/meshfast/meshfast/protocol"
)

func TestMain(m *testing.M) {
	testutil.VerifyNoLeaks(m)
}

// fastEngine keeps timers fine-grained so liveness tests take milliseconds.
var fastEngine = engine.Options{
	Addr: "127.0.0.1:0", Loops: 2, IdleTimeout: -1, PingInterval: -1,
	TickInterval: 5 * time.Millisecond, SweepPeriod: 5 * time.Millisecond,
}

// startServer runs a Mesh server on 127.0.0.1:0 until the test ends.
func startServer(t testing.TB, o Options) *Server {
	t.Helper()
	e := engine.New(fastEngine)
	if o.PingInterval == 0 {
		o.PingInterval = time.Hour
	}
	if o.LatencyInterval == 0 {
		o.LatencyInterval = time.Hour
	}
	s, err := New(e, o)
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
		_ = s.Close()
	})
	return s
}

// wire is a raw client that checks the exact JSON on the wire.
type wire struct {
	t      testing.TB
	c      *websocket.Conn
	id     string // from mesh/assign-id
	skip   map[string]bool
	frames chan string
	done   chan error
}

var noKeepAlive = &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{KeepAlive: -1}).DialContext}}

func dialWire(t testing.TB, s *Server) *wire {
	t.Helper()
	w, _, err := dialWireWith(t, s, "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	w.welcome(s)
	return w
}

// dialWireWith opens a connection to path (with a query string if any)
// with extra request headers. On a refused handshake it returns the
// server's response (its body read) and the error.
func dialWireWith(t testing.TB, s *Server, path string, h http.Header) (*wire, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, s.Engine().URL()+askID(path), &websocket.DialOptions{HTTPClient: noKeepAlive, HTTPHeader: h})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(16 << 20)
	t.Cleanup(func() { c.CloseNow() })
	w := &wire{t: t, c: c, skip: map[string]bool{"ping": true, "latency": true, "latency:request": true},
		frames: make(chan string, 1024), done: make(chan error, 1)}
	// coder/websocket closes the connection when a Read's context ends,
	// so one goroutine reads and tests wait on the channel instead.
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
	return w, resp, nil
}

// askID adds the query parameter with which a client asks for the
// mesh/assign-id push to path, as meshfast's Go client does.
func askID(path string) string {
	if strings.Contains(path, "?") {
		return path + "&" + protocol.AssignIDParam + "=1"
	}
	return path + "?" + protocol.AssignIDParam + "=1"
}

// welcome reads the mesh/assign-id push and waits until s has the
// connection.
func (w *wire) welcome(s *Server) {
	w.t.Helper()
	first := w.next()
	if !strings.HasPrefix(first, `{"command":"mesh/assign-id","payload":"conn-`) {
		w.t.Fatalf("first frame %s", first)
	}
	var m struct{ Payload string }
	_ = json.Unmarshal([]byte(first), &m)
	w.id = m.Payload
	testutil.Eventually(w.t, 5*time.Second, func() error {
		if s.Connection(w.id) == nil {
			return fmt.Errorf("connection %s not registered", w.id)
		}
		return nil
	})
}

func (w *wire) send(frame string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
		w.t.Fatalf("send: %v", err)
	}
}

// next returns the next frame that is not a skipped push.
func (w *wire) next() string {
	w.t.Helper()
	for {
		s, err := w.read(5 * time.Second)
		if err != nil {
			w.t.Fatalf("read: %v", err)
		}
		var m struct{ Command string }
		_ = json.Unmarshal([]byte(s), &m)
		if !w.skip[m.Command] {
			return s
		}
	}
}

var errTimeout = fmt.Errorf("timed out")

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

// expect sends a frame and checks the exact reply.
func (w *wire) expect(frame, want string) {
	w.t.Helper()
	w.send(frame)
	if got := w.next(); got != want {
		w.t.Fatalf("sent %s\n got %s\nwant %s", frame, got, want)
	}
}

// silent checks that nothing (but skipped pushes) arrives for d.
func (w *wire) silent(d time.Duration) {
	w.t.Helper()
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		s, err := w.read(left)
		if err == errTimeout {
			return
		}
		if err != nil {
			w.t.Fatalf("connection ended while expecting silence: %v", err)
		}
		var m struct{ Command string }
		_ = json.Unmarshal([]byte(s), &m)
		if !w.skip[m.Command] {
			w.t.Fatalf("unexpected frame %s", s)
		}
	}
}

func bg() context.Context { return context.Background() }

// simServer runs a Mesh server with o on the engine's in-process simulator
// (loops event loops, fake sockets) and closes it when tb ends.
func simServer(tb testing.TB, loops int, o Options) (*engine.Simulator, *Server) {
	tb.Helper()
	sim := engine.NewSimulator(engine.Options{Loops: loops})
	s, err := New(sim.Engine(), o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return sim, s
}

// waitRegistered waits until the coordinator knows c.
func waitRegistered(t testing.TB, c *Connection) {
	t.Helper()
	for i := 0; i < 1000 && !c.registered(); i++ {
		runtime.Gosched() // registration is a goroutine away: usually done at once
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if !c.registered() {
			return fmt.Errorf("%s not registered", c.id)
		}
		return nil
	})
}
