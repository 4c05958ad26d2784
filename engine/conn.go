package engine

import (
	"math"
	"net"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
)

// connState is the life cycle of a connection.
type connState uint8

const (
	stateHandshake connState = iota // reading the HTTP request head
	stateOpen                       // WebSocket or stream open
	stateClosing                    // close frame sent, waiting for the peer
	stateClosed                     // gone; tasks for it are dropped
)

// connKind is the wire a connection speaks after its handshake.
type connKind uint8

const (
	kindWebSocket connKind = iota
	kindStream             // a long-lived plain HTTP response (Server-Sent Events)
	// kindDeferred: still in stateHandshake, a plain HTTP request whose
	// handler answers later (Response.Defer); nothing more is read.
	kindDeferred
)

// socket is the part of a gnet.Conn the engine uses; the in-process
// simulation and benchmarks swap in a counting fake. One interface, not one
// per concern: every idle connection pays for each interface word it holds.
type socket interface {
	// write path
	Writev(bs [][]byte) (int, error)
	Write(b []byte) (int, error)
	OutboundBuffered() int
	// read path
	InboundBuffered() int
	Peek(n int) ([]byte, error)
	Discard(n int) (int, error)
}

// Conn is one client connection. It is owned by one event loop: fields are
// touched only there, so it carries no mutex. Methods say whether they are
// "loop only" or "safe from any goroutine".
type Conn struct {
	_ noCopy

	// Write-path state first: a broadcast touches these, and only these, for
	// every subscriber, so they share the struct's first cache line.
	sock             socket // a gnet.Conn, or a simulated one
	state            connState
	kind             connKind
	dirty            bool        // on loop.dirty
	closeAfterFlush  bool        // close the socket once the queued bytes leave
	fragOp           OpCode      // opcode of the fragmented message in progress, 0 if none
	closeReason      CloseReason // why it closed: see takeCloseInfo
	closeCode        CloseCode
	segHead, segTail int32 // 1-based indexes into loop.segs; 0 = empty
	// Both stay under Options.MaxPendingBytes (at most maxPendingBytes) plus
	// one frame: admit and flush close the connection past it.
	pending int32 // bytes queued this pass
	owed    int32 // socket's unsent bytes at the last flush (see admit)
	id      uint64
	loop    *loop
	closed  atomic.Bool // mirrors state==stateClosed for other goroutines
	idx     int32       // position in loop.conns

	// The fields below are packed by size: the struct is allocated per
	// connection and its size class (160 B, see TestConnSize) is most of the
	// engine's idle cost.
	route  *route   // handler and path, shared by the route's connections
	value  any      // the application's per-connection state (SetValue)
	remote net.Addr // gnet's, copied: gnet clears its own when the conn is released
	topics []string // topics this connection is subscribed to (loop only)

	// read side
	need    int32 // bytes needed before the next parse attempt; needPaused while paused
	scanned int32 // request-head bytes already searched for CRLFCRLF

	// timers, in unix nanoseconds from the loop's clock
	//
	// deadline depends on the state, so that one field serves three: while
	// handshaking, the request head's deadline; open, when the engine last
	// sent a ping (see checkTimers); closing, the peer's close frame's deadline.
	deadline int64
	lastRead int64
	timerAt  int64 // OnTimer deadline, 0 = none
}

// route is what a connection is served by. A WebSocket route's is shared by
// all its connections, so a connection pays one pointer for both.
type route struct {
	h    Handler
	path string
	// heartbeat is a stream route's heartbeat period (ns), 0 for none (sse.go).
	heartbeat int64
	// alias, if set, is another handler whose PublishAll reaches this
	// route's connections too (SSEOptions.PublishAllOf).
	alias Handler
	// max caps the route's open connections (0: none); open counts them
	// while it is set (Engine.reserve).
	max  int64
	open atomic.Int64
	// maxPending, if positive, is the route's own MaxPendingBytes
	// (Engine.LimitPendingBytes).
	maxPending int
}

// noCopy makes go vet flag copies of loop-owned structs.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}

// ID is the engine-unique id of the connection. Safe from any goroutine.
func (c *Conn) ID() uint64 { return c.id }

// Handler is the Handler serving c, nil until its handshake completes. Safe
// from any goroutine once OnOpen has run.
func (c *Conn) Handler() Handler {
	if c.route == nil {
		return nil
	}
	return c.route.h
}

// Path is the request path the connection was opened on. Safe from any goroutine.
func (c *Conn) Path() string {
	if c.route == nil {
		return ""
	}
	return c.route.path
}

