package mesh

import (
	"context"
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/protocol"
)

// Commands of one connection run one after another, in arrival order: a
// client that sends "join room" then "leave room" without awaiting the
// first reply, or publishes messages 1..n, gets the effects and the replies
// in the order it sent them, as from one Mesh server process.
//
// The loop decodes a command and appends it to its connection's queue
// (connActive.queue); a runner goroutine takes them one at a time, runs
// each to completion, posts its reply to the loop and takes the next. The
// runner exists only while the queue has work: it is started by the command
// that finds the queue idle and exits when the queue is empty, so an idle
// connection, however many there are, costs no goroutine, and a connection
// that sends one command at a time costs one short-lived goroutine per
// command, as before. Different connections' runners run in parallel.
//
// A connection that sends faster than its commands complete is slowed
// down, not refused: once Options.MaxQueuedCommands of its commands are
// queued or running (or Options.MaxQueuedBytes of their payloads), the loop
// pauses reading it (engine.Conn.PauseReading), so what it sends next waits
// in the engine's input and then in the kernel's buffers, and TCP's own
// flow control stops the client. The runner resumes reading when the queue
// is down to half of both bounds: one resume per half-queue, not one per
// command. Memory per connection is therefore bounded by the queue's bounds
// whatever the client does, and a fast client sees slower replies, never an
// error.

// queued is one command waiting in its connection's queue, or a task the
// server runs in turn with them (fn).
type queued struct {
	fn      func()   // set: a task (enqueueTask), not a command
	cmd     *command // nil: not exposed (answered ENOTFOUND)
	err     error    // set: answer this error without running anything
	name    string
	id      int64
	payload json.RawMessage
	start   time.Time
}

// size is what q counts against Options.MaxQueuedBytes.
func (q *queued) size() int { return len(q.payload) + len(q.name) }

// enqueue queues a command for c and starts c's runner if it has none.
// Loop only: it may pause c's reading.
func (s *Server) enqueue(c *Connection, a *connActive, q queued) {
	a.qmu.Lock()
	a.queue = append(a.queue, q)
	s.admitLocked(a, q.size())
	start := !a.running
	a.running = true
	pause := s.overLocked(a)
	a.qmu.Unlock()
	if pause {
		// The resume the runner posts when it drains runs on this loop after
		// this callback, so a runner that drained in between cannot be missed.
		c.c.PauseReading()
	}
	if start {
		go s.drain(c, a)
	}
}

// enqueueTask queues fn to run in turn with c's commands, for changes the
// server makes to c that must keep their order with one another and with
// what c asked for (a room change made on another node). A task counts
// against no bound: it comes from the server, not the client, and it does
// not run if c has closed first. Any goroutine.
func (s *Server) enqueueTask(c *Connection, fn func()) {
	a := c.activate()
	a.qmu.Lock()
	a.queue = append(a.queue, queued{fn: fn})
	start := !a.running
	a.running = true
	a.qmu.Unlock()
	if start {
		go s.drain(c, a)
	}
}

// hold keeps c's commands from running until release: they queue in
// order, within the queue's bounds, and no runner starts. It also gives c
// the context its commands will get, so that a Verify running meanwhile
// ends when c closes. Loop only, in OnOpen, before c's first command.
func (s *Server) hold(c *Connection) *connActive {
	a := c.activate()
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.qmu.Lock()
	a.held, a.running = true, true
	a.qmu.Unlock()
	return a
}

// release lets c's held commands run: a runner starts if any are waiting.
// If c is closed by then (refused, registration failed), the runner drops
// them unrun, as it does for any closed connection, and uncounts them. A
// no-op for a connection that was not held. Any goroutine.
func (s *Server) release(c *Connection) {
	a := c.active.Load()
	if a == nil {
		return
	}
	a.qmu.Lock()
	if !a.held {
		a.qmu.Unlock()
		return
	}
	a.held = false
	start := a.qhead < len(a.queue)
	a.running = start
	a.qmu.Unlock()
	if start {
		go s.drain(c, a)
	}
}

// admitLocked counts a command (queued, or started at once when concurrent)
// against c's bounds. a.qmu held.
func (s *Server) admitLocked(a *connActive, size int) {
	a.pending++
	a.pendingBytes += size
	if a.pending > a.peak {
		a.peak = a.pending
	}
}

