package mesh

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
		dialWire(t, s)
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