// RemoteAddr is the peer's address. Safe from any goroutine.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// setClose records why the connection closes; callers that must keep an
// earlier reason check closeReason first. Loop only.
//
// The error waits in the loop's closeErrs rather than in a Conn field: only
// a closing connection has one, and 16 bytes on every Conn would cost a
// size class.
func (c *Conn) setClose(reason CloseReason, code CloseCode, err error) {
	c.closeReason, c.closeCode = reason, code
	l := c.loop
	switch {
	case err != nil:
		if l.closeErrs == nil {
			l.closeErrs = make(map[*Conn]error)
		}
		l.closeErrs[c] = err
	case l.closeErrs != nil:
		delete(l.closeErrs, c)
	}
}

// takeCloseInfo is what OnClose is told; the loop forgets c's error. Loop
// only, once per connection.
func (c *Conn) takeCloseInfo() CloseInfo {
	l := c.loop
	err := l.closeErrs[c]
	if err != nil {
		delete(l.closeErrs, c)
	}
	return CloseInfo{Reason: c.closeReason, Code: c.closeCode, Err: err}
}

// gnetConn is the connection's gnet.Conn, nil for a simulated one.
func (c *Conn) gnetConn() gnet.Conn {
	gc, _ := c.sock.(gnet.Conn)
	return gc
}

// Closed reports whether the connection has ended. Safe from any goroutine.
func (c *Conn) Closed() bool { return c.closed.Load() }

// SetValue stores the application's per-connection state. Loop only; set
// it in CheckHandshake (through Request.Conn, to keep what authenticated
// the connection) or in OnOpen, before other goroutines can see the
// connection.
func (c *Conn) SetValue(v any) { c.value = v }

// Value returns what SetValue stored. Safe from any goroutine once OnOpen
// has run, if it was set before then.
func (c *Conn) Value() any { return c.value }

// SetTimer asks for Handler.OnTimer to run at or after the unix-nano time at
// (resolution Options.SweepPeriod). Zero cancels. Loop only.
func (c *Conn) SetTimer(at int64) { c.timerAt = at }

// IsStream reports whether this is a long-lived HTTP response rather than a
// WebSocket. Safe from any goroutine once OnOpen has run.
func (c *Conn) IsStream() bool { return c.kind == kindStream || c.kind == kindStreamPlain }

// LoopIndex is the index of the owning event loop, for per-loop sharding by
// the application. Safe from any goroutine.
func (c *Conn) LoopIndex() int { return c.loop.idx }

// LastRead is when bytes were last read from the connection (a pong
// included), in unix nanoseconds of the loop's clock, the clock OnTimer's
// now comes from: a protocol with a heartbeat of its own sends pings and
// reads this to tell a live peer from a silent one. Loop only.
func (c *Conn) LastRead() int64 { return c.lastRead }

// Buffered is how many bytes the connection owes its peer: queued in this
// loop pass and not yet taken by the kernel at the last flush (WebSocket's
// bufferedAmount). A protocol that sends a long backlog paces itself by it
// rather than be closed as a slow consumer. Loop only.
func (c *Conn) Buffered() int {
	if c.state == stateClosed || c.sock == nil {
		return 0
	}
	return int(c.pending) + c.sock.OutboundBuffered()
}

// WriteText queues p as one WebSocket text message. p is copied. Loop only.
func (c *Conn) WriteText(p []byte) error { return c.writeMessage(OpText, p) }

// WriteBinary queues p as one WebSocket binary message. p is copied. Loop only.
func (c *Conn) WriteBinary(p []byte) error { return c.writeMessage(OpBinary, p) }

// WriteFrame queues a prepared frame. The frame is shared, not copied; the
// engine holds a reference until it is written. Loop only.
func (c *Conn) WriteFrame(f *Frame) error {
	if c.state != stateOpen {
		return ErrClosed
	}
	b := f.bytesFor(c.kind)
	if b == nil {
		return nil
	}
	f.retain()
	c.loop.held = append(c.loop.held, f)
	return c.loop.queueShared(c, b)
}

// WriteRaw queues p as-is, without WebSocket framing: for stream connections
// (as one chunk of the body, for an HTTP/1.1 client) and for frames the
// caller encoded itself. p is copied. Loop only.
func (c *Conn) WriteRaw(p []byte) error {
	if c.state != stateOpen {
		return ErrClosed
	}
	if c.IsStream() {
		return c.loop.queueStream(c, p)
	}
	return c.loop.queueCopy(c, p, nil)
}

func (c *Conn) writeMessage(op OpCode, p []byte) error {
	if c.state != stateOpen {
		return ErrClosed
	}
	if c.IsStream() {
		return c.loop.queueStream(c, p)
	}
	var hdr [maxHeaderSize]byte
	return c.loop.queueCopy(c, p, appendFrameHeader(hdr[:0], op, true, len(p)))
}

