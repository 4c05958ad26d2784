package engine

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"
)

// taskOp says what a posted task does.
type taskOp uint8

const (
	opSend       taskOp = iota // write frame to conn
	opClose                    // close conn with code/text
	opPublish                  // write frame to every local subscriber of topic
	opBroadcast                // write frame to conns (all on this loop)
	opSubscribe                // subscribe conn to topic
	opUnsub                    // unsubscribe conn from topic
	opFunc                     // run fn(conn)
	opLoopFunc                 // run lfn on the loop
	opTick                     // timer sweep
	opShutdown                 // close every connection with 1001
	opPublishAll               // write frame to every connection of handler (nil: all)
	opResume                   // resume reading conn (see Conn.ResumeReading)
)

// task is one unit of work posted to a loop. It is a plain struct, not a
// closure, so posting allocates nothing once the inbox has grown.
type task struct {
	frame   *Frame
	conn    *Conn
	conns   []*Conn
	exclude []uint64
	fn      func(*Conn)
	lfn     func()
	handler Handler // opPublishAll: only this handler's connections
	topic   string
	text    string
	done    chan bool // opSubscribe, opFunc: told whether the task took effect once the loop ran or dropped it
	op      taskOp
	code    CloseCode
}

// executor runs a Runnable on the loop goroutine; gnet's EventLoop, or a
// plain goroutine in the simulation.
type executor interface {
	Execute(ctx context.Context, r gnet.Runnable) error
}

// segment is a run of bytes queued for one connection: either shared frame
// bytes, or a range of the loop's arena.
type segment struct {
	shared   []byte
	off, end int32
	next     int32 // 1-based index of the next segment, 0 = last
}

// loop is meshfast's state for one gnet event loop. Everything but the
// inbox is touched only on the loop goroutine.
type loop struct {
	e    *Engine
	idx  int
	exec executor

	mu        sync.Mutex // guards inbox and scheduled
	inbox     []task
	spare     []task
	scheduled bool

	// loop-only
	depth    int       // nesting of entry points; flush when it returns to 0
	flushing bool      // inside flushDirty
	chunked  bool      // this batch may flush a broadcast in chunks (see Run)
	walking  int       // inside a topic walk: handler OnClose calls are deferred
	deferred []*Conn   // connections whose OnClose waits for the walk to end
	current  *Conn     // connection whose OnTraffic is running
	dirty    []*Conn   // connections with queued bytes
	segs     []segment // segment arena, reset after each flush
	arena    []byte    // copied bytes, reset after each flush
	iov      [][]byte  // writev scratch
	gather   []byte    // gather-copy scratch for many small segments
	held     []*Frame  // frames referenced by segs, released after flush
	conns    []*Conn   // every connection, for the timer sweep
	cursor   int       // sweep position in conns
	topics   map[string]*topicSet
	now      int64      // the loop's clock for this pass
	yielded  int64      // clock when the loop last yielded (see yieldAfter)
	yields   uint64     // times it did, for tests
	hsReader byteReader // handshake request reader
	hsWriter byteWriter // handshake response writer
	req      Request    // the request being handshaken
	resp     Response   // the HTTP response being built

	// closeErrs holds the error of each connection closing because of one,
	// until its OnClose (see Conn.setClose).
	closeErrs map[*Conn]error
	// frags holds the reassembly buffer of each connection in the middle of
	// a fragmented message (Conn.fragOp != 0). Few ever are, so a field on
	// every Conn would cost more than a map lookup per continuation frame.
	frags map[*Conn]*bytebufferpool.ByteBuffer
	// over holds the frame each connection was admitted over
	// MaxPendingBytes (see admit), until it has drained. Few connections
	// ever have one, and only the over-the-cap path looks here.
	over map[*Conn]oversize

	stats loopStats
	pass  passStats // counted during a flush, added to stats at its end
}

type passStats struct{ writes, frames, bytes uint64 }

