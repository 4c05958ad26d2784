package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/meshfast/meshfast/internal/ratelog"
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
// New, register routes, then Serve (or Start). Methods are safe from any
// goroutine unless they say otherwise.
type Engine struct {
	opts  Options
	clock func() int64

	routesMu sync.RWMutex
	ws       map[string]*wsRoute
	http     map[string]*httpRoute
	routeErr error // the first route refused before Serve, returned by it

	gnet      gnet.Engine
	booted    chan struct{} // closed once Serve has bound its listener or failed to
	done      chan struct{} // closed when Serve returns
	drained   chan struct{} // closed when the last connection goes while draining
	drainOnce sync.Once
	serveMu   sync.Mutex
	serving   bool
	addr      net.Addr
	bootErr   error // why Serve did not start; set before booted is closed
	serveErr  error // what Serve returned; set before done is closed

	// connCap is the most TCP connections allowed at once (0: no cap), the
	// lower of Options.MaxConnections and the file limit's share; set
	// before boot. capByFiles says the file limit set it.
	connCap    int64
	capByFiles bool

	loopsMu sync.Mutex
	loopMap map[gnet.EventLoop]*loop
	loops   atomic.Pointer[[]*loop] // copy-on-write list for publishers

	topicIdx topicIndex
	registry registry

	nextID        atomic.Uint64
	open          atomic.Int64 // upgraded WebSocket + stream connections
	tcp           atomic.Int64 // accepted TCP connections
	accepted      atomic.Uint64
	refusedMax    atomic.Uint64 // closed at accept: Options.MaxConnections
	refusedFiles  atomic.Uint64 // closed at accept: the file limit's share
	refusedPerIP  atomic.Uint64 // closed at accept: Options.MaxConnectionsPerIP
	perIP         perIP
	refusalLog    ratelog.Limiter // per-IP refusals, which a client can cause at will
	capLog        ratelog.Limiter // refusals at the connection cap
	slowConsumers atomic.Uint64
	dropped       atomic.Uint64 // frames discarded when a slow consumer was cut off
	draining      atomic.Bool
	stopping      atomic.Bool // Shutdown has asked gnet to stop
	unexpected    atomic.Bool // gnet stopped without being asked
	gnetErr       atomic.Pointer[string]
	closeCounts   [numReasons]atomic.Uint64
}

type wsRoute struct {
	route
	upgrader ws.Upgrader
}

// httpRoute is a plain HTTP route: its handler and the methods it serves.
type httpRoute struct {
	fn      HTTPHandler
	methods []string
	allow   string // the 405 answer's header
}

func (rt *httpRoute) allows(method []byte) bool {
	for _, m := range rt.methods {
		if string(method) == m {
			return true
		}
	}
	return false
}

// New returns an engine with opts (zero fields take their defaults). The
// options are checked when Serve or Start runs: Validate's error is
// theirs.
func New(opts Options) *Engine {
	e := &Engine{
		opts:    opts.withDefaults(),
		clock:   wallClock,
		ws:      make(map[string]*wsRoute),
		http:    make(map[string]*httpRoute),
		booted:  make(chan struct{}),
		done:    make(chan struct{}),
		drained: make(chan struct{}),
		loopMap: make(map[gnet.EventLoop]*loop),
	}
	e.topicIdx.init()
	empty := []*loop{}
	e.loops.Store(&empty)
	return e
}

// Options returns the options in force, defaults filled in.
func (e *Engine) Options() Options { return e.opts }

// Handle serves the WebSocket protocol h on path, which must start with
// "/". Routing is by exact path: "/ws" does not serve "/ws/" or "/ws/x",
// and the query string plays no part. Register before Serve: a path Serve
// would refuse is its error (ErrInvalidRoute).
func (e *Engine) Handle(path string, h Handler) {
	e.routesMu.Lock()
	defer e.routesMu.Unlock()
	if err := e.checkRoute(path, h == nil); err != nil {
		return
	}
	e.ws[path] = &wsRoute{route: route{h: h, path: path}}
}

// HandleHTTP serves GET and HEAD requests to path with fn (HEAD gets the
// head of GET's answer, whose body the engine drops); other methods are
// answered 405 with "Allow: GET, HEAD". Routing is by exact path, as
// Handle's. Register before Serve.
func (e *Engine) HandleHTTP(path string, fn HTTPHandler) {
	e.HandleHTTPMethods(path, fn, "GET")
}

