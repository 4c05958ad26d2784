package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfast/meshfast/internal/testutil"
)

// pauser pauses a connection after every message it is handed and records
// what it saw; the test resumes it from another goroutine.
type pauser struct {
	Echo
	conns chan *Conn
	seen  chan string
}

func (p *pauser) OnOpen(c *Conn, _ *Request) { p.conns <- c }
func (p *pauser) OnMessage(c *Conn, _ OpCode, b []byte) {
	c.PauseReading()
	p.seen <- string(b)
}

// A paused connection's messages wait in order until ResumeReading, which
// any goroutine may call; one message is handed over per resume here.
func TestPauseResumeReading(t *testing.T) {
	t.Parallel()
	p := &pauser{conns: make(chan *Conn, 1), seen: make(chan string, 16)}
	e := startEngine(t, Options{}, p)
	rc := rawDial(t, e, "/ws")
	c := <-p.conns
	for i := 0; i < 5; i++ {
		rc.send(clientFrame(0x81, true, []byte(fmt.Sprint(i))))
	}
	for i := 0; i < 5; i++ {
		select {
		case got := <-p.seen:
			if got != fmt.Sprint(i) {
				t.Fatalf("message %d: got %q", i, got)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d never delivered", i)
		}
		// Paused: nothing more arrives until the resume.
		select {
		case got := <-p.seen:
			t.Fatalf("message %q delivered while paused", got)
		case <-time.After(20 * time.Millisecond):
		}
		c.ResumeReading()
	}
	// After the last resume the connection reads again: a ping is answered.
	rc.send(clientFrame(0x89, true, []byte("p")))
	if op, b, err := rc.readFrame(); err != nil || op != OpPong || string(b) != "p" {
		t.Fatalf("after resume: op %v %q %v, want the pong", op, b, err)
	}
}

// A handler that closes the connection while frames that waited are parsed
// on resume closes it cleanly (close frame sent, OnClose once).
func TestResumeReadingClose(t *testing.T) {
	t.Parallel()
	closes := make(chan CloseInfo, 2)
	h := &closingPauser{pauser: pauser{conns: make(chan *Conn, 1), seen: make(chan string, 16)}, closes: closes}
	e := startEngine(t, Options{}, h)
	rc := rawDial(t, e, "/ws")
	c := <-h.conns
	rc.send(clientFrame(0x81, true, []byte("first")))
	rc.send(clientFrame(0x81, true, []byte("close")))
	<-h.seen
	c.ResumeReading()
	if code := rc.expectClose(); code != CloseNormal {
		t.Fatalf("close code %d, want 1000", code)
	}
	rc.send(clientFrame(0x88, true, []byte{0x03, 0xe8}))
	select {
	case <-closes:
	case <-time.After(5 * time.Second):
		t.Fatal("OnClose never ran")
	}
}

type closingPauser struct {
	pauser
	closes chan CloseInfo
}

func (p *closingPauser) OnMessage(c *Conn, op OpCode, b []byte) {
	if string(b) == "close" {
		c.Close(CloseNormal, "bye")
		return
	}
	p.pauser.OnMessage(c, op, b)
}
func (p *closingPauser) OnClose(_ *Conn, info CloseInfo) { p.closes <- info }

// DoWait runs the function on the connection's loop and says so; on a
// closed connection it reports false without running it.
func TestDoWait(t *testing.T) {
	t.Parallel()
	p := &pauser{conns: make(chan *Conn, 1), seen: make(chan string, 16)}
	e := startEngine(t, Options{}, p)
	rc := rawDial(t, e, "/ws")
	c := <-p.conns
	var ran atomic.Int32
	if !c.DoWait(func(cc *Conn) {
		if cc != c || cc.loop.current != nil && cc.loop.current != cc {
			t.Error("DoWait ran with the wrong connection")
		}
		ran.Add(1)
	}) || ran.Load() != 1 {
		t.Fatalf("DoWait on an open connection: ran %d times", ran.Load())
	}
	rc.nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !c.Closed() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if c.DoWait(func(*Conn) { ran.Add(1) }) || ran.Load() != 1 {
		t.Fatalf("DoWait on a closed connection reported true or ran (%d)", ran.Load())
	}
}

// A refusal from CheckHandshake carries its extra headers.
func TestHTTPErrorHeaders(t *testing.T) {
	t.Parallel()
	e := startEngine(t, Options{}, refuser{})
	status, _, head := rawUpgrade(t, e, "/ws")
	if status != 401 || !strings.Contains(head, "WWW-Authenticate: Bearer realm=\"meshfast\"\r\n") {
		t.Fatalf("status %d, head %q: want 401 with WWW-Authenticate", status, head)
	}
}

type refuser struct{ Echo }

func (refuser) CheckHandshake(*Request) error {
	return &HTTPError{Status: 401, Message: "token required", Headers: []string{`WWW-Authenticate: Bearer realm="meshfast"`}}
}

func TestRequestCookie(t *testing.T) {
	var r Request
	head := "GET / HTTP/1.1\r\nHost: x\r\nCookie: a=1; session=\"abc\"\r\nCookie: b=2\r\n\r\n"
	if err := parseRequestHead([]byte(head), &r); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a": "1", "session": "abc", "b": "2", "c": "", "sess": ""} {
		if got := r.Cookie(name); got != want {
			t.Errorf("Cookie(%q) = %q, want %q", name, got, want)
		}
	}
}

