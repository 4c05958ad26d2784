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
// so every byte past 96 moves all of them into the 112-byte class or up.
// Fields only an active connection needs belong in connActive.
func TestIdleConnectionSize(t *testing.T) {
	if n := unsafe.Sizeof(Connection{}); n > 96 {
		t.Fatalf("Connection is %d bytes, want at most 96", n)
	}
}

// TestIdleConnectionHasNoActivePart checks that opening, registering and
// answering pings do not make connActive: if they did, the bytes moved out
// of Connection would be paid by every idle connection anyway.
func TestIdleConnectionHasNoActivePart(t *testing.T) {
	sim := engine.NewSimulator(engine.Options{Loops: 1})
	s, err := New(sim.Engine(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