// HandleHTTPMethods serves requests to path whose method is one of methods
// (case-sensitive, as HTTP's) with fn; with GET comes HEAD. Other methods
// are answered 405 with an Allow header listing these. A request body, sent
// with Content-Length and at most Options.MaxMessageSize, is in
// Request.Body (a chunked one is answered 411). Register before Serve.
func (e *Engine) HandleHTTPMethods(path string, fn HTTPHandler, methods ...string) {
	e.routesMu.Lock()
	defer e.routesMu.Unlock()
	if err := e.checkRoute(path, fn == nil || len(methods) == 0); err != nil {
		return
	}
	rt := &httpRoute{fn: fn}
	for _, m := range methods {
		if !slices.Contains(rt.methods, m) {
			rt.methods = append(rt.methods, m)
		}
		if m == "GET" && !slices.Contains(methods, "HEAD") {
			rt.methods = append(rt.methods, "HEAD")
		}
	}
	rt.allow = "Allow: " + strings.Join(rt.methods, ", ")
	e.http[path] = rt
}

// checkRoute refuses a route no request could reach. An error before Serve
// is kept for Serve to return; after, it is logged. Called with routesMu held.
func (e *Engine) checkRoute(path string, missing bool) error {
	var err error
	switch {
	case path == "" || path[0] != '/':
		err = fmt.Errorf("%w: path %q must start with \"/\"", ErrInvalidRoute, path)
	case missing:
		err = fmt.Errorf("%w: %q has no handler or no method", ErrInvalidRoute, path)
	default:
		return nil
	}
	e.serveMu.Lock()
	serving := e.serving
	e.serveMu.Unlock()
	if serving {
		e.opts.Logger.Warn("engine: route registered after Serve: ignored", "err", err)
	} else if e.routeErr == nil {
		e.routeErr = err
	}
	return err
}

// Serve runs the engine until Shutdown. It returns ErrServerClosed after a
// clean shutdown, the error that stopped it from starting (invalid
// options or routes, a port in use: every listen error names the
// address), or the error that stopped it later.
func (e *Engine) Serve() error {
	if err := e.claim(); err != nil {
		return err
	}
	return e.run()
}

// Start runs Serve in a goroutine and returns once the listener is bound,
// or Serve's error if it could not start. An error that stops the engine
// later is Wait's.
func (e *Engine) Start() error {
	if err := e.claim(); err != nil {
		return err
	}
	go func() { _ = e.run() }()
	<-e.booted
	return e.bootErr
}

// Done is closed when the engine has stopped: Serve has returned.
func (e *Engine) Done() <-chan struct{} { return e.done }

// Wait blocks until the engine has stopped and returns what Serve
// returned: ErrServerClosed after Shutdown, or the error that stopped it.
// With Start, it is how a program learns that the engine stopped on its
// own. It returns ErrNotStarted if Serve never ran.
func (e *Engine) Wait() error {
	e.serveMu.Lock()
	serving := e.serving
	e.serveMu.Unlock()
	if !serving {
		return ErrNotStarted
	}
	<-e.done
	return e.serveErr
}

func (e *Engine) claim() error {
	e.serveMu.Lock()
	defer e.serveMu.Unlock()
	if e.serving {
		return errors.New("engine: Serve called twice")
	}
	e.serving = true
	return nil
}

