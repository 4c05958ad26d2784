package engine

import (
	"errors"
	"testing"
	"time"
)

// owingConn is a socket whose peer reads nothing: of each write the kernel
// takes up to room bytes, the rest is owed; owe adds bytes owed from
// elsewhere (written around the write path).
type owingConn struct {
	*SimConn
	room    int
	owed    int
	written int // bytes handed to Write and Writev
}

func (c *owingConn) Write(b []byte) (int, error) { return c.take(len(b)), nil }
func (c *owingConn) Writev(bs [][]byte) (int, error) {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	return c.take(n), nil
}

func (c *owingConn) take(n int) int {
	c.written += n
	k := min(n, c.room)
	c.room -= k
	c.owed += n - k
	return n
}

func (c *owingConn) OutboundBuffered() int { return c.owed }

// slowSetup opens a connection on a socket that owes what it cannot take,
// with MaxPendingBytes 1000.
func slowSetup(t *testing.T) (*Simulator, *SimConn, *owingConn, *closeRecorder) {
	t.Helper()
	s := NewSimulator(Options{MaxPendingBytes: 1000})
	rec := &closeRecorder{ch: make(chan CloseInfo, 1)}
	sc := s.Open(rec)
	out := &owingConn{SimConn: sc}
	sc.conn.sock = out
	return s, sc, out, rec
}

// send queues a binary message of n bytes (n-4 of payload and a 4-byte
// header) on c's loop, as a handler or a posted task would, and flushes.
func send(c *Conn, n int) error {
	l := c.loop
	l.enter()
	defer l.leave()
	return c.WriteBinary(make([]byte, n-4))
}

func closedSlow(t *testing.T, rec *closeRecorder) bool {
	t.Helper()
	select {
	case info := <-rec.ch:
		if info.Reason != ReasonSlowConsumer {
			t.Fatalf("closed for %v", info.Reason)
		}
		return true
	default:
		return false
	}
}

// A frame queued while the socket owes nothing is admitted whatever its
// size, and what the socket then owes of it is not held against the cap:
// a client that reads promptly is not slow for one large frame. Frames
// queued while it drains count as usual, so a client that stops reading
// is still closed once the cap's worth more has piled up.
func TestOversizedFrameOnEmptyBacklog(t *testing.T) {
	_, sc, out, rec := slowSetup(t)
	c := sc.Conn()
	out.room = 1000
	if err := send(c, 5000); err != nil || closedSlow(t, rec) {
		t.Fatalf("a 5000-byte frame on an empty backlog (cap 1000): %v", err)
	}
	if out.owed != 4000 {
		t.Fatalf("socket owes %d, want 4000", out.owed)
	}
	// While it drains, 1000 more may queue, and no more.
	for i := range 2 {
		if err := send(c, 500); err != nil || closedSlow(t, rec) {
			t.Fatalf("frame %d of 500 bytes while the large one drains: %v", i, err)
		}
	}
	if err := send(c, 500); err == nil || !closedSlow(t, rec) {
		t.Fatalf("a third 500-byte frame, the cap's worth past the large one: %v, want a slow consumer", err)
	}
}

// Once the large frame has drained, the next one gets the same chance; a
// second large frame while the first is still owed does not.
func TestOversizedFrameOncePerBacklog(t *testing.T) {
	_, sc, out, rec := slowSetup(t)
	c := sc.Conn()
	out.room = 1000
	if err := send(c, 5000); err != nil {
		t.Fatal(err)
	}
	out.owed, out.room = 0, 1000 // the client read everything
	if err := send(c, 5000); err != nil || closedSlow(t, rec) {
		t.Fatalf("a second large frame after the first drained: %v", err)
	}
	if err := send(c, 5000); err == nil || !closedSlow(t, rec) {
		t.Fatalf("a large frame while the last is owed: %v, want a slow consumer", err)
	}
	if n := len(c.loop.over); n != 0 {
		t.Fatalf("the loop remembers %d set-aside frames after the close", n)
	}
}