// overLocked reports whether c must stop reading now: its bounds are
// reached and it is not paused yet. a.qmu held; the caller pauses.
func (s *Server) overLocked(a *connActive) bool {
	if a.paused || (int(a.pending) < s.opts.MaxQueuedCommands && a.pendingBytes < s.opts.MaxQueuedBytes) {
		return false
	}
	a.paused = true
	return true
}

// done uncounts a finished (or dropped) command and resumes c's reading
// once its queue is down to the low-water mark. Any goroutine.
func (s *Server) done(c *Connection, a *connActive, size int) {
	s.inflight.Add(-1)
	a.qmu.Lock()
	a.pending--
	a.pendingBytes -= size
	resume := a.paused && int(a.pending) <= s.opts.MaxQueuedCommands/2 && a.pendingBytes <= s.opts.MaxQueuedBytes/2
	if resume {
		a.paused = false
	}
	a.qmu.Unlock()
	if resume {
		c.c.ResumeReading()
	}
}

// drain is c's runner: it runs the queued commands one at a time until the
// queue is empty. Commands still queued when the connection closes are
// dropped: no one is left to read their replies, their context has ended,
// and what the client sent after them was never read either.
func (s *Server) drain(c *Connection, a *connActive) {
	for {
		a.qmu.Lock()
		if a.qhead == len(a.queue) {
			// Keep a small backing array for the next burst; a large one
			// would be paid for by an idle connection.
			if cap(a.queue) > 4 {
				a.queue = nil
			} else {
				a.queue = a.queue[:0]
			}
			a.qhead = 0
			a.running = false
			a.qmu.Unlock()
			return
		}
		q := a.queue[a.qhead]
		a.queue[a.qhead] = queued{}
		a.qhead++
		a.qmu.Unlock()
		if q.fn != nil {
			if !c.closed.Load() {
				q.fn()
			}
			continue
		}
		if !c.closed.Load() {
			s.run(c, a, &q)
		}
		s.done(c, a, q.size())
	}
}

// run executes one command and posts its reply to the loop.
func (s *Server) run(c *Connection, a *connActive, q *queued) {
	var result any
	err := q.err
	if err == nil {
		result, err = s.execute(c, a, q)
	}
	s.m.command(time.Since(q.start), err)
	if err != nil {
		s.logHidden(c, q.name, err)
	}
	if c.closed.Load() {
		return
	}
	f := engine.AcquireFrame()
	var b []byte
	if err != nil {
		b = protocol.AppendErrorReply(f.PayloadBuf(), q.id, q.name, err)
	} else {
		p, encErr := encodePayload(nil, result)
		if encErr != nil {
			s.opts.Logf("mesh: %s: %s: encode reply: %v", c.id, q.name, encErr)
			b = protocol.AppendErrorReply(f.PayloadBuf(), q.id, q.name, errInternal)
		} else {
			if result == nil {
				p = nil
			}
			b = protocol.AppendReply(f.PayloadBuf(), q.id, q.name, p)
		}
	}
	f.SetPayload(engine.OpText, b)
	c.c.Send(f)
	f.Release()
}

// runConcurrent runs a command registered with ExposeConcurrent on its own
// goroutine, beside the connection's queue.
func (s *Server) runConcurrent(c *Connection, a *connActive, q queued) {
	s.run(c, a, &q)
	s.done(c, a, q.size())
}

// logHidden logs an error reply's detail when the client is not shown it:
// the reply carries only the *protocol.CodeError inside err (a built-in's
// EINVALID or ESERVER text, Context.Bind's "Invalid payload"), so the
// wrapping text, with the decoder's or the coordinator's message, goes to
// the log instead. This is the one place such an error is logged. An error
// the client sees whole (a handler's own error, a bare CodeError) is the
// application's to log.
func (s *Server) logHidden(c *Connection, command string, err error) {
	var ce *protocol.CodeError
	if !errors.As(err, &ce) || error(ce) == err {
		return
	}
	detail := err.Error()
	if len(detail) > maxLoggedDetail {
		// Decoder messages quote the input; a client controls its size.
		n := maxLoggedDetail
		for n > 0 && !utf8.RuneStart(detail[n]) {
			n--
		}
		detail = detail[:n] + "…"
	}
	s.opts.Logf("mesh: %s: %s: %s", c.id, command, detail)
}

// maxLoggedDetail bounds the bytes of one logged error detail.
const maxLoggedDetail = 512