// run is Serve once claimed.
func (e *Engine) run() (err error) {
	defer func() {
		e.serveErr = err
		close(e.done)
	}()
	fail := func(err error) error {
		e.bootErr = err
		close(e.booted)
		return err
	}
	if err := e.opts.Validate(); err != nil {
		return fail(err)
	}
	e.routesMu.RLock()
	routeErr := e.routeErr
	e.routesMu.RUnlock()
	if routeErr != nil {
		return fail(routeErr)
	}
	if err := e.setConnCap(); err != nil {
		return fail(err)
	}
	addr := e.opts.Addr
	if e.opts.ReusePort {
		if addr, err = claimPort(addr); err != nil {
			return fail(err)
		}
	}
	gerr := gnet.Run(e.handler(), "tcp://"+addr,
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(e.opts.Loops),
		gnet.WithReadBufferCap(e.opts.ReadBufferCap),
		gnet.WithTicker(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithReuseAddr(true),
		gnet.WithReusePort(e.opts.ReusePort),
		gnet.WithLogger(gnetLogger{e}),
	)
	select {
	case <-e.booted:
	default:
		if gerr == nil {
			gerr = errors.New("gnet stopped before booting")
		}
		return fail(fmt.Errorf("engine: listen on %s: %w", e.opts.Addr, gerr))
	}
	switch {
	case e.bootErr != nil:
		return e.bootErr
	case gerr != nil:
		return fmt.Errorf("engine: %w", gerr)
	case e.unexpected.Load():
		why := "no error reported"
		if p := e.gnetErr.Load(); p != nil {
			why = *p
		}
		return fmt.Errorf("%w: gnet stopped on its own: %s", ErrStopped, why)
	}
	return ErrServerClosed
}

// setConnCap works out the most TCP connections the engine may hold: the
// file limit less Options.ReservedFiles and the loops' own descriptors,
// and Options.MaxConnections if lower.
func (e *Engine) setConnCap() error {
	o := &e.opts
	e.connCap, e.capByFiles = int64(o.MaxConnections), false
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY || rl.Cur > 1<<40 {
		return nil
	}
	files := int64(rl.Cur) - int64(o.ReservedFiles) - int64(loopFiles(o.Loops))
	if files < 1 {
		return fmt.Errorf("%w: the file limit (%d) leaves no descriptor for connections after ReservedFiles (%d) and the loops' own (%d)",
			ErrInvalidOptions, rl.Cur, o.ReservedFiles, loopFiles(o.Loops))
	}
	if e.connCap == 0 || files < e.connCap {
		e.connCap, e.capByFiles = files, true
	}
	return nil
}

// loopFiles bounds the descriptors gnet holds besides connections: an
// epoll descriptor and an eventfd per loop and for the acceptor, and a
// listener per loop (SO_REUSEPORT) or one for the acceptor.
func loopFiles(loops int) int { return 3*loops + 3 }

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

// Addr is the bound listen address, once Serve has booted (nil if it
// failed to).
func (e *Engine) Addr() net.Addr {
	<-e.booted
	return e.addr
}

// Shutdown stops accepting connections, sends every connection close 1001,
// waits for them to go until ctx ends, then stops the loops. It returns as
// soon as the loops have stopped.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.serveMu.Lock()
	serving := e.serving
	e.serveMu.Unlock()
	if !serving {
		return ErrNotStarted
	}
	<-e.booted
	if e.bootErr != nil {
		return e.bootErr
	}
	if !e.draining.CompareAndSwap(false, true) {
		<-e.done
		return ErrServerClosed
	}
	select {
	case <-e.done: // gnet stopped on its own: nothing left to drain
		return e.serveErr
	default:
	}
	for _, l := range *e.loops.Load() {
		l.post(task{op: opShutdown})
	}
	if e.open.Load() > 0 {
		select {
		case <-e.drained:
		case <-e.done:
		case <-ctx.Done():
		}
	}
	if err := e.stopGnet(); err != nil {
		return err
	}
	return ctx.Err()
}

// gnetStopTimeout bounds how long Shutdown waits for gnet's loops to end
// once asked (a handler stuck on a loop would hold it forever).
const gnetStopTimeout = 5 * time.Second

// stopGnet asks gnet to stop and returns once Serve has returned. gnet's
// own Stop polls for the end every 500 ms, which made every Shutdown last
// half a second; gnet.Run returning is the same event, without the wait,
// so Stop runs aside and is cancelled once it has.
func (e *Engine) stopGnet() error {
	e.stopping.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- e.gnet.Stop(ctx) }()
	timeout := time.NewTimer(gnetStopTimeout)
	defer timeout.Stop()
	select {
	case <-e.done:
		cancel()
		<-stopped
		return nil
	case err := <-stopped: // it saw the end itself, or refused to stop
		select {
		case <-e.done:
			return nil
		case <-timeout.C:
			return fmt.Errorf("engine: stopping gnet: %v", err)
		}
	case <-timeout.C:
		cancel()
		<-stopped
		return fmt.Errorf("engine: gnet's loops did not stop within %v", gnetStopTimeout)
	}
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
// connection if h is nil), and the streams of SSE endpoints that name h in
// SSEOptions.PublishAllOf, except the ids in exclude: one task per loop.
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

// Lookup returns the open connection with id, or nil. A connection is
// found from the moment its handler's OnOpen has returned, so what OnOpen
// stored (SetValue) is visible to whoever finds it. Safe from any goroutine.
func (e *Engine) Lookup(id uint64) *Conn { return e.registry.get(id) }

// Range calls fn with every open connection Lookup would find, until fn
// returns false: a walk of the registry for rare whole-node work (a
// coordinator that lost its state asks the server to register its live
// connections again). Connections opening or closing meanwhile may or may
// not be seen. Safe from any goroutine; fn must not block.
func (e *Engine) Range(fn func(*Conn) bool) { e.registry.each(fn) }

// ForEachLoop runs fn once on every event loop, from any goroutine. fn runs
// on the loop and must not block; it allocates, so keep it off hot paths.
func (e *Engine) ForEachLoop(fn func(loop int)) {
	for _, l := range *e.loops.Load() {
		l.post(task{op: opLoopFunc, lfn: func() { fn(l.idx) }})
	}
}

