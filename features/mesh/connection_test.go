package mesh

import (
	"fmt"
	"slices"
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

// TestHeldTopicsRacingHolds runs cleanup against subscriptions on a
// connection that has no connActive yet, so they race to make it: every
// topic a subscription was told it holds must reach cleanup (or its node
// reference leaks), and none may be held after.
func TestHeldTopicsRacingHolds(t *testing.T) {
	for round := 0; round < 2000; round++ {
		c := &Connection{}
		const n = 4
		var held [n]bool
		var taken []string
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				held[i] = c.holdTopic(fmt.Sprint("t", i))
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			taken = c.heldTopics()
		}()
		close(start)
		wg.Wait()
		for i, ok := range held {
			if ok && !slices.Contains(taken, fmt.Sprint("t", i)) {
				t.Fatalf("round %d: t%d was held but cleanup did not take it (took %v)", round, i, taken)
			}
		}
		if c.holdTopic("late") {
			t.Fatalf("round %d: a topic was held after cleanup", round)
		}
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
		got := <-done
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
