package engine

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
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