// loopStats are per-loop counters. Only the loop writes them; atomics let
// Stats read them from other goroutines without a lock.
type loopStats struct {
	writes        atomic.Uint64 // write/writev calls
	framesWritten atomic.Uint64 // frames (segments) handed to those calls
	bytesWritten  atomic.Uint64
	messagesIn    atomic.Uint64
	bytesIn       atomic.Uint64
}

func newLoop(e *Engine, idx int, exec executor) *loop {
	return &loop{e: e, idx: idx, exec: exec, topics: make(map[string]*topicSet)}
}

// post queues t for the loop and wakes it once for however many tasks pile
// up before it runs, so a burst of publishes costs one wake-up.
func (l *loop) post(t task) {
	l.mu.Lock()
	l.inbox = append(l.inbox, t)
	wake := !l.scheduled
	l.scheduled = true
	l.mu.Unlock()
	if wake {
		if err := l.exec.Execute(context.Background(), l); err != nil {
			// The engine is stopping: nothing will run these tasks.
			l.mu.Lock()
			dropped := l.inbox
			l.inbox = l.spare[:0]
			l.spare = nil
			l.scheduled = false
			l.mu.Unlock()
			for i := range dropped {
				if dropped[i].frame != nil {
					dropped[i].frame.Release()
				}
				if dropped[i].done != nil {
					dropped[i].done <- false
				}
			}
		}
	}
}

// Run drains the inbox on the loop goroutine. It implements gnet.Runnable.
func (l *loop) Run(context.Context) error {
	l.mu.Lock()
	tasks := l.inbox
	l.inbox = l.spare[:0]
	l.spare = nil
	l.scheduled = false
	l.mu.Unlock()

	// Flushing in chunks keeps a large broadcast in cache, but when a batch
	// carries several broadcasts (a high publish rate), everything queued
	// for a connection in the pass must leave in one write: no early flush.
	fanouts := 0
	for i := range tasks {
		switch tasks[i].op {
		case opPublish, opPublishAll, opBroadcast:
			fanouts++
		}
	}
	l.chunked = fanouts <= 1
	l.enter()
	for i := 0; i < len(tasks); i++ {
		t := &tasks[i]
		if t.op == opPublish && t.exclude == nil {
			// Consecutive publishes to one topic are walked together: each
			// subscriber gets all of them queued while it is in cache, and
			// they leave in one write. Frames to other topics keep their
			// place, so per-connection order is the publish order.
			j := i + 1
			for j < len(tasks) && tasks[j].op == opPublish && tasks[j].exclude == nil && tasks[j].topic == t.topic {
				j++
			}
			l.publishRun(t.topic, tasks[i:j])
			i = j - 1
			continue
		}
		l.runTask(t)
	}
	l.leave()
	if obs := l.e.opts.PublishLatency; obs != nil {
		now := l.e.clock()
		for i := range tasks {
			if t := &tasks[i]; (t.op == opPublish || t.op == opBroadcast || t.op == opPublishAll) && t.frame.at != 0 {
				obs(l.idx, time.Duration(now-t.frame.at))
			}
		}
	}
	for i := range tasks {
		if tasks[i].frame != nil {
			tasks[i].frame.Release()
		}
		tasks[i] = task{}
	}
	l.mu.Lock()
	if l.spare == nil {
		l.spare = tasks[:0]
	}
	l.mu.Unlock()
	return nil
}