// rawUpgrade sends an upgrade request on a raw socket and returns the
// answer's status, body and head as sent.
func rawUpgrade(t testing.TB, e *Engine, path string) (status int, body, head string) {
	t.Helper()
	nc, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	raw, _ := io.ReadAll(nc)
	h, b, _ := strings.Cut(string(raw), "\r\n\r\n")
	if _, err := fmt.Sscanf(h, "HTTP/1.1 %d", &status); err != nil {
		t.Fatalf("answer %q: %v", raw, err)
	}
	return status, b, h + "\r\n"
}

// holdFirst pauses its connection at the first message and records the
// sequence numbers of all it is handed.
type holdFirst struct {
	nopHandler
	conns chan *Conn
	mu    sync.Mutex
	seqs  []uint64
	held  bool
}

func (h *holdFirst) OnOpen(c *Conn, _ *Request) { h.conns <- c }
func (h *holdFirst) OnMessage(c *Conn, _ OpCode, p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seqs = append(h.seqs, binary.BigEndian.Uint64(p))
	if !h.held {
		h.held = true
		c.PauseReading()
	}
}

func (h *holdFirst) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seqs)
}

// A paused connection's socket is not read (third_party/gnet): a client
// that keeps sending is held back by TCP, its writes block, and the server
// holds no more of its input than one read, also after gnet has waited to
// write to it (its own poller calls must not turn reading back on); after
// ResumeReading every message arrives, in order.
func TestPausedSocketBackpressure(t *testing.T) {
	t.Parallel()
	h := &holdFirst{conns: make(chan *Conn, 1)}
	e := startEngine(t, Options{Loops: 1, MaxPendingBytes: 16 << 20}, h)
	rc := rawDial(t, e, "/ws")
	c := <-h.conns
	const frames, size = 1024, 16 << 10 // 16 MiB
	var stream []byte
	payload := make([]byte, size)
	for i := range frames {
		binary.BigEndian.PutUint64(payload, uint64(i))
		stream = append(stream, clientFrame(0x82, true, payload)...)
	}
	sent := 0
	writeBlocks := func() {
		t.Helper()
		_ = rc.nc.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := rc.nc.Write(stream[sent:])
		sent += n
		if !errors.Is(err, os.ErrDeadlineExceeded) || sent >= len(stream) {
			t.Fatalf("the client wrote %d of %d bytes to a paused connection (%v): its writes should block", sent, len(stream), err)
		}
		var buffered int
		if !c.DoWait(func(c *Conn) { buffered = c.sock.InboundBuffered() }) {
			t.Fatal("connection closed")
		}
		if limit := 2 * DefaultReadBufferCap; buffered > limit {
			t.Fatalf("the server holds %d bytes of a paused connection's input, want at most %d", buffered, limit)
		}
		if got := h.count(); got != 1 {
			t.Fatalf("%d messages handed over while paused, want 1", got)
		}
	}
	writeBlocks()
	t.Logf("%d of %d bytes written before the client's writes blocked", sent, len(stream))

	// A reply too large for the kernel's buffers (2 MiB is not, here): gnet
	// waits for the socket to be writable, then, drained, goes back to
	// waiting for reads only, it thinks.
	big := make([]byte, 8<<20)
	if !c.DoWait(func(c *Conn) { _ = c.WriteBinary(big) }) {
		t.Fatal("connection closed")
	}
	if op, p, err := rc.readFrame(); err != nil || op != OpBinary || len(p) != len(big) {
		t.Fatalf("reply: %v, %d bytes, %v", op, len(p), err)
	}
	writeBlocks()

	c.ResumeReading()
	_ = rc.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := rc.nc.Write(stream[sent:]); err != nil {
		t.Fatalf("writing the rest after ResumeReading: %v", err)
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		if got := h.count(); got != frames {
			return fmt.Errorf("%d of %d messages", got, frames)
		}
		return nil
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, s := range h.seqs {
		if s != uint64(i) {
			t.Fatalf("message %d carried sequence %d", i, s)
		}
	}
}

// On a transport that cannot stop reading (upstream gnet; here the
// simulator), a paused connection's unparsed input is bounded by
// MaxPausedBytes: past it the connection is closed with 1008.
func TestPausedInputBound(t *testing.T) {
	s := NewSimulator(Options{})
	h := &holdFirst{conns: make(chan *Conn, 1)}
	sc := s.Open(h)
	out := &captureConn{SimConn: sc}
	sc.conn.sock = out
	limit := s.Engine().Options().MaxPausedBytes
	if want := DefaultMaxMessageSize + DefaultReadBufferCap + maxHeaderSize; limit != max(want, DefaultMaxPausedBytes) {
		t.Fatalf("default MaxPausedBytes %d", limit)
	}
	frame := clientFrame(0x82, true, make([]byte, 64<<10))
	fed := 0
	for !s.Feed(sc, frame) && fed <= limit+len(frame) {
		fed += len(frame)
		if sc.conn.state != stateOpen {
			break
		}
	}
	if sc.conn.state == stateOpen || sc.conn.closeReason != ReasonLimit || sc.conn.closeCode != ClosePolicyViolation {
		t.Fatalf("after %d bytes fed to a paused connection: state %d, reason %v, code %d; want it closing with 1008 (limit)",
			fed, sc.conn.state, sc.conn.closeReason, sc.conn.closeCode)
	}
	if fed < limit-len(frame) {
		t.Fatalf("closed after %d bytes, under MaxPausedBytes %d", fed, limit)
	}
	if h.count() != 1 {
		t.Fatalf("%d messages handed over while paused", h.count())
	}
}

// A paused connection is neither idle nor pinged while paused: the engine
// is not reading it, so its silence is the server's doing. Once resumed,
// the idle timeout applies again from the resume.
func TestPausedConnectionNotIdle(t *testing.T) {
	t.Parallel()
	p := &pauser{conns: make(chan *Conn, 1), seen: make(chan string, 16)}
	closes := make(chan CloseInfo, 1)
	h := &idleRecorder{pauser: p, closes: closes}
	e := startEngine(t, Options{IdleTimeout: 300 * time.Millisecond, PingInterval: 100 * time.Millisecond,
		TickInterval: 10 * time.Millisecond, SweepPeriod: 20 * time.Millisecond}, h)
	rc := rawDial(t, e, "/ws")
	c := <-p.conns
	rc.send(clientFrame(0x81, true, []byte("pause me")))
	<-p.seen
	// Paused for several idle timeouts: nothing arrives (no ping, no close).
	_ = rc.nc.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := rc.br.ReadByte(); err == nil {
		t.Fatal("a paused connection was sent something (a ping or a close)")
	}
	select {
	case info := <-closes:
		t.Fatalf("paused connection closed: %+v", info)
	default:
	}
	c.ResumeReading()
	// Resumed and silent: now it is pinged, then closed as idle.
	select {
	case info := <-closes:
		if info.Reason != ReasonIdleTimeout {
			t.Fatalf("closed for %v, want idle timeout", info.Reason)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a resumed, silent connection was never closed as idle")
	}
}

type idleRecorder struct {
	*pauser
	closes chan CloseInfo
}

func (h *idleRecorder) OnClose(_ *Conn, info CloseInfo) { h.closes <- info }
