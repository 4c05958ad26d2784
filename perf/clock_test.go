package perf

import (
	"sync"
	"testing"
	"time"
)

func TestSystemClock(t *testing.T) {
	var c Clock = SystemClock{}
	a := c.UnixNano()
	if d := time.Duration(time.Now().UnixNano() - a); d < -time.Second || d > time.Second {
		t.Fatalf("SystemClock is %v off the wall clock", d)
	}
	for i := 0; i < 1000; i++ {
		b := c.UnixNano()
		if b < a {
			t.Fatalf("clock went backwards: %d after %d", b, a)
		}
		a = b
	}
}

func TestCoarseClockAdvances(t *testing.T) {
	c := NewCoarseClock(0)
	if c.Resolution() != DefaultClockResolution {
		t.Fatalf("Resolution() = %v, want default", c.Resolution())
	}
	// Stopped: falls back to the system clock rather than returning 0.
	got := c.UnixNano()
	if d := time.Duration(SystemClock{}.UnixNano() - got); d < 0 || d > time.Second {
		t.Fatalf("stopped clock is %v off", d)
	}
	c.Start()
	defer c.Stop()
	first := c.UnixNano()
	// Poll, don't sleep a fixed time: the ticker may be delayed on a busy
	// CI machine.
	deadline := time.Now().Add(5 * time.Second)
	for c.UnixNano() == first {
		if time.Now().After(deadline) {
			t.Fatal("coarse clock did not advance in 5s")
		}
		time.Sleep(100 * time.Microsecond)
	}
	got = c.UnixNano()
	if lag := time.Duration(SystemClock{}.UnixNano() - got); lag < 0 || lag > time.Second {
		t.Fatalf("coarse clock lags by %v", lag)
	}
}

func TestCoarseClockRefCount(t *testing.T) {
	c := NewCoarseClock(time.Millisecond)
	c.Stop() // unbalanced Stop is a no-op
	c.Start()
	c.Start()
	c.Stop()
	if c.now.Load() == 0 {
		t.Fatal("clock stopped while a reference remained")
	}
	c.Stop()
	if c.now.Load() != 0 {
		t.Fatal("clock still running after the last Stop")
	}
	// Restartable after a full stop.
	c.Start()
	c.Stop()
}

func TestCoarseClockConcurrentStartStop(t *testing.T) {
	c := NewCoarseClock(100 * time.Microsecond)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				c.Start()
				_ = c.UnixNano()
				c.Stop()
			}
		}()
	}
	wg.Wait()
	if c.now.Load() != 0 {
		t.Fatal("clock running after balanced Start/Stop")
	}
}

func TestManualClock(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	var c Clock = NewManualClock(base)
	m := c.(*ManualClock)
	if c.UnixNano() != base.UnixNano() {
		t.Fatal("NewManualClock reading")
	}
	if got := m.Add(time.Second); got != base.Add(time.Second).UnixNano() || c.UnixNano() != got {
		t.Fatal("Add")
	}
	m.Set(base)
	if c.UnixNano() != base.UnixNano() {
		t.Fatal("Set")
	}
}