func (l *loop) runTask(t *task) {
	switch t.op {
	case opSend:
		if c := t.conn; c.state == stateOpen {
			if b := t.frame.bytesFor(c.kind); b != nil {
				_ = l.queueShared(c, b)
			}
		}
	case opClose:
		if t.conn.state != stateClosed {
			l.closeConn(t.conn, ReasonServerClosed, t.code, t.text, nil)
		}
	case opPublish:
		l.publishLocal(t.topic, t.frame, t.exclude)
	case opBroadcast:
		for _, c := range t.conns {
			if c.state == stateOpen && !excluded(t.exclude, c.id) {
				if b := t.frame.bytesFor(c.kind); b != nil {
					_ = l.queueShared(c, b)
				}
			}
		}
	case opSubscribe:
		ok := t.conn.state == stateOpen
		if ok {
			l.subscribe(t.conn, t.topic)
		}
		if t.done != nil {
			t.done <- ok
		}
	case opUnsub:
		l.unsubscribe(t.conn, t.topic)
	case opFunc:
		ran := t.conn.state == stateOpen
		if ran {
			t.fn(t.conn)
		}
		if t.done != nil {
			t.done <- ran
		}
	case opResume:
		if c := t.conn; c.state == stateOpen && c.need == needPaused {
			c.need = 0
			c.lastRead = l.now // silence while paused was ours, not the peer's
			// The socket is read again only once this task is done, after
			// what waited in gnet's buffer: order holds.
			c.readSocket(true)
			l.readBuffered(c)
		}
	case opLoopFunc:
		t.lfn()
	case opPublishAll:
		l.publishAll(t.frame, t.exclude, t.handler)
	case opTick:
		l.sweep()
	case opShutdown:
		for i := len(l.conns) - 1; i >= 0; i-- {
			if i < len(l.conns) {
				l.closeConn(l.conns[i], ReasonShutdown, CloseGoingAway, "server shutting down", nil)
			}
		}
	}
}

