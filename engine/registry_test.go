package engine

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/meshfast/meshfast/internal/testutil"
)

// openRecorder keeps the connections its route opened, by id.
type openRecorder struct {
	Echo
	mu    sync.Mutex
	conns map[uint64]*Conn
}

func (r *openRecorder) OnOpen(c *Conn, _ *Request) {
	r.mu.Lock()
	r.conns[c.ID()] = c
	r.mu.Unlock()
}

func (r *openRecorder) snapshot() map[uint64]*Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[uint64]*Conn, len(r.conns))
	for id, c := range r.conns {
		out[id] = c
	}
	return out
}

// Lookup finds every open connection by its id from any goroutine, and
// stops finding it once it has closed, while other goroutines look up ids
// as connections come and go.
func TestLookup(t *testing.T) {
	t.Parallel()
	rec := &openRecorder{conns: map[uint64]*Conn{}}
	e := startEngine(t, Options{}, rec)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 2 { // readers racing the opens and closes (for -race)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := uint64(0); !stop.Load(); id++ {
				if c := e.Lookup(id % 4096); c != nil && c.ID() != id%4096 {
					t.Errorf("Lookup(%d) returned connection %d", id%4096, c.ID())
					return
				}
			}
		}()
	}
	clients := make([]*websocket.Conn, 20)
	for i := range clients {
		clients[i] = dial(t, e)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := len(rec.snapshot()); n != len(clients) {
			return fmt.Errorf("%d of %d opened", n, len(clients))
		}
		return nil
	})
	opened := rec.snapshot()
	for id, c := range opened {
		if got := e.Lookup(id); got != c {
			t.Fatalf("Lookup(%d) = %p, want %p", id, got, c)
		}
		if e.Lookup(id^1<<slotBits) != nil {
			t.Fatalf("Lookup of an id that was never issued (same slot as %d) found something", id)
		}
	}
	ranged := map[uint64]*Conn{}
	e.Range(func(c *Conn) bool { ranged[c.ID()] = c; return true })
	if len(ranged) != len(opened) {
		t.Fatalf("Range saw %d connections, want %d", len(ranged), len(opened))
	}
	for id, c := range opened {
		if ranged[id] != c {
			t.Fatalf("Range missed connection %d", id)
		}
	}
	n := 0
	e.Range(func(*Conn) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatalf("Range went on after false: %d calls", n)
	}
	for _, c := range clients[:10] {
		c.CloseNow()
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		found := 0
		for id := range opened {
			if e.Lookup(id) != nil {
				found++
			}
		}
		if found != 10 {
			return fmt.Errorf("%d connections found, want the 10 still open", found)
		}
		ranged := 0
		e.Range(func(*Conn) bool { ranged++; return true })
		if ranged != 10 {
			return fmt.Errorf("Range saw %d connections, want the 10 still open", ranged)
		}
		return nil
	})
	stop.Store(true)
	wg.Wait()
}

// A descriptor freed by one connection may be taken by the next before the
// first one's loop has cleared its slot: clearing must not remove the new
// one, and the old id must not find the new connection.
func TestRegistrySlotReuse(t *testing.T) {
	e := New(Options{})
	old := &Conn{id: e.makeID(slotOf(7))}
	e.registry.add(old)
	next := &Conn{id: e.makeID(slotOf(7))}
	e.registry.add(next)
	e.registry.del(old)
	if got := e.registry.get(next.id); got != next {
		t.Fatalf("after the old connection's late delete, new id finds %v", got)
	}
	if got := e.registry.get(old.id); got != nil {
		t.Fatalf("old id finds %v after its slot was reused", got)
	}
	e.registry.del(next)
	if got := e.registry.get(next.id); got != nil {
		t.Fatalf("deleted id finds %v", got)
	}
}

// Ids grow with every open whatever the slot, and a descriptor past what an
// id can carry gets an id Lookup does not resolve rather than a wrong one.
func TestMakeID(t *testing.T) {
	e := New(Options{})
	a, b := e.makeID(slotOf(900)), e.makeID(slotOf(3))
	if b <= a {
		t.Fatalf("ids not increasing: %d then %d", a, b)
	}
	if a&slotMask != 901 || b&slotMask != 4 {
		t.Fatalf("slots %d, %d: want 901, 4", a&slotMask, b&slotMask)
	}
	big := &Conn{id: e.makeID(slotOf(slotMask))}
	if big.id&slotMask != 0 {
		t.Fatalf("descriptor %d kept slot %d, want none", slotMask, big.id&slotMask)
	}
	e.registry.add(big)
	if e.registry.get(big.id) != nil || e.registry.get(0) != nil {
		t.Fatal("a connection without a slot was found")
	}
	last := &Conn{id: e.makeID(slotMask)} // the highest slot an id carries
	e.registry.add(last)
	if e.registry.get(last.id) != last {
		t.Fatal("the highest slot is not found")
	}
}
