package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Handler serves one WebSocket (or stream) protocol. Every method runs on the
// connection's event loop and must not block.
type Handler interface {
	// OnOpen runs once the handshake has succeeded. r is valid only during
	// the call.
	OnOpen(c *Conn, r *Request)
	// OnMessage runs for each complete data message. payload is valid only
	// until OnMessage returns: it points into the read buffer.
	OnMessage(c *Conn, op OpCode, payload []byte)
	// OnClose runs once when an opened connection ends.
	OnClose(c *Conn, info CloseInfo)
}

// HandshakeChecker is an optional Handler method run before the upgrade is
// accepted (authentication, origin checks). Returning an *HTTPError refuses
// with its status; any other error refuses with 403.
type HandshakeChecker interface {
	CheckHandshake(r *Request) error
}

// TimerHandler is an optional Handler method run when a deadline set with
// Conn.SetTimer passes (resolution Options.SweepPeriod), on the loop.
type TimerHandler interface {
	OnTimer(c *Conn, now int64)
}

// HTTPHandler answers a plain HTTP request on the loop; it must not block.
type HTTPHandler func(w *Response, r *Request)

// Engine is a gnet server with WebSocket and HTTP routing. Create it with
// New, register routes, then Serve. Methods are safe from any goroutine
// unless they say otherwise.
type Engine struct {
	opts  Options
	clock func() int64

	routesMu sync.RWMutex
	ws       map[string]*wsRoute
	http     map[string]HTTPHandler

	gnet    gnet.Engine
	booted  chan struct{}
	done    chan struct{}
	serveMu sync.Mutex
	serving bool
	addr    net.Addr
	runErr  error

	loopsMu sync.Mutex
	loopMap map[gnet.EventLoop]*loop
	loops   atomic.Pointer[[]*loop] // copy-on-write list for publishers

	topicIdx topicIndex
	registry registry

	nextID        atomic.Uint64
	open          atomic.Int64 // upgraded WebSocket + stream connections
	tcp           atomic.Int64 // accepted TCP connections
	accepted      atomic.Uint64
	slowConsumers atomic.Uint64
	dropped       atomic.Uint64 // frames discarded when a slow consumer was cut off
	draining      atomic.Bool
	closeCounts   [numReasons]atomic.Uint64
}

type wsRoute struct {
	route
	upgrader ws.Upgrader
}

// New returns an engine with opts (zero fields take their defaults).
func New(opts Options) *Engine {
	e := &Engine{
		opts:    opts.withDefaults(),
		clock:   wallClock,
		ws:      make(map[string]*wsRoute),
		http:    make(map[string]HTTPHandler),
		booted:  make(chan struct{}),
		done:    make(chan struct{}),
		loopMap: make(map[gnet.EventLoop]*loop),
	}
	e.topicIdx.init()
	empty := []*loop{}
	e.loops.Store(&empty)
	return e
}

// Options returns the options in force, defaults filled in.
func (e *Engine) Options() Options { return e.opts }

// Handle serves the WebSocket protocol h on path. Register before Serve.
func (e *Engine) Handle(path string, h Handler) {
	e.routesMu.Lock()
	defer e.routesMu.Unlock()
	e.ws[path] = &wsRoute{route: route{h: h, path: path}}
}

// HandleHTTP serves plain HTTP requests to path with fn. Register before Serve.
func (e *Engine) HandleHTTP(path string, fn HTTPHandler) {
	e.routesMu.Lock()
	defer e.routesMu.Unlock()
	e.http[path] = fn
}

