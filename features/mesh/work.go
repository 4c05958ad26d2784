package mesh

import "sync"

// Connection registration and cleanup talk to the coordinator (and run
// user hooks), so they cannot run on an event loop. They go through a pool
// of at most Options.Workers goroutines instead of a goroutine per
// connection: a burst of handshakes then costs a few goroutine starts and
// no wake-up per connection, and an idle server runs no worker at all.
// Several workers, not one, so that a slow hook or a slow coordinator call
// occupies one worker while the others drain the queue; a remote
// coordinator pipelines the calls of concurrent workers.

type jobKind uint8

const (
	jobRegister jobKind = iota
	jobCleanup
)

type job struct {
	c    *Connection
	kind jobKind
	meta []byte // jobRegister: metadata from authentication, nil: none
}

// workQueue is a FIFO of jobs drained by up to Options.Workers goroutines that
// exit when it is empty. Safe from any goroutine.
type workQueue struct {
	mu      sync.Mutex
	q       []job
	head    int
	running int // workers started and not yet exited
	idle    int // workers waiting for the lock to take the next job
}

// push queues j and starts a worker when every running one is busy.
func (w *workQueue) push(s *Server, j job) {
	w.mu.Lock()
	w.q = append(w.q, j)
	start := w.running < s.opts.Workers && w.idle == 0
	if start {
		w.running++
		w.idle++ // counts as ready until it takes its first job
	}
	w.mu.Unlock()
	if start {
		s.bg.Add(1)
		go w.run(s)
	}
}

// run takes jobs one at a time until the queue is empty.
func (w *workQueue) run(s *Server) {
	defer s.bg.Done()
	w.mu.Lock()
	for {
		if w.head == len(w.q) {
			// Empty: drop the backing array if a burst made it large,
			// so an idle server holds nothing here.
			if cap(w.q) > 1024 {
				w.q = nil
			} else {
				w.q = w.q[:0]
			}
			w.head = 0
			w.running--
			w.idle--
			w.mu.Unlock()
			return
		}
		j := w.q[w.head]
		w.q[w.head] = job{}
		w.head++
		if w.head >= 1024 && 2*w.head >= len(w.q) {
			// A queue that never empties (a slow coordinator under a
			// steady stream of connections) must not grow forever.
			n := copy(w.q, w.q[w.head:])
			clear(w.q[n:])
			w.q, w.head = w.q[:n], 0
		}
		w.idle--
		w.mu.Unlock()

		switch j.kind {
		case jobRegister:
			s.register(j.c, j.meta, s.openHooks(), false)
		case jobCleanup:
			s.cleanupNow(j.c)
		}

		w.mu.Lock()
		w.idle++
	}
}