// Close starts the closing handshake with code and reason. Loop only; from
// another goroutine use CloseAsync.
func (c *Conn) Close(code CloseCode, reason string) {
	c.loop.closeConn(c, ReasonServerClosed, code, reason, nil)
}

// Send queues a prepared frame for this connection from any goroutine. The
// engine takes its own reference; the caller keeps (and releases) its own.
func (c *Conn) Send(f *Frame) {
	if c.closed.Load() {
		return
	}
	f.retain()
	c.loop.post(task{op: opSend, conn: c, frame: f})
}

// SendText queues p as one text message from any goroutine. p is copied.
func (c *Conn) SendText(p []byte) {
	if c.closed.Load() {
		return
	}
	f := NewTextFrame(p)
	c.loop.post(task{op: opSend, conn: c, frame: f})
}

// CloseAsync closes the connection with code and reason from any goroutine.
func (c *Conn) CloseAsync(code CloseCode, reason string) {
	if c.closed.Load() {
		return
	}
	c.loop.post(task{op: opClose, conn: c, code: code, text: reason})
}

// Do runs fn on the connection's loop, from any goroutine. fn is dropped if
// the connection closes first. It allocates; keep it off per-message paths.
func (c *Conn) Do(fn func(c *Conn)) {
	if c.closed.Load() {
		return
	}
	c.loop.post(task{op: opFunc, conn: c, fn: fn})
}

// DoWait runs fn on the connection's loop and returns once the loop has
// run it or dropped it: it reports whether fn ran, false when the
// connection closed or the engine stopped first. Call it from any goroutine
// but an event loop's (it would wait for itself). It allocates.
func (c *Conn) DoWait(fn func(c *Conn)) bool {
	if c.closed.Load() {
		return false
	}
	done := make(chan bool, 1)
	c.loop.post(task{op: opFunc, conn: c, fn: fn, done: done})
	return c.loop.e.await(done)
}

// PauseReading stops handing the connection's messages to its handler:
// what the client sends waits, unparsed, until ResumeReading. A protocol
// whose handler cannot keep up with one client (commands queued faster
// than they complete) pauses it instead of refusing its messages, so the
// client is slowed down, not failed. Control frames wait too. Loop only;
// a no-op unless the connection is open.
//
// With third_party/gnet the socket itself is not read while paused: what
// the client sends waits in the kernel, its TCP window closes and its
// writes block, and the server holds at most what gnet had read before the
// pause (one read, Options.ReadBufferCap) beside one frame in progress.
// Upstream gnet reads on into the connection's buffer; past
// Options.MaxPausedBytes of unparsed input the connection is closed with
// 1008 (ReasonLimit). Either way a paused client that closes its side is
// noticed only when reading resumes.
func (c *Conn) PauseReading() {
	if c.state != stateOpen || c.need == needPaused {
		return
	}
	c.need = needPaused
	c.readSocket(false)
}

// ReadingPaused reports whether PauseReading is in force. Loop only.
func (c *Conn) ReadingPaused() bool { return c.need == needPaused }

// needPaused is Conn.need while reading is paused: no amount of input is
// enough to parse. A pause flag of its own would cost every connection a
// size class; the parser never asks for this much (see readFrames).
const needPaused = math.MaxInt32

// ResumeReading undoes PauseReading: the loop parses what waited and goes
// on reading. Safe from any goroutine; a no-op on a closed connection.
func (c *Conn) ResumeReading() {
	if c.closed.Load() {
		return
	}
	c.loop.post(task{op: opResume, conn: c})
}

// readPauser is what third_party/gnet's connections add to upstream's
// (MESHFAST.md, change 6): reading paused at the socket. Reached by
// assertion, so that the engine builds against upstream gnet too.
type readPauser interface {
	PauseRead() error
	ResumeRead() error
}

// readSocket turns reading the socket on or off where the transport can
// (third_party/gnet on Linux); elsewhere input keeps arriving and
// Options.MaxPausedBytes bounds it. Loop only.
func (c *Conn) readSocket(on bool) {
	p, ok := c.sock.(readPauser)
	if !ok {
		return
	}
	var err error
	if on {
		err = p.ResumeRead()
	} else {
		err = p.PauseRead()
	}
	if err != nil {
		// Paused, reading goes on and the bound on paused input applies, as
		// on upstream gnet; resumed, the connection is read no more until
		// it closes: say so either way.
		c.loop.e.opts.Logger.Warn("engine: turning the socket's reading on or off failed", "conn", c.id, "on", on, "err", err)
	}
}
