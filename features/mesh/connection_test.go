package mesh

import (
	"fmt"
	"sync"
	"testing"
	"unsafe"

	"github.com/meshfast/meshfast/engine"
)

// TestIdleConnectionSize guards the size class of an idle connection: one
// Connection is allocated per connection and most connections are idle,
// so every byte past 80 moves all of them into the 96-byte class or up.
// Fields only an active connection needs belong in connActive.
func TestIdleConnectionSize(t *testing.T) {
	if n := unsafe.Sizeof(Connection{}); n > 80 {
		t.Fatalf("Connection is %d bytes, want at most 80", n)
	}
}

// TestIdleConnectionHasNoActivePart checks that opening, registering and
// answering pings do not make connActive: if they did, the bytes moved out
// of Connection would be paid by every idle connection anyway.
func TestIdleConnectionHasNoActivePart(t *testing.T) {
	sim, s := simServer(t, 1, Options{})
	sc := sim.Open(handlerOf(s))
	c := sc.Conn().Value().(*Connection)
	waitRegistered(t, c)
	sim.Feed(sc, maskedText(`{"command":"pong","payload":{}}`))
	if c.active.Load() != nil {
		t.Fatal("an idle connection has a connActive")
	}
}

// TestTakesRacingCleanup runs a closed connection's cleanup against
// subscriptions being taken, on connections with no connActive yet, so they
// also race to make it. Every (source, name) in a connection's set holds
// exactly one node reference: cleanup must release the reference of every
// take that got in, and no other, or the node leaks a coordinator
// subscription or drops one another connection still needs.
func TestTakesRacingCleanup(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	w := dialWire(t, s)
	ec := s.Connection(w.id).c
	const n = 4
	// holder keeps one reference on each name throughout.
	holder := &Connection{id: "holder", c: ec}
	for i := range n {
		if err := s.subs.take(bg(), holder, channelRoute, fmt.Sprint("t", i)); err != nil {
			t.Fatal(err)
		}
	}
	refs := func() map[string]int {
		s.subs.mu.Lock()
		defer s.subs.mu.Unlock()
		out := map[string]int{}
		for k, ns := range s.subs.node {
			out[k.name] = ns.refs
		}
		return out
	}
	for round := 0; round < 300; round++ {
		c := &Connection{id: fmt.Sprint("racer", round), c: ec}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_ = s.subs.take(bg(), c, channelRoute, fmt.Sprint("t", i))
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			s.subs.dropAll(bg(), c)
		}()
		close(start)
		wg.Wait()
		if err := s.subs.take(bg(), c, channelRoute, "late"); err != errConnectionGone {
			t.Fatalf("round %d: a take after cleanup: %v", round, err)
		}
		for i := range n {
			if r := refs()[fmt.Sprint("t", i)]; r != 1 {
				t.Fatalf("round %d: t%d has %d node references after cleanup, want the holder's 1", round, i, r)
			}
		}
	}
	s.subs.dropAll(bg(), holder)
	if r := refs(); len(r) != 0 {
		t.Fatalf("node subscriptions left after every holder left: %v", r)
	}
}

// The missed-pong count is 16-bit: it saturates rather than wrapping, so a
// MaxMissedPongs past its range means never closed for missed pongs, and
// the default still closes at the second unanswered ping.
func TestMissedPongsSaturate(t *testing.T) {
	for _, tc := range []struct {
		max        int
		from       uint16
		wantClosed bool
	}{
		{max: 1 << 20, from: 65533, wantClosed: false},
		{max: DefaultMaxMissedPongs, from: 0, wantClosed: true},
	} {
		sim, s := simServer(t, 1, Options{MaxMissedPongs: tc.max})
		sc := sim.Open(handlerOf(s))
		c := sc.Conn().Value().(*Connection)
		waitRegistered(t, c)
		done := make(chan uint16, 1)
		c.c.Do(func(*engine.Conn) {
			c.missedPongs, c.alive = tc.from, false
			for i := range int64(4) { // four pings due, none answered
				c.nextPing = 1
				c.onTimer(100 + i)
			}
			done <- c.missedPongs
		})
		got := recv(t, done, "the timer task")
		// the client answers a close frame, if one came, so the close completes
		sim.Feed(sc, []byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8})
		byServer := sim.Engine().ClosedBy(engine.ReasonServerClosed)
		if closed := byServer == 1 && c.c.Closed(); closed != tc.wantClosed {
			t.Fatalf("MaxMissedPongs %d from %d: closed by the server %v (count %d), want %v",
				tc.max, tc.from, closed, byServer, tc.wantClosed)
		}
		if !tc.wantClosed && got != 65535 {
			t.Fatalf("count after saturating: %d, want 65535", got)
		}
	}
}
