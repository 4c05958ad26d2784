package memory

import "time"

// DefaultSweepInterval is the default of Options.SweepInterval. It is close
// to Redis's own active-expiry cycle (10 per second).
const DefaultSweepInterval = 100 * time.Millisecond

// DefaultQueueSize is the default of Options.QueueSize.
const DefaultQueueSize = 8192

// Options configures a Memory coordinator. The zero value works.
type Options struct {
	// SweepInterval is the shortest time between two sweeps, which remove
	// lapsed presence entries and presence states and report their expiry.
	// The sweeper wakes when the earliest deadline is due (not at all while
	// nothing can expire), so an expiry is reported at most about
	// SweepInterval after it happens; reads leave lapsed entries out at
	// once. Zero (or negative) means DefaultSweepInterval.
	SweepInterval time.Duration

	// QueueSize is the capacity of the pub/sub delivery queue. Publish
	// blocks, honouring its context, while the queue is full. Zero (or
	// negative) means DefaultQueueSize.
	QueueSize int

	// Now is the clock that TTLs are measured with. Nil means time.Now.
	// Tests inject a fake clock; the sweeper then sweeps every
	// SweepInterval of real time while anything is pending.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.SweepInterval <= 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
