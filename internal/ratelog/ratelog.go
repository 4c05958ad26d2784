// Package ratelog bounds how often one kind of log line is written: a
// line a client can cause at will (a refused connection, a malformed
// message) or that repeats while a condition lasts (a full queue) is
// written at its first occurrence, then at most once per interval with
// the count of those left out, so that a flood costs a few lines, not one
// per event.
//
// # Concurrency
//
// A Limiter is safe from any goroutine. Allow is one atomic load while the
// line is being left out, so it may run on an event loop per event.
package ratelog

import (
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInterval is the default of Limiter's interval.
const DefaultInterval = 10 * time.Second

// Limiter decides which occurrences of one kind of line are written. The
// zero value writes at most one line per DefaultInterval.
type Limiter struct {
	// Interval is the least time between two written lines. Zero means
	// DefaultInterval. Set it before the first Allow.
	Interval time.Duration

	next       atomic.Int64 // unix ns before which lines are left out
	suppressed atomic.Uint64
	mu         sync.Mutex // serializes the writers of a line, not the others
}

// Allow reports whether this occurrence is written, and how many were left
// out since the last written one (to be said in the line).
func (l *Limiter) Allow() (ok bool, suppressed uint64) {
	now := time.Now().UnixNano()
	if now < l.next.Load() {
		l.suppressed.Add(1)
		return false, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now < l.next.Load() { // another goroutine wrote it meanwhile
		l.suppressed.Add(1)
		return false, 0
	}
	iv := l.Interval
	if iv <= 0 {
		iv = DefaultInterval
	}
	l.next.Store(now + int64(iv))
	return true, l.suppressed.Swap(0)
}