// The cap checked as bytes are queued: a frame that would take what is
// owed past it is refused before it is written.
func TestSlowConsumerAtAdmit(t *testing.T) {
	_, sc, out, rec := slowSetup(t)
	c := sc.Conn()
	if err := send(c, 600); err != nil || closedSlow(t, rec) { // owed 600, within the cap
		t.Fatal(err)
	}
	written := out.written
	if err := send(c, 600); err == nil || !closedSlow(t, rec) {
		t.Fatalf("600 more on 600 owed (cap 1000): %v, want a slow consumer", err)
	}
	if out.written-written >= 600 { // the close frame is written, not the refused one
		t.Fatal("the frame over the cap was written: the check ran after the write, not at admit")
	}
}

// The cap checked after a write: a socket that owes more than the cap
// once written to (something queued around the write path, which admit's
// cached count does not see) closes the connection.
func TestSlowConsumerAtFlush(t *testing.T) {
	_, sc, out, rec := slowSetup(t)
	c := sc.Conn()
	out.owed = 950 // unknown to the write path: c.owed is 0
	if err := send(c, 100); err == nil && !closedSlow(t, rec) {
		t.Fatal("a write leaving 1050 owed (cap 1000) did not close the connection")
	}
	if out.written < 100 {
		t.Fatalf("%d bytes written, want the frame (admit had no reason to refuse it)", out.written)
	}
}

// A route's own cap (Engine.LimitPendingBytes) replaces MaxPendingBytes
// for its connections, at admit and after a flush, and Buffered reports
// what the connection owes.
func TestRoutePendingCap(t *testing.T) {
	_, sc, out, rec := slowSetup(t) // MaxPendingBytes 1000
	c := sc.Conn()
	c.route.maxPending = 500
	if err := send(c, 400); err != nil || closedSlow(t, rec) {
		t.Fatal(err)
	}
	c.loop.enter()
	if got := c.Buffered(); got != 400 {
		c.loop.leave()
		t.Fatalf("Buffered = %d after a 400-byte frame the socket did not take, want 400", got)
	}
	c.loop.leave()
	if err := send(c, 200); err == nil || !closedSlow(t, rec) {
		t.Fatalf("200 more on 400 owed (route cap 500, engine's 1000): %v, want a slow consumer", err)
	}
	if c.Buffered() != 0 {
		t.Fatalf("Buffered = %d on a closed connection", c.Buffered())
	}
	_ = out

	_, sc, out, rec = slowSetup(t)
	c = sc.Conn()
	c.route.maxPending = 500
	out.owed = 450 // owed around the write path
	if err := send(c, 100); err == nil && !closedSlow(t, rec) {
		t.Fatal("a write leaving 550 owed (route cap 500) did not close the connection")
	}
}

func TestLimitPendingBytes(t *testing.T) {
	e := New(Options{Addr: "127.0.0.1:0"})
	if err := e.LimitPendingBytes("/x", 10); !errors.Is(err, ErrInvalidRoute) {
		t.Fatalf("no route: %v", err)
	}
	e.Handle("/x", Echo{})
	if err := e.LimitPendingBytes("/x", maxPendingBytes+1); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("over the most: %v", err)
	}
	if err := e.LimitPendingBytes("/x", 64); err != nil {
		t.Fatal(err)
	}
	if e.ws["/x"].maxPending != 64 {
		t.Fatal("cap not set")
	}
	if err := e.LimitPendingBytes("/x", -1); err != nil || e.ws["/x"].maxPending != 0 {
		t.Fatalf("removing the cap: %v", err)
	}
}

// LastRead moves when the peer sends anything, a pong included, on the
// clock OnTimer's now comes from.
func TestLastRead(t *testing.T) {
	h := &openedConn{opened: make(chan *Conn, 1)}
	e := startEngine(t, Options{IdleTimeout: -1, PingInterval: -1}, h)
	rc := rawDial(t, e, "/ws")
	c := <-h.opened
	var first int64
	if !c.DoWait(func(c *Conn) { first = c.LastRead() }) || first == 0 {
		t.Fatalf("LastRead after the handshake = %d", first)
	}
	time.Sleep(5 * time.Millisecond) // the loop's clock must move
	rc.send(clientFrame(0x80|byte(OpPong), true, nil))
	deadline := time.Now().Add(5 * time.Second)
	for {
		var now int64
		c.DoWait(func(c *Conn) { now = c.LastRead() })
		if now > first {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("LastRead did not move after a pong")
		}
		time.Sleep(time.Millisecond)
	}
}

type openedConn struct {
	Echo
	opened chan *Conn
}

func (h *openedConn) OnOpen(c *Conn, _ *Request) { h.opened <- c }