func excluded(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// enter marks the start of an entry point (a gnet callback or a task batch).
func (l *loop) enter() {
	if l.depth == 0 {
		l.now = l.e.clock()
		l.maybeYield(l.now)
	}
	l.depth++
}

// yieldAfter is how long a loop may run without passing through Go's
// scheduler. gnet's loops make their system calls holding their P. When a
// goroutine has not been scheduled for 10 ms and is found in a system call,
// the runtime's sysmon preempts it and takes its P (proc.go: retake,
// forcePreemptNS), and each P it takes sets sysmon back to polling every
// 20 µs, which on a VM costs ~10 µs of CPU a poll. A busy loop that yields
// well inside those 10 ms is never taken that way; an idle one parks in the
// netpoller (third_party/gnet) and holds no P. A yield with nothing else
// runnable costs well under a microsecond.
const yieldAfter = int64(2 * time.Millisecond)

// maybeYield yields the loop goroutine if it has not for yieldAfter.
// Nothing else touches loop state meanwhile: the loop owns it.
func (l *loop) maybeYield(now int64) {
	if now-l.yielded < yieldAfter {
		return
	}
	l.yielded = now
	l.yields++
	runtime.Gosched()
}

// leave ends an entry point; the outermost one flushes every dirty connection.
func (l *loop) leave() {
	l.depth--
	if l.depth == 0 && len(l.dirty) > 0 {
		l.depth++ // callbacks fired by a failing write must not flush re-entrantly
		l.flushDirty()
		l.depth--
	}
}

// flushEarly flushes mid-pass (a large broadcast, chunk by chunk, while
// its connections are still in cache) unless a flush is already running.
func (l *loop) flushEarly() {
	if !l.chunked || l.flushing || len(l.dirty) == 0 {
		return
	}
	l.flushDirty()
}

// queueShared queues shared bytes (a published frame) for c.
func (l *loop) queueShared(c *Conn, b []byte) error {
	if !l.admit(c, len(b)) {
		return ErrClosed
	}
	l.segs = append(l.segs, segment{shared: b})
	l.link(c, len(b))
	return nil
}

// queueCopy queues hdr followed by p, both copied into the arena.
func (l *loop) queueCopy(c *Conn, p, hdr []byte) error {
	n := len(hdr) + len(p)
	if !l.admit(c, n) {
		return ErrClosed
	}
	off := len(l.arena)
	l.arena = append(l.arena, hdr...)
	l.arena = append(l.arena, p...)
	l.segs = append(l.segs, segment{off: int32(off), end: int32(off + n)})
	l.link(c, n)
	return nil
}

// admit enforces Options.MaxPendingBytes when bytes are queued: a consumer
// that lets that much pile up is closed instead of growing the loop.
//
// c.owed caches what the kernel had not taken at the last flush, so the
// common case never touches the transport (a cache miss per subscriber at
// a million of them); only a connection that looks over the cap is asked
// again, since gnet may have drained it since.
//
// The cap is on what a client owes, not on what the server sends: a frame
// queued while the socket owes nothing (the client has read everything
// flushed to it) is admitted whatever its size, since a client that reads
// promptly is not slow for receiving one large frame the server chose to
// send (a large record, a patch larger than its value). It is set aside
// (l.over) until it has drained: meanwhile the connection may queue up to
// MaxPendingBytes besides it, counted as usual, so a client that reads on
// keeps receiving, and one that stops is closed once that much more piles
// up. At most one frame is set aside per connection, so a connection never
// holds more than MaxPendingBytes and one frame. What the socket owes is
// not split by frame: once the set-aside frame has been flushed, whatever
// it owes, up to the frame's size, is taken as the frame's, which errs
// towards keeping the connection.
func (l *loop) admit(c *Conn, n int) bool {
	max := l.maxPending(c)
	if int(c.pending)+n+int(c.owed) <= max {
		return true
	}
	owed := c.sock.OutboundBuffered()
	c.owed = clampOwed(owed)
	aside, has := 0, false
	if len(l.over) > 0 {
		aside, has = l.oversizeLeft(c, owed)
	}
	if int(c.pending)+n+owed-aside <= max {
		return true
	}
	if owed == 0 && !has && n < maxPendingBytes {
		if l.over == nil {
			l.over = make(map[*Conn]oversize)
		}
		l.over[c] = oversize{left: int32(n)}
		return true
	}
	l.slowConsumer(c, 1)
	return false
}

// maxPending is c's cap on what it may owe: its route's, if the route has
// one (Engine.LimitPendingBytes), else Options.MaxPendingBytes.
func (l *loop) maxPending(c *Conn) int {
	if r := c.route; r != nil && r.maxPending > 0 {
		return r.maxPending
	}
	return l.e.opts.MaxPendingBytes
}

// oversize is a frame admitted over MaxPendingBytes (see admit).
type oversize struct {
	left    int32 // at most how many of its bytes are unsent
	flushed bool  // handed to the socket: left is then at most what it owes
}

// oversizeLeft returns how many bytes of c's set-aside frame may still be
// unsent, given what its socket owes now, and whether it has one. A frame
// the socket has drained is forgotten.
func (l *loop) oversizeLeft(c *Conn, owed int) (int, bool) {
	o, ok := l.over[c]
	if !ok {
		return 0, false
	}
	if o.flushed {
		o.left = int32(min(int(o.left), owed))
		if o.left == 0 {
			delete(l.over, c)
			return 0, false
		}
		l.over[c] = o
	}
	return int(o.left), true
}

// oversizeFlushed notes that c's set-aside frame, if any, has been handed
// to the socket, and returns how much of what the socket owes may be it.
func (l *loop) oversizeFlushed(c *Conn, owed int) int {
	o, ok := l.over[c]
	if !ok {
		return 0
	}
	o.flushed = true
	l.over[c] = o
	n, _ := l.oversizeLeft(c, owed)
	return n
}

// dropOversize forgets c's set-aside frame.
func (l *loop) dropOversize(c *Conn) {
	if len(l.over) > 0 {
		delete(l.over, c)
	}
}

// slowConsumer closes c for owing more than MaxPendingBytes; refused is 1
// if admit refused a frame. What was queued for it in this pass is dropped
// (and counted, with that frame); what the socket owes stays ahead
// of the close frame, which a client that has stopped reading therefore
// never sees (see Options.SlowConsumerCode).
func (l *loop) slowConsumer(c *Conn, refused uint64) {
	l.e.slowConsumers.Add(1)
	n := refused // the frame that did not fit, if admit refused one
	for s := c.segHead; s != 0; s = l.segs[s-1].next {
		n++
	}
	l.e.dropped.Add(n)
	c.segHead, c.segTail, c.pending = 0, 0, 0
	l.dropOversize(c)
	l.closeConn(c, ReasonSlowConsumer, l.e.opts.SlowConsumerCode, "slow consumer", nil)
}

func (l *loop) link(c *Conn, n int) {
	i := int32(len(l.segs))
	if c.segTail == 0 {
		c.segHead = i
	} else {
		l.segs[c.segTail-1].next = i
	}
	c.segTail = i
	c.pending += int32(n) // admitted: at most MaxPendingBytes and one set-aside frame, both ≤ maxPendingBytes
	if !c.dirty {
		c.dirty = true
		l.dirty = append(l.dirty, c)
	}
}

// flushDirty writes every dirty connection's queued bytes in one system call
// per connection, then resets the arena.
func (l *loop) flushDirty() {
	l.flushing = true
	defer func() { l.flushing = false }()
	for i := 0; i < len(l.dirty); i++ { // callbacks may append while we walk
		if i&63 == 63 { // a flush to thousands of sockets can outlast yieldAfter
			l.maybeYield(l.e.clock())
		}
		c := l.dirty[i]
		l.dirty[i] = nil
		c.dirty = false
		switch {
		case c.state == stateClosed:
			c.segHead, c.segTail, c.pending = 0, 0, 0
		case c.segHead != 0:
			l.flush(c)
		case c.closeAfterFlush:
			l.closeTransport(c)
		}
	}
	l.dirty = l.dirty[:0]
	l.segs = l.segs[:0]
	// one atomic add per counter per pass, not per connection
	l.stats.writes.Add(l.pass.writes)
	l.stats.framesWritten.Add(l.pass.frames)
	l.stats.bytesWritten.Add(l.pass.bytes)
	l.pass = passStats{}
	if cap(l.arena) > 4<<20 {
		l.arena = nil // one huge burst should not pin memory
	} else {
		l.arena = l.arena[:0]
	}
	for i, f := range l.held {
		f.Release()
		l.held[i] = nil
	}
	l.held = l.held[:0]
}

// gatherLimit is the largest total below which many segments are copied
// into one buffer and written with write(2): x/sys allocates the iovec array
// for more than 8 segments, a copy of a few KiB costs less.
const gatherLimit = 64 << 10

func (l *loop) flush(c *Conn) {
	iov := l.iov[:0]
	frames := 1
	if c.segHead == c.segTail { // one segment, a broadcast's usual case: nothing to merge
		seg := &l.segs[c.segHead-1]
		if seg.shared != nil {
			iov = append(iov, seg.shared)
		} else {
			iov = append(iov, l.arena[seg.off:seg.end])
		}
	} else {
		iov, frames = l.gatherSegments(c, iov)
	}
	total := int(c.pending)
	c.segHead, c.segTail, c.pending = 0, 0, 0
	l.pass.writes++
	l.pass.frames += uint64(frames)
	l.pass.bytes += uint64(total)
	var err error
	switch {
	case len(iov) == 1:
		_, err = c.sock.Write(iov[0])
	case len(iov) <= 8 || total > gatherLimit:
		_, err = c.sock.Writev(iov)
	default:
		g := l.gather[:0]
		for _, b := range iov {
			g = append(g, b...)
		}
		l.gather = g
		_, err = c.sock.Write(g)
	}
	for i := range iov {
		iov[i] = nil
	}
	l.iov = iov[:0]
	if err != nil || c.state == stateClosed {
		return // gnet closed it; OnClose has run
	}
	if c.closeAfterFlush {
		l.closeTransport(c)
		return
	}
	// What admit let through can still leave the socket owing more than the
	// cap if the transport was written around the write path; a frame set
	// aside by admit does not count.
	owed := c.sock.OutboundBuffered()
	c.owed = clampOwed(owed)
	aside := 0
	if len(l.over) > 0 {
		aside = l.oversizeFlushed(c, owed)
	}
	if owed-aside > l.maxPending(c) {
		l.slowConsumer(c, 0)
	}
}

// gatherSegments appends c's queued segments to iov and counts them.
// Copied bytes queued one after the other (a handshake's 101 and the
// handler's first message, a reply and a push) are adjacent in the arena:
// they become one iovec, often one write(2) instead of writev.
func (l *loop) gatherSegments(c *Conn, iov [][]byte) ([][]byte, int) {
	frames := 0
	arenaFrom, arenaTo := int32(-1), int32(-1) // the last iovec, if it is a run of the arena
	for s := c.segHead; s != 0; s = l.segs[s-1].next {
		seg := &l.segs[s-1]
		frames++
		switch {
		case seg.shared != nil:
			iov = append(iov, seg.shared)
			arenaTo = -1
		case seg.off == arenaTo:
			arenaTo = seg.end
			iov[len(iov)-1] = l.arena[arenaFrom:arenaTo]
		default:
			arenaFrom, arenaTo = seg.off, seg.end
			iov = append(iov, l.arena[seg.off:seg.end])
		}
	}
	return iov, frames
}

// clampOwed stores a transport's unsent byte count in Conn.owed. Past
// MaxPendingBytes (at most maxPendingBytes) the connection is closed anyway,
// so only counts that fit matter.
func clampOwed(n int) int32 { return int32(min(n, maxPendingBytes+1)) }

// closeConn ends c: a WebSocket gets a close frame and a short wait for the
// peer's reply (so unread input does not turn the close into a reset); a
// connection still in its handshake, or already closing, is dropped.
func (l *loop) closeConn(c *Conn, reason CloseReason, code CloseCode, text string, err error) {
	switch c.state {
	case stateClosed:
		return
	case stateClosing:
		if reason != ReasonShutdown && reason != ReasonSlowConsumer {
			return
		}
		c.closeAfterFlush = true
		l.closeTransport(c)
		return
	}
	if c.closeReason == ReasonUnknown {
		c.setClose(reason, code, err)
	}
	if c.state == stateOpen && c.kind == kindWebSocket && reason != ReasonSlowConsumer {
		var buf [maxHeaderSize + 125]byte
		cf := appendCloseFrame(buf[:0], code, text)
		off := len(l.arena)
		l.arena = append(l.arena, cf...)
		l.segs = append(l.segs, segment{off: int32(off), end: int32(len(l.arena))})
		l.link(c, len(cf))
		c.state = stateClosing
		c.deadline = l.now + int64(l.e.opts.CloseTimeout)
		if c.need == needPaused {
			c.readSocket(true) // the peer's close frame is behind what it sent
		}
		return
	}
	if c.state == stateOpen && c.kind == kindStream && reason != ReasonSlowConsumer {
		// A chunked stream the server ends gets the last chunk, so that
		// the client sees the body end rather than break.
		_ = l.queueCopy(c, lastChunk, nil)
	}
	if c.state == stateOpen && c.kind == kindWebSocket {
		// A slow consumer gets its close frame straight to gnet's buffer,
		// behind what it owes, and is closed at once: waiting on it is what
		// we are refusing to do. gnet writes what it can before closing and
		// drops the rest, the close frame with it, so only a client that
		// had nearly caught up sees the code.
		var buf [maxHeaderSize + 125]byte
		_, _ = c.sock.Write(appendCloseFrame(buf[:0], code, text))
	}
	c.closeAfterFlush = true
	if c.dirty && c.segHead != 0 {
		return // flush closes it once the queued bytes are out
	}
	l.closeTransport(c)
}

// closeTransport closes the socket now (gnet writes what it still buffers).
// OnClose runs synchronously, unless c is the connection in OnTraffic, which
// is closed by returning gnet.Close.
func (l *loop) closeTransport(c *Conn) {
	if c.state == stateClosed {
		return
	}
	if c == l.current {
		c.closeAfterFlush = true
		return
	}
	if gc := c.gnetConn(); gc != nil {
		if c.dirty {
			c.dirty = false // flush skips closed conns; gnet drops the unsent queue
		}
		_ = gc.EventLoop().Close(gc)
		return
	}
	l.e.connClosed(c, nil)
}

// sweep is the per-loop timer: each tick visits a slice of the connections
// so every one is seen once per SweepPeriod, with no timer per connection.
func (l *loop) sweep() {
	o := &l.e.opts
	n := len(l.conns)
	if n == 0 {
		return
	}
	ticks := int(o.SweepPeriod / o.TickInterval)
	batch := (n + ticks - 1) / ticks
	now := l.now
	for i := 0; i < batch && len(l.conns) > 0; i++ {
		if l.cursor >= len(l.conns) {
			l.cursor = 0
		}
		c := l.conns[l.cursor]
		l.cursor++
		l.checkTimers(c, now)
	}
}

func (l *loop) checkTimers(c *Conn, now int64) {
	o := &l.e.opts
	switch c.state {
	case stateHandshake:
		if now > c.deadline {
			c.setClose(ReasonHandshakeTimeout, CloseAbnormal, nil)
			l.closeTransport(c)
		}
	case stateClosing:
		if now > c.deadline {
			c.closeAfterFlush = true
			l.closeTransport(c)
		}
	case stateOpen:
		// A paused connection is not read, so its silence says nothing about
		// the peer (its pongs wait behind what the handler has not taken):
		// neither idle nor due a ping until it is resumed.
		if c.kind == kindWebSocket && c.need != needPaused {
			silent := now - c.lastRead
			if o.IdleTimeout > 0 && silent > int64(o.IdleTimeout) {
				l.closeConn(c, ReasonIdleTimeout, CloseGoingAway, "idle timeout", nil)
				return
			}
			if o.PingInterval > 0 && silent > int64(o.PingInterval) && now-c.deadline > int64(o.PingInterval) {
				c.deadline = now // open: the last ping's time
				_ = l.queueCopy(c, nil, pingFrame[:])
			}
		}
		if c.IsStream() {
			l.streamTimers(c, now)
		}
		if c.timerAt != 0 && now >= c.timerAt {
			c.timerAt = 0
			if th, ok := c.route.h.(TimerHandler); ok {
				th.OnTimer(c, now)
			}
		}
	}
}

var pingFrame = [2]byte{0x80 | byte(OpPing), 0}

func (l *loop) addConn(c *Conn) {
	c.idx = int32(len(l.conns))
	l.conns = append(l.conns, c)
}

func (l *loop) removeConn(c *Conn) {
	i := int(c.idx)
	if i < 0 || i >= len(l.conns) || l.conns[i] != c {
		return
	}
	last := len(l.conns) - 1
	l.conns[i] = l.conns[last]
	l.conns[i].idx = int32(i)
	l.conns[last] = nil
	l.conns = l.conns[:last]
	c.idx = -1
	if len(l.conns) == 0 && cap(l.conns) > 1024 {
		l.conns = nil
	}
}

// clock returns unix nanoseconds.
func wallClock() int64 { return time.Now().UnixNano() }

// fragOf is c's reassembly buffer, nil if no fragmented message is in
// progress.
func (l *loop) fragOf(c *Conn) *bytebufferpool.ByteBuffer {
	if c.fragOp == 0 {
		return nil
	}
	return l.frags[c]
}

// dropFrag releases c's reassembly buffer, if any, and ends the message.
func (l *loop) dropFrag(c *Conn) {
	if c.fragOp == 0 {
		return
	}
	if f := l.frags[c]; f != nil {
		releaseBuf(f)
		delete(l.frags, c)
	}
	c.fragOp = 0
}
