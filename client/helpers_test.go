package client

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/meshfast/meshfast/protocol"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor bounds every wait in these tests.
const waitFor = 5 * time.Second

// frame is one frame the client sent to the fake server.
type frame struct {
	raw     string
	id      int64
	hasID   bool
	cmd     string
	payload string
}

// fakeServer is a scripted Mesh server on 127.0.0.1:0.
type fakeServer struct {
	t     *testing.T
	srv   *httptest.Server
	url   string
	conns chan *fakeConn
	opts  fakeOptions

	refuse   atomic.Int32 // refuse this many coming handshakes (HTTP 503)
	accepted atomic.Int32 // connections accepted so far

	mu      sync.Mutex
	all     []*fakeConn
	closing bool
	wg      sync.WaitGroup
}

type fakeOptions struct {
	// assignID sends mesh/assign-id "conn-<n>" on every connection.
	assignID bool
	// respond, if set, is called for every client frame (on the
	// connection's read goroutine) before the frame is queued for the test.
	respond func(fc *fakeConn, f frame)
}

// fakeConn is one client connection as the fake server sees it.
type fakeConn struct {
	t      *testing.T
	ws     *websocket.Conn
	id     string
	frames chan frame
	closed chan struct{}
}

func newFakeServer(t *testing.T, o fakeOptions) *fakeServer {
	t.Helper()
	s := &fakeServer{t: t, conns: make(chan *fakeConn, 64), opts: o}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle)) // binds 127.0.0.1:0
	s.url = "ws" + strings.TrimPrefix(s.srv.URL, "http")
	t.Cleanup(s.close)
	return s
}

func (s *fakeServer) handle(w http.ResponseWriter, r *http.Request) {
	s.wg.Add(1)
	defer s.wg.Done()
	if s.refuse.Load() > 0 {
		s.refuse.Add(-1)
		http.Error(w, "not now", http.StatusServiceUnavailable)
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(-1)
	n := s.accepted.Add(1)
	fc := &fakeConn{t: s.t, ws: ws, id: fmt.Sprintf("conn-%d", n), frames: make(chan frame, 1024), closed: make(chan struct{})}
	defer close(fc.closed)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ws.CloseNow()
		return
	}
	s.all = append(s.all, fc)
	s.mu.Unlock()
	if s.opts.assignID {
		fc.sendBytes(protocol.AppendAssignID(nil, fc.id))
	}
	select {
	case s.conns <- fc:
	default:
		s.t.Errorf("fake server: more than %d connections not taken by the test", cap(s.conns))
	}
	for {
		_, data, err := ws.Read(context.Background())
		if err != nil {
			return
		}
		f := parseFrame(s.t, data)
		if s.opts.respond != nil {
			s.opts.respond(fc, f)
		}
		fc.frames <- f
	}
}

func (s *fakeServer) close() {
	s.srv.Close()
	s.mu.Lock()
	s.closing = true
	all := s.all
	s.mu.Unlock()
	for _, fc := range all {
		fc.ws.CloseNow()
	}
	s.wg.Wait()
}

func parseFrame(t *testing.T, data []byte) frame {
	var m protocol.Message
	if err := protocol.Decode(data, &m); err != nil {
		t.Errorf("client sent an undecodable frame %q: %v", data, err)
		return frame{raw: string(data)}
	}
	return frame{raw: string(data), id: m.ID, hasID: m.HasID, cmd: string(m.Command), payload: string(m.Payload)}
}

// accept returns the next connection the server accepted.
func (s *fakeServer) accept(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case fc := <-s.conns:
		return fc
	case <-time.After(waitFor):
		t.Fatal("no connection to the fake server")
		return nil
	}
}

func (fc *fakeConn) sendBytes(b []byte) {
	_ = fc.ws.Write(context.Background(), websocket.MessageText, b)
}

// send sends a raw text frame to the client.
func (fc *fakeConn) send(raw string) { fc.sendBytes([]byte(raw)) }

// reply answers f with payload (raw JSON).
func (fc *fakeConn) reply(f frame, payload string) {
	fc.sendBytes(protocol.AppendReply(nil, f.id, f.cmd, []byte(payload)))
}

// next returns the next frame the client sent.
func (fc *fakeConn) next(t *testing.T) frame {
	t.Helper()
	select {
	case f := <-fc.frames:
		return f
	case <-time.After(waitFor):
		t.Fatal("the client sent nothing")
		return frame{}
	}
}

// expect returns the next frame, which must be the command cmd.
func (fc *fakeConn) expect(t *testing.T, cmd string) frame {
	t.Helper()
	f := fc.next(t)
	if f.cmd != cmd {
		t.Fatalf("client sent %s, want command %q", f.raw, cmd)
	}
	return f
}

// expectRaw returns the next frame, which must be exactly want with %d
// standing for its id.
func (fc *fakeConn) expectRaw(t *testing.T, want string) frame {
	t.Helper()
	f := fc.next(t)
	if !f.hasID {
		t.Fatalf("client sent %s without id, want %s", f.raw, want)
	}
	if w := fmt.Sprintf(want, f.id); f.raw != w {
		t.Fatalf("client sent\n  %s\nwant\n  %s", f.raw, w)
	}
	return f
}

// quiet fails if the client sends a frame within d.
func (fc *fakeConn) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case f := <-fc.frames:
		t.Fatalf("unexpected frame %s", f.raw)
	case <-time.After(d):
	}
}

// drop closes the connection without a close handshake.
func (fc *fakeConn) drop() { fc.ws.CloseNow() }

// replies is a respond func answering commands from a table of raw JSON
// payloads; commands not in it are left to the test.
func replies(table map[string]string) func(*fakeConn, frame) {
	return func(fc *fakeConn, f frame) {
		if p, ok := table[f.cmd]; ok && f.hasID {
			fc.reply(f, p)
		}
	}
}

// newClient returns a client for s, closed (and waited for) at cleanup.
func newClient(t *testing.T, url string, o Options) *Client {
	t.Helper()
	c := New(url, o)
	t.Cleanup(func() {
		c.Close()
		select {
		case <-c.Done():
		case <-time.After(waitFor):
			t.Error("client did not finish closing")
		}
	})
	return c
}

// connected returns a connected client for s and the server side of its
// connection.
func connected(t *testing.T, s *fakeServer, o Options) (*Client, *fakeConn) {
	t.Helper()
	c := newClient(t, s.url, o)
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return c, s.accept(t)
}

// ctxT returns a context canceled at the end of the test.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recorder collects values from callbacks.
type recorder[T any] struct {
	mu    sync.Mutex
	items []T
}

func (r *recorder[T]) add(v T) {
	r.mu.Lock()
	r.items = append(r.items, v)
	r.mu.Unlock()
}

func (r *recorder[T]) get() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.items...)
}

func (r *recorder[T]) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.items)
}

// wait waits until n values were recorded and returns them.
func (r *recorder[T]) wait(t *testing.T, n int) []T {
	t.Helper()
	eventually(t, fmt.Sprintf("%d callback calls", n), func() bool { return r.len() >= n })
	return r.get()
}

// async runs f on a goroutine and returns a channel of its error.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func waitErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(waitFor):
		t.Fatal("call did not return")
		return nil
	}
}
