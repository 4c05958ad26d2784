package mesh

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/coord/memory"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/internal/testutil"
)

// A hook that blocks holds up only its own worker: connections opened
// behind it are registered and see their hooks run.
func TestSlowConnectionHookDoesNotHoldOthers(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	release := make(chan struct{})
	var first atomic.Bool
	var opened atomic.Int32
	s.OnConnection(func(c *Connection) {
		if first.CompareAndSwap(false, true) {
			<-release
		}
		opened.Add(1)
	})
	defer close(release)
	dialWire(t, s) // its hook blocks
	for range 5 {
		dialWire(t, s)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := opened.Load(); n != 5 {
			return fmt.Errorf("%d of 5 hooks ran behind the blocked one", n)
		}
		return nil
	})
}

// Every registration and cleanup of a burst runs, in a bounded number of
// goroutines, and the queue lets its workers exit when it empties.
func TestWorkQueueDrainsBurst(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	var mu sync.Mutex
	opened, closed := map[string]bool{}, map[string]bool{}
	s.OnConnection(func(c *Connection) { mu.Lock(); opened[c.ID()] = true; mu.Unlock() })
	s.OnDisconnection(func(c *Connection) { mu.Lock(); closed[c.ID()] = true; mu.Unlock() })
	const n = 40
	ws := make([]*wire, n)
	var wg sync.WaitGroup
	for i := range ws {
		wg.Add(1)
		go func() { defer wg.Done(); ws[i] = dialWire(t, s) }()
	}
	wg.Wait()
	for _, w := range ws {
		_ = w.c.CloseNow()
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(opened) != n || len(closed) != n {
			return fmt.Errorf("hooks: %d opened, %d closed of %d", len(opened), len(closed), n)
		}
		return nil
	})
	for _, w := range ws {
		if !opened[w.id] || !closed[w.id] {
			t.Fatalf("connection %s: opened %v closed %v", w.id, opened[w.id], closed[w.id])
		}
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		s.work.mu.Lock()
		defer s.work.mu.Unlock()
		if s.work.running != 0 || s.work.idle != 0 || len(s.work.q) != 0 {
			return fmt.Errorf("queue not idle: %d running, %d idle, %d queued", s.work.running, s.work.idle, len(s.work.q))
		}
		return nil
	})
}

// Hooks that all block occupy at most Options.Workers goroutines; the rest wait
// in the queue and run once workers free up.
func TestWorkQueueBound(t *testing.T) {
	t.Parallel()
	const maxWorkers = 8
	s := startServer(t, Options{Workers: maxWorkers})
	block := make(chan struct{})
	var cur, peak, ran atomic.Int32
	s.OnConnection(func(c *Connection) {
		n := cur.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-block
		cur.Add(-1)
		ran.Add(1)
	})
	const n = maxWorkers + 4
	for range n {
		// Not dialWire: a connection is told its id once registered,
		// and the hooks that follow registration hold every worker.
		if _, _, err := dialWireWith(t, s, "/", nil); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if c := cur.Load(); c != maxWorkers {
			return fmt.Errorf("%d hooks running, want %d", c, maxWorkers)
		}
		return nil
	})
	close(block)
	testutil.Eventually(t, 5*time.Second, func() error {
		if r := ran.Load(); r != n {
			return fmt.Errorf("%d of %d hooks ran", r, n)
		}
		return nil
	})
	if p := peak.Load(); p != maxWorkers {
		t.Fatalf("peak %d concurrent hooks, want %d", p, maxWorkers)
	}
}

// remoteLike hides the memory coordinator's coord.LocalRegistry marker and
// records whether registrations came with a deadline, as a Redis-backed
// coordinator would see them; gate, when set, holds each registration.
type remoteLike struct {
	coord.Coordinator
	gate      chan struct{}
	deadlines atomic.Int32
	calls     atomic.Int32
}

func (r *remoteLike) RegisterConnection(ctx context.Context, connID, nodeID string) error {
	r.calls.Add(1)
	if _, ok := ctx.Deadline(); ok {
		r.deadlines.Add(1)
	}
	if r.gate != nil {
		<-r.gate
	}
	return r.Coordinator.RegisterConnection(ctx, connID, nodeID)
}

// localLike is remoteLike with the marker back.
type localLike struct{ *remoteLike }

func (localLike) LocalRegistry() {}

// With a local registry and no OnConnection hook, a connection is
// registered by the time OnOpen returns (on the loop, no deadline); with a
// hook, or a registry that is not local, registration goes to the workers
// (OnOpen returns while it is held), and a non-local registry gets a
// deadline.
func TestRegistrationPlacement(t *testing.T) {
	newSim := func(co coord.Coordinator) (*engine.Simulator, *Server) {
		return simServer(t, 1, Options{Coordinator: co})
	}
	// openReturns opens a connection and reports whether OnOpen returned
	// within a second (it cannot while a held registration runs inline).
	openReturns := func(sim *engine.Simulator, s *Server) (*Connection, bool) {
		got := make(chan *Connection, 1)
		go func() { got <- sim.Open(handlerOf(s)).Conn().Value().(*Connection) }()
		select {
		case c := <-got:
			return c, true
		case <-time.After(time.Second):
			return nil, false
		}
	}
	mem := memory.New(memory.Options{})
	t.Cleanup(func() { mem.Close() })

	local := localLike{&remoteLike{Coordinator: mem}}
	sim, s := newSim(local)
	c, _ := openReturns(sim, s)
	if c == nil || !c.registered() || local.calls.Load() != 1 || local.deadlines.Load() != 0 {
		t.Fatalf("local registry, no hook: registered %v, %d calls, %d with a deadline; want true, 1, 0",
			c != nil && c.registered(), local.calls.Load(), local.deadlines.Load())
	}

	held := localLike{&remoteLike{Coordinator: mem, gate: make(chan struct{})}}
	sim, s = newSim(held)
	s.OnConnection(func(*Connection) {})
	c, returned := openReturns(sim, s)
	close(held.gate)
	if !returned {
		t.Fatal("with an OnConnection hook the registration ran inside OnOpen")
	}
	waitRegistered(t, c)

	remote := &remoteLike{Coordinator: mem, gate: make(chan struct{})}
	sim, s = newSim(remote)
	c, returned = openReturns(sim, s)
	close(remote.gate)
	if !returned {
		t.Fatal("a non-local registry's registration ran inside OnOpen")
	}
	waitRegistered(t, c)
	if remote.calls.Load() != 1 || remote.deadlines.Load() != 1 {
		t.Fatalf("non-local registry: %d calls, %d with a deadline; want 1 and 1", remote.calls.Load(), remote.deadlines.Load())
	}
}