// Serve runs the engine until Shutdown. It returns ErrServerClosed after a
// clean shutdown, or the error that stopped it from starting.
func (e *Engine) Serve() error {
	if err := e.opts.Validate(); err != nil {
		return err
	}
	e.serveMu.Lock()
	if e.serving {
		e.serveMu.Unlock()
		return errors.New("engine: Serve called twice")
	}
	e.serving = true
	e.serveMu.Unlock()
	defer close(e.done)
	addr := e.opts.Addr
	if e.opts.ReusePort {
		var err error
		if addr, err = claimPort(addr); err != nil {
			e.runErr = err
			close(e.booted)
			return err
		}
	}
	err := gnet.Run(e.handler(), "tcp://"+addr,
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(e.opts.Loops),
		gnet.WithReadBufferCap(e.opts.ReadBufferCap),
		gnet.WithTicker(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithReuseAddr(true),
		gnet.WithReusePort(e.opts.ReusePort),
		gnet.WithLogger(gnetLogger{e.opts.Logf}),
	)
	select {
	case <-e.booted:
	default:
		e.runErr = err
		close(e.booted)
		if err == nil {
			err = errors.New("engine: gnet stopped before booting")
		}
		return err
	}
	if err != nil {
		return err
	}
	return ErrServerClosed
}

// claimPort checks, for ReusePort, that nothing listens on addr, and turns
// port 0 into a free port. A socket without SO_REUSEPORT cannot bind a port
// that any socket listens on; one with it would join an existing
// SO_REUSEPORT group (a second server started on the same port by mistake)
// and take a share of its connections without a word. The check socket is
// closed before the loops bind theirs; a process that takes the port in
// between makes that bind fail.
func claimPort(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("engine: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	host, _, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// Start runs Serve in a goroutine and waits until the listener is bound.
func (e *Engine) Start() error {
	go func() { _ = e.Serve() }()
	<-e.booted
	return e.runErr
}

// Addr is the bound listen address, once Serve has booted.
func (e *Engine) Addr() net.Addr {
	<-e.booted
	return e.addr
}

// Shutdown stops accepting connections, sends every connection close 1001,
// waits for them to go until ctx ends, then stops the loops.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.serveMu.Lock()
	serving := e.serving
	e.serveMu.Unlock()
	if !serving {
		return ErrNotStarted
	}
	<-e.booted
	if e.runErr != nil {
		return e.runErr
	}
	if !e.draining.CompareAndSwap(false, true) {
		<-e.done
		return ErrServerClosed
	}
	for _, l := range *e.loops.Load() {
		l.post(task{op: opShutdown})
	}
	backoff := time.Millisecond
	for e.open.Load() > 0 {
		select {
		case <-ctx.Done():
			goto stop
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 50*time.Millisecond)
	}
stop:
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := e.gnet.Stop(stopCtx)
	<-e.done
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// Publish queues f for every connection subscribed to topic, on every loop,
// except the connection ids in exclude. It posts one task per loop that has
// subscribers. The caller keeps its own reference to f. Safe from any goroutine.
func (e *Engine) Publish(topic string, f *Frame, exclude []uint64) {
	mask := e.topicIdx.get(topic)
	if mask == 0 {
		return
	}
	if e.opts.PublishLatency != nil && f.at == 0 {
		f.at = e.clock()
	}
	loops := *e.loops.Load()
	for i, l := range loops {
		if mask&(1<<uint(i)) != 0 {
			f.retain()
			l.post(task{op: opPublish, topic: topic, frame: f, exclude: exclude})
		}
	}
}

// PublishAll queues f for every open connection served by h (every
// connection if h is nil), except the ids in exclude: one task per loop.
// The caller keeps its own reference to f. Safe from any goroutine.
func (e *Engine) PublishAll(f *Frame, exclude []uint64, h Handler) {
	if e.opts.PublishLatency != nil && f.at == 0 {
		f.at = e.clock()
	}
	for _, l := range *e.loops.Load() {
		f.retain()
		l.post(task{op: opPublishAll, frame: f, exclude: exclude, handler: h})
	}
}

// Broadcast queues f for each of conns, posting one task per loop. The
// caller keeps its own reference to f. Safe from any goroutine.
func (e *Engine) Broadcast(f *Frame, conns []*Conn, exclude []uint64) {
	if len(conns) == 0 {
		return
	}
	if e.opts.PublishLatency != nil && f.at == 0 {
		f.at = e.clock()
	}
	loops := *e.loops.Load()
	var perLoop [maxLoops][]*Conn
	for _, c := range conns {
		perLoop[c.loop.idx] = append(perLoop[c.loop.idx], c)
	}
	for i, cs := range perLoop[:len(loops)] {
		if len(cs) > 0 {
			f.retain()
			loops[i].post(task{op: opBroadcast, conns: cs, frame: f, exclude: exclude})
		}
	}
}

// Subscribe adds c to topic. Loop only (for c's loop); from other goroutines
// use SubscribeAsync.
func (e *Engine) Subscribe(c *Conn, topic string) bool {
	if c.state != stateOpen {
		return false
	}
	return c.loop.subscribe(c, topic)
}

// Unsubscribe removes c from topic. Loop only.
func (e *Engine) Unsubscribe(c *Conn, topic string) bool { return c.loop.unsubscribe(c, topic) }

// SubscribeAsync adds c to topic from any goroutine.
func (e *Engine) SubscribeAsync(c *Conn, topic string) {
	c.loop.post(task{op: opSubscribe, conn: c, topic: topic})
}

// SubscribeWait adds c to topic and returns once its loop has done so, so
// that a publish made after it returns reaches c. It reports false if c
// closed first. Call it from any goroutine except an event loop's (it
// would wait for itself).
func (e *Engine) SubscribeWait(c *Conn, topic string) bool {
	done := make(chan bool, 1)
	c.loop.post(task{op: opSubscribe, conn: c, topic: topic, done: done})
	return e.await(done)
}

// await waits for a task posted with a done channel. A loop answers every
// such task it runs, and post answers those it cannot queue; the engine's
// end covers the rest, tasks still queued when gnet stopped its loops.
func (e *Engine) await(done <-chan bool) bool {
	select {
	case ok := <-done:
		return ok
	case <-e.done:
		select {
		case ok := <-done:
			return ok
		default:
			return false
		}
	}
}

// UnsubscribeAsync removes c from topic from any goroutine.
func (e *Engine) UnsubscribeAsync(c *Conn, topic string) {
	c.loop.post(task{op: opUnsub, conn: c, topic: topic})
}

// Lookup returns the open connection with id, or nil. Safe from any goroutine.
func (e *Engine) Lookup(id uint64) *Conn { return e.registry.get(id) }

// ForEachLoop runs fn once on every event loop, from any goroutine. fn runs
// on the loop and must not block; it allocates, so keep it off hot paths.
func (e *Engine) ForEachLoop(fn func(loop int)) {
	for _, l := range *e.loops.Load() {
		l.post(task{op: opLoopFunc, lfn: func() { fn(l.idx) }})
	}
}

// Stats is a snapshot of the engine's counters.
type Stats struct {
	Connections   int64  // open WebSocket and stream connections
	TCP           int64  // accepted TCP connections, including handshakes
	Accepted      uint64 // connections accepted since start
	SlowConsumers uint64
	Dropped       uint64 // frames discarded when slow consumers were cut off
	Writes        uint64 // write/writev system calls by the write path
	FramesWritten uint64 // frames handed to those calls
	BytesWritten  uint64
	MessagesIn    uint64
	BytesIn       uint64
	Closed        map[string]uint64 // by CloseReason
	Loops         int
}

// Stats returns the engine's counters. Loop counters are read without
// synchronisation and may lag by one pass.
func (e *Engine) Stats() Stats {
	s := Stats{
		Connections:   e.open.Load(),
		TCP:           e.tcp.Load(),
		Accepted:      e.accepted.Load(),
		SlowConsumers: e.slowConsumers.Load(),
		Dropped:       e.dropped.Load(),
		Closed:        make(map[string]uint64),
	}
	loops := *e.loops.Load()
	s.Loops = len(loops)
	for _, l := range loops {
		s.Writes += l.stats.writes.Load()
		s.FramesWritten += l.stats.framesWritten.Load()
		s.BytesWritten += l.stats.bytesWritten.Load()
		s.MessagesIn += l.stats.messagesIn.Load()
		s.BytesIn += l.stats.bytesIn.Load()
	}
	for i := range e.closeCounts {
		if n := e.closeCounts[i].Load(); n > 0 {
			s.Closed[CloseReason(i).String()] = n
		}
	}
	return s
}

// ClosedBy returns how many connections have ended for reason r.
func (e *Engine) ClosedBy(r CloseReason) uint64 {
	if r >= numReasons {
		return 0
	}
	return e.closeCounts[r].Load()
}

// loopFor returns the loop state for a gnet event loop, creating it on the
// first connection the loop sees. Called on that loop, once per connection.
func (e *Engine) loopFor(el gnet.EventLoop) *loop {
	e.loopsMu.Lock()
	defer e.loopsMu.Unlock()
	if l := e.loopMap[el]; l != nil {
		return l
	}
	old := *e.loops.Load()
	l := newLoop(e, len(old), el)
	e.loopMap[el] = l
	next := append(old[:len(old):len(old)], l)
	e.loops.Store(&next)
	return l
}

// connClosed tears down c after its transport closed. Runs on c's loop.
func (e *Engine) connClosed(c *Conn, err error) {
	if c.state == stateClosed {
		return
	}
	wasOpen := c.state == stateOpen || c.state == stateClosing
	c.state = stateClosed
	c.closed.Store(true)
	l := c.loop
	if c.closeReason == ReasonUnknown {
		c.setClose(ReasonClientGone, CloseAbnormal, err)
	}
	e.closeCounts[c.closeReason].Add(1)
	l.removeConn(c)
	l.unsubscribeAll(c)
	l.dropFrag(c)
	e.tcp.Add(-1)
	if !wasOpen {
		_ = c.takeCloseInfo() // no handler to tell
		return
	}
	e.registry.del(c)
	e.open.Add(-1)
	if l.walking > 0 {
		l.deferred = append(l.deferred, c)
	} else {
		c.route.h.OnClose(c, c.takeCloseInfo())
	}
}

// gnetLogger routes gnet's log lines to Options.Logf.
type gnetLogger struct{ logf func(string, ...any) }

func (g gnetLogger) Debugf(string, ...any)          {}
func (g gnetLogger) Infof(format string, a ...any)  { g.logf("gnet: "+format, a...) }
func (g gnetLogger) Warnf(format string, a ...any)  { g.logf("gnet: "+format, a...) }
func (g gnetLogger) Errorf(format string, a ...any) { g.logf("gnet: "+format, a...) }
func (g gnetLogger) Fatalf(format string, a ...any) { g.logf("gnet: fatal: "+format, a...) }

// boundAddr reads the listener's address through a dup of its descriptor,
// since gnet does not report the port it bound for ":0".
func boundAddr(eng gnet.Engine) (net.Addr, error) {
	fd, err := eng.Dup()
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, err
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To4(), Port: a.Port}, nil
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}, nil
	}
	return nil, fmt.Errorf("engine: unexpected listener address %T", sa)
}

// Port is a convenience for tests and logs: the bound port.
func (e *Engine) Port() int {
	if a, ok := e.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// URL returns "ws://host:port" for the bound address.
func (e *Engine) URL() string {
	a, ok := e.Addr().(*net.TCPAddr)
	if !ok {
		return ""
	}
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "ws://" + net.JoinHostPort(host, strconv.Itoa(a.Port))
}
