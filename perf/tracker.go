package perf

import (
	"fmt"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/cpu"
)

// Tracker records latencies from many goroutines and event loops at once.
//
// It keeps Shards independent HDR histograms, each behind its own mutex, and
// merges them only when read. A recorder touches one shard (its P's, or the
// one it names), so recorders on different shards never contend; the mutex
// exists for the reader, which locks one shard at a time while merging.
//
// All methods are safe from any goroutine. Record, RecordValue and RecordOn
// do not allocate.
type Tracker struct {
	shards []trackerShard
	mask   uint32
	opts   Options // with defaults applied
}

// trackerShard is one histogram and its lock. The histogram header is held
// by value, next to the mutex, and the padding keeps both off any cache line
// another shard (or an unrelated allocation) writes: a record touches only
// this shard's lines plus one counts line.
type trackerShard struct {
	_   cpu.CacheLinePad
	mu  sync.Mutex
	sum int64         // guarded by mu; sum of recorded (clamped) ns
	h   hdr.Histogram // guarded by mu
	_   cpu.CacheLinePad
}

// NewTracker returns an empty Tracker. The zero Options give 1µs..60s with 3
// significant digits and one shard per P. Errors wrap ErrInvalidOptions.
func NewTracker(opts Options) (*Tracker, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	n := shardCount(o.Shards)
	o.Shards = n
	t := &Tracker{shards: make([]trackerShard, n), mask: uint32(n - 1), opts: o}
	for i := range t.shards {
		// hdrhistogram warns against struct copies because the copy shares
		// the counts array with the original; here the original is dropped
		// at once, so the shard's copy is the only owner.
		t.shards[i].h = *hdr.New(int64(o.Lowest), int64(o.Highest), o.SignificantDigits)
	}
	return t, nil
}

// MustNewTracker is NewTracker for options fixed in code; it panics if they
// are invalid.
func MustNewTracker(opts Options) *Tracker {
	t, err := NewTracker(opts)
	if err != nil {
		panic(err)
	}
	return t
}

// Shards returns the number of shards (a power of two). RecordOn reduces its
// shard argument modulo this.
func (t *Tracker) Shards() int { return len(t.shards) }

// Options returns the options in effect, with defaults applied and Shards
// rounded up.
func (t *Tracker) Options() Options { return t.opts }

// Record records one latency. Safe from any goroutine; does not allocate.
func (t *Tracker) Record(d time.Duration) { t.RecordValue(int64(d)) }

// RecordValue records one latency of ns nanoseconds. Values outside
// [0, Options.Highest] are clamped, never dropped.
//
// It records into the shard of the current P (runtime processor), so with
// the default Shards = GOMAXPROCS each core keeps writing its own shard's
// cache lines. Safe from any goroutine; does not allocate.
func (t *Tracker) RecordValue(ns int64) { t.record(uint32(currentP()), ns) }

// RecordOn records ns nanoseconds into shard shard (reduced modulo
// Shards()). An event loop passing its own index owns that shard: no other
// recorder touches its lock or counts. Safe from any goroutine; does not
// allocate.
func (t *Tracker) RecordOn(shard int, ns int64) { t.record(uint32(shard), ns) }

// record adds ns to the preferred shard, or, if that shard is busy (a
// reader merging it, or a migrated goroutine), to the next free one. So a
// scrape, which holds each shard's lock for tens of microseconds in turn,
// never stalls a recorder unless there is only one shard; only when every
// shard is busy does it block on the preferred one.
func (t *Tracker) record(prefer uint32, ns int64) {
	for i := uint32(0); i <= t.mask; i++ {
		s := &t.shards[(prefer+i)&t.mask]
		if s.mu.TryLock() {
			s.recordLocked(ns)
			s.mu.Unlock()
			return
		}
	}
	s := &t.shards[prefer&t.mask]
	s.mu.Lock()
	s.recordLocked(ns)
	s.mu.Unlock()
}

// recordLocked adds one value. s.mu is held on entry.
func (s *trackerShard) recordLocked(ns int64) {
	ns = clampValue(ns, s.h.HighestTrackableValue())
	// Cannot fail for an in-range value; see clampValue.
	_ = s.h.RecordValue(ns)
	s.sum += ns
}

// Snapshot returns a new Histogram holding everything recorded so far. It
// allocates a full histogram; periodic readers should reuse one with
// SnapshotInto.
func (t *Tracker) Snapshot() *Histogram { return t.SnapshotInto(nil) }

// SnapshotInto resets dst, merges every shard into it and returns it. A nil
// dst, or one of a different geometry, is replaced by a new Histogram.
// Each shard is locked only while it is merged (~50µs for a busy shard at
// the default geometry) and recorders skip a busy shard, so the result is a
// per-shard, not global, cut.
func (t *Tracker) SnapshotInto(dst *Histogram) *Histogram {
	return t.collect(dst, false)
}

// SnapshotAndReset is SnapshotInto that also empties each shard as it is
// merged, for interval reporting: every value lands in exactly one interval.
func (t *Tracker) SnapshotAndReset(dst *Histogram) *Histogram {
	return t.collect(dst, true)
}

func (t *Tracker) collect(dst *Histogram, reset bool) *Histogram {
	if dst == nil || !t.sameGeometry(dst.h) {
		dst = newHistogram(t.opts)
	} else {
		dst.Reset()
	}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		if s.h.TotalCount() != 0 {
			// Cannot drop: same geometry.
			dst.h.Merge(&s.h)
			dst.sum += s.sum
			if reset {
				s.h.Reset()
				s.sum = 0
			}
		}
		s.mu.Unlock()
	}
	return dst
}

// Summary is Snapshot().Summary(), for callers that need only the digest.
func (t *Tracker) Summary() Summary { return t.Snapshot().Summary() }

// Merge adds every value of h into the tracker (into shard 0), for folding
// in histograms decoded from other processes. It returns how many values
// fell outside the tracker's range and were dropped.
func (t *Tracker) Merge(h *Histogram) (dropped int64) {
	s := &t.shards[0]
	s.mu.Lock()
	defer s.mu.Unlock()
	dropped = s.h.Merge(h.h)
	s.sum += h.sum
	return dropped
}

// Reset empties every shard.
func (t *Tracker) Reset() {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		s.h.Reset()
		s.sum = 0
		s.mu.Unlock()
	}
}

func (t *Tracker) sameGeometry(h *hdr.Histogram) bool {
	return h.LowestTrackableValue() == int64(t.opts.Lowest) &&
		h.HighestTrackableValue() == int64(t.opts.Highest) &&
		h.SignificantFigures() == int64(t.opts.SignificantDigits)
}

// String describes the tracker's geometry, for logs.
func (t *Tracker) String() string {
	return fmt.Sprintf("perf.Tracker{%v..%v, %d digits, %d shards}",
		t.opts.Lowest, t.opts.Highest, t.opts.SignificantDigits, len(t.shards))
}