// Stats is a snapshot of the engine's counters.
type Stats struct {
	Connections int64  // open WebSocket and stream connections
	TCP         int64  // accepted TCP connections, including handshakes
	Accepted    uint64 // connections accepted since start (refusals not counted)
	// ConnectionLimit is the most TCP connections the engine holds at once:
	// Options.MaxConnections or the file limit's share (Options.ReservedFiles),
	// whichever is lower; 0 before Serve, or with neither.
	ConnectionLimit int64
	// RefusedMaxConnections counts connections closed as soon as they were
	// accepted because Options.MaxConnections were open.
	RefusedMaxConnections uint64
	// RefusedFileLimit counts connections closed as soon as they were
	// accepted because the file limit's share was in use.
	RefusedFileLimit uint64
	// RefusedPerIP counts connections closed as soon as they were accepted
	// because Options.MaxConnectionsPerIP were open from their address.
	RefusedPerIP uint64
	// AcceptBackoffs counts the times accepting failed for want of
	// descriptors or memory and backed off until it worked again, and
	// AcceptErrors the failed accept calls in them. Only third_party/gnet
	// backs off; upstream gnet stops instead, and these stay zero.
	AcceptBackoffs uint64
	AcceptErrors   uint64
	SlowConsumers  uint64
	Dropped        uint64 // frames discarded when slow consumers were cut off
	Writes         uint64 // write/writev system calls by the write path
	FramesWritten  uint64 // frames handed to those calls
	BytesWritten   uint64
	MessagesIn     uint64
	BytesIn        uint64
	Closed         map[string]uint64 // by CloseReason
	Loops          int
}

// acceptCounters is what third_party/gnet's Engine adds to upstream's
// (MESHFAST.md, change 5). Reached by assertion, so the engine builds
// against upstream gnet too.
type acceptCounters interface {
	AcceptBackoffs() uint64
	AcceptErrors() uint64
}

// Stats returns the engine's counters. Loop counters are read without
// synchronisation and may lag by one pass.
func (e *Engine) Stats() Stats {
	s := Stats{
		Connections:           e.open.Load(),
		TCP:                   e.tcp.Load(),
		Accepted:              e.accepted.Load(),
		RefusedMaxConnections: e.refusedMax.Load(),
		RefusedFileLimit:      e.refusedFiles.Load(),
		RefusedPerIP:          e.refusedPerIP.Load(),
		SlowConsumers:         e.slowConsumers.Load(),
		Dropped:               e.dropped.Load(),
		Closed:                make(map[string]uint64),
	}
	select {
	case <-e.booted: // gnet and connCap are set once booted is closed
		s.ConnectionLimit = e.connCap
		if ac, ok := any(e.gnet).(acceptCounters); ok {
			s.AcceptBackoffs, s.AcceptErrors = ac.AcceptBackoffs(), ac.AcceptErrors()
		}
	default:
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
	l.dropOversize(c)
	e.tcp.Add(-1)
	if e.opts.MaxConnectionsPerIP > 0 {
		if ip, ok := ipOf(c.remote); ok {
			e.perIP.release(ip)
		}
	}
	if !wasOpen {
		_ = c.takeCloseInfo() // no handler to tell
		return
	}
	e.registry.del(c)
	e.unreserve(c.route)
	if e.open.Add(-1) == 0 && e.draining.Load() {
		e.drainOnce.Do(func() { close(e.drained) })
	}
	if l.walking > 0 {
		l.deferred = append(l.deferred, c)
	} else {
		c.route.h.OnClose(c, c.takeCloseInfo())
	}
}

// gnetLogger routes gnet's log lines to Options.Logger at their level and
// keeps the last error, for Serve to return if gnet stops on its own.
// gnet's info lines (its start, an accept that works again) are info; its
// accept failures are logged by third_party/gnet once per back-off episode,
// not once per failed accept.
type gnetLogger struct{ e *Engine }

func (g gnetLogger) Debugf(string, ...any) {}
func (g gnetLogger) Infof(format string, a ...any) {
	g.log(slog.LevelInfo, format, a)
}
func (g gnetLogger) Warnf(format string, a ...any) { g.log(slog.LevelWarn, format, a) }
func (g gnetLogger) Errorf(format string, a ...any) {
	g.keep(format, a)
	g.log(slog.LevelError, format, a)
}
func (g gnetLogger) Fatalf(format string, a ...any) {
	g.keep(format, a)
	g.log(slog.LevelError, "fatal: "+format, a)
}

func (g gnetLogger) log(level slog.Level, format string, a []any) {
	l := g.e.opts.Logger
	if ctx := context.Background(); l.Enabled(ctx, level) {
		l.Log(ctx, level, "gnet: "+fmt.Sprintf(format, a...))
	}
}

func (g gnetLogger) keep(format string, a []any) {
	msg := fmt.Sprintf(format, a...)
	g.e.gnetErr.Store(&msg)
}

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
