package streams

import "sync"

// queue is a subscription's bounded hand-off from the goroutines that
// deliver (the hub, the coordinator's) to the one that runs its handler.
// push never blocks: past max it refuses and remembers that it did.
type queue[T any] struct {
	mu       sync.Mutex
	items    []T
	spare    []T
	max      int
	overflow bool
	closed   bool
	wake     chan struct{} // capacity 1
}

func newQueue[T any](max int) *queue[T] {
	return &queue[T]{max: max, wake: make(chan struct{}, 1)}
}

// push appends v; false if the queue is full (overflow is then set) or
// closed.
func (q *queue[T]) push(v T) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	if len(q.items) >= q.max {
		q.overflow = true
		q.mu.Unlock()
		q.signal()
		return false
	}
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *queue[T]) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns everything queued and whether anything was refused since
// the last take; the slice is the caller's until the next take.
func (q *queue[T]) take() ([]T, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	items, over := q.items, q.overflow
	clear(q.spare)
	q.items, q.spare, q.overflow = q.spare[:0], items, false
	return items, over
}

// close makes later pushes fail.
func (q *queue[T]) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}
