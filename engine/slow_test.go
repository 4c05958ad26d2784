package engine

import (
	"testing"
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
