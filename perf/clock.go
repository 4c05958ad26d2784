package perf

import (
	"sync"
	"sync/atomic"
	"time"
)

// DefaultClockResolution is the default resolution of NewCoarseClock.
const DefaultClockResolution = time.Millisecond

// Clock reports the current time as Unix nanoseconds. Every implementation
// here derives it from the monotonic clock, so readings never go backwards
// when the wall clock is stepped (NTP, VM resume): lastSeen and idle-timeout
// arithmetic stays sane. Inject a ManualClock in tests.
type Clock interface {
	UnixNano() int64
}

var (
	_ Clock = SystemClock{}
	_ Clock = (*CoarseClock)(nil)
	_ Clock = (*ManualClock)(nil)
)

// epoch anchors monotonic readings to Unix time. It is immutable after
// package init, so sharing it between engines is harmless.
var epoch = time.Now()

// monoUnixNano is Unix nanoseconds advanced by the monotonic clock.
// time.Since on a monotonic time reads only the monotonic clock, which is
// cheaper than time.Now's wall+monotonic pair.
func monoUnixNano() int64 { return epoch.UnixNano() + int64(time.Since(epoch)) }

// SystemClock reads the clock on every call: the precise path, ~20-40ns.
// Safe from any goroutine.
type SystemClock struct{}

// UnixNano returns the current time.
func (SystemClock) UnixNano() int64 { return monoUnixNano() }

// CoarseClock is a clock one goroutine advances every resolution, so a read
// is a single atomic load. It serves per-message stamps (lastSeen) where
// millisecond precision is plenty and a clock read per message is not (nats
// server's ats package). Until started, and after the last Stop, it falls
// back to reading the system clock, so it is never stale by more than the
// resolution.
//
// Start and Stop are reference counted, so several engines in one process
// (or test) can share one clock: the goroutine runs from the first Start to
// the matching last Stop, and Stop waits for it to exit. All methods are
// safe from any goroutine.
type CoarseClock struct {
	now        atomic.Int64 // 0 while stopped
	resolution time.Duration

	mu   sync.Mutex
	refs int           // guarded by mu
	stop chan struct{} // guarded by mu; closed to stop the ticker goroutine
	done chan struct{} // guarded by mu; closed by the goroutine on exit
}

// NewCoarseClock returns a stopped clock ticking every resolution. Zero or
// negative means DefaultClockResolution.
func NewCoarseClock(resolution time.Duration) *CoarseClock {
	if resolution <= 0 {
		resolution = DefaultClockResolution
	}
	return &CoarseClock{resolution: resolution}
}

// Resolution returns the update interval.
func (c *CoarseClock) Resolution() time.Duration { return c.resolution }

// UnixNano returns the last stamp, at most one resolution old. One atomic
// load when running; a system clock read otherwise.
func (c *CoarseClock) UnixNano() int64 {
	if v := c.now.Load(); v != 0 {
		return v
	}
	return monoUnixNano()
}

// Start takes a reference and starts the ticker goroutine if it is the first.
func (c *CoarseClock) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refs++
	if c.refs > 1 {
		return
	}
	c.now.Store(monoUnixNano())
	c.stop = make(chan struct{})
	c.done = make(chan struct{})
	go c.run(c.stop, c.done)
}

// Stop drops a reference; the last one stops the goroutine and waits for it
// to exit, so no goroutine outlives the final Stop. Stop without a matching
// Start does nothing.
func (c *CoarseClock) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refs == 0 {
		return
	}
	c.refs--
	if c.refs > 0 {
		return
	}
	close(c.stop)
	<-c.done
	c.now.Store(0)
}

func (c *CoarseClock) run(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(c.resolution)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			c.now.Store(monoUnixNano())
		}
	}
}

// ManualClock is a Clock that moves only when told, for deterministic tests
// of timeouts and lastSeen logic. Safe from any goroutine.
type ManualClock struct {
	now atomic.Int64
}

// NewManualClock returns a clock reading t.
func NewManualClock(t time.Time) *ManualClock {
	c := &ManualClock{}
	c.now.Store(t.UnixNano())
	return c
}

// UnixNano returns the current setting.
func (c *ManualClock) UnixNano() int64 { return c.now.Load() }

// Set moves the clock to t.
func (c *ManualClock) Set(t time.Time) { c.now.Store(t.UnixNano()) }

// Add advances the clock by d and returns the new reading.
func (c *ManualClock) Add(d time.Duration) int64 { return c.now.Add(int64(d)) }
