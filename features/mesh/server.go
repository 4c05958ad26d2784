package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/coord/memory"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/protocol"
)

// Server is a Mesh protocol server on an engine.
type Server struct {
	opts Options
	log  *slog.Logger // opts.Logger
	e    *engine.Engine
	co   coord.Coordinator
	// localRegistry: co's registry calls never wait (coord.LocalRegistry),
	// so a registration needs no deadline.
	localRegistry bool
	ownsCo        bool
	nodeID        string
	idPrefix      string         // "conn-" and this server's tag (connid.go)
	origins       engine.Origins // Options.AllowedOrigins, parsed; nil: every origin

	cmdMu    sync.RWMutex
	commands map[string]*command
	global   []Middleware
	fallback *command // ExposeFallback's, nil: none

	channels  exposures    // exposed channels
	durableSt durableState // the Streams of the durable channels (durable.go)
	access    access       // who may join rooms and read metadata (access.go)
	pres      presence
	rec       recordState
	subs      subscriptions
	nodeSubs  []coord.Subscription // for the node's life (subscribeNode)
	streams   streamHooks          // members that are not Mesh connections (streams.go)

	hooksMu  sync.RWMutex
	onOpen   []func(*Connection)
	onClose  []func(*Connection)
	inflight atomic.Int64
	closing  atomic.Bool
	stop     chan struct{}  // closed by Close
	bg       sync.WaitGroup // background goroutines (workers, heartbeat, ...)
	work     workQueue      // registrations and cleanups, off the loops

	m metrics

	// set by the presence feature
	presenceHook func(ctx context.Context, r coord.RemovedConnection)
	pongHook     func(c *Connection)

	// recovery (recover.go)
	recoverKick chan struct{} // capacity 1
	stopRecover func()
}

// New creates a Mesh server and registers it on e at Options.Path. Call it
// before e.Serve.
func New(e *engine.Engine, o Options) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	allowed, err := engine.ParseOrigins(o.AllowedOrigins)
	if err != nil {
		return nil, fmt.Errorf("%w: AllowedOrigins: %w", ErrInvalidOptions, err)
	}
	s := &Server{
		origins:  allowed,
		opts:     o,
		log:      o.Logger,
		e:        e,
		co:       o.Coordinator,
		nodeID:   o.NodeID,
		idPrefix: connIDPrefix + newConnTag(),
		commands: make(map[string]*command),
		stop:     make(chan struct{}),
	}
	if s.co == nil {
		s.co = memory.New(memory.Options{})
		s.ownsCo = true
	}
	s.durableSt.st = o.Streams
	_, s.localRegistry = s.co.(coord.LocalRegistry)
	if s.nodeID == "" {
		s.nodeID = randomID()
	}
	s.subs.init(s)
	s.m.init(o.Metrics)
	ctx, cancel := context.WithTimeout(context.Background(), o.CoordTimeout)
	defer cancel()
	registered := time.Now()
	if err := s.co.RegisterNode(ctx, s.nodeID, o.NodeTTL); err != nil {
		return nil, fmt.Errorf("mesh: register node: %w", err)
	}
	if err := s.subscribeNode(ctx); err != nil {
		return nil, err
	}
	s.registerBuiltins()
	s.registerRecordBuiltins()
	s.registerPresenceBuiltins()
	s.pres.start(s)
	s.startRecovery()
	e.Handle(o.Path, (*handler)(s))
	s.bg.Add(2)
	go s.heartbeat(registered)
	go s.janitor()
	return s, nil
}

// heartbeat renews the node's liveness every third of NodeTTL. last is
// when the node's registration was sent.
//
// A heartbeat that took after a whole NodeTTL without one (the backend out
// of reach or slow, the process stopped, the machine paused) means the
// node may have counted as dead meanwhile, and another node's janitor may
// have removed its connections, rooms and presence while its clients
// stayed connected. No reconnect tells of that when the connection to the
// backend never broke, so the node writes its state back as after one.
// Times are when each heartbeat was sent, so the node never believes
// itself alive longer than the backend does.
func (s *Server) heartbeat(last time.Time) {
	defer s.bg.Done()
	t := time.NewTicker(s.opts.NodeTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		sent := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.CoordTimeout)
		err := s.co.RegisterNode(ctx, s.nodeID, s.opts.NodeTTL)
		cancel()
		if err != nil {
			s.log.Warn("mesh: node heartbeat failed", "err", err)
			continue
		}
		if gap := sent.Sub(last); gap >= s.opts.NodeTTL {
			s.log.Warn("mesh: node heartbeat lapsed; writing this node's state back", "without_heartbeat", gap.Round(time.Millisecond))
			s.kickRecovery()
		}
		last = sent
	}
}

// NodeID is this node's id in the coordinator.
func (s *Server) NodeID() string { return s.nodeID }

// Coordinator returns the coordinator the server uses.
func (s *Server) Coordinator() coord.Coordinator { return s.co }

// Engine returns the engine the server is registered on.
func (s *Server) Engine() *engine.Engine { return s.e }

// Close stops background work, removes this node's connections from the
// coordinator and closes the coordinator if the server created it. Shut the
// engine down first so that every connection has been cleaned up.
func (s *Server) Close() error {
	if !s.closing.CompareAndSwap(false, true) {
		return nil
	}
	close(s.stop)
	s.pres.stopExp()
	s.stopRecovery()
	s.bg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CoordTimeout)
	defer cancel()
	s.subs.closeAll(ctx)
	err := s.closeStreams()
	for _, sub := range s.nodeSubs {
		_ = s.co.Unsubscribe(ctx, sub)
	}
	_ = s.co.UnregisterNode(ctx, s.nodeID)
	if s.ownsCo {
		return errors.Join(err, s.co.Close())
	}
	return err
}

// OnConnection registers fn to run for each new connection once it is
// registered with the coordinator.
func (s *Server) OnConnection(fn func(*Connection)) {
	s.hooksMu.Lock()
	s.onOpen = append(s.onOpen, fn)
	s.hooksMu.Unlock()
}

// OnDisconnection registers fn to run for each closed connection once its
// shared state is cleaned up.
func (s *Server) OnDisconnection(fn func(*Connection)) {
	s.hooksMu.Lock()
	s.onClose = append(s.onClose, fn)
	s.hooksMu.Unlock()
}

func (s *Server) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.opts.CoordTimeout)
}

// handler is the Server seen by the engine; its methods run on the loop.
type handler Server

func (h *handler) OnOpen(ec *engine.Conn, r *engine.Request) {
	s := (*Server)(h)
	now := time.Now().UnixNano()
	c := &Connection{
		id:      s.newConnID(ec),
		c:       ec,
		alive:   true,
		wantsID: s.opts.AssignID.wantsID(r),
	}
	p, _ := ec.Value().(*pendingAuth) // left by CheckHandshake
	if p != nil && p.auth != nil {
		c.auth.Store(p.auth)
	}
	ec.SetValue(c)
	if s.opts.PingInterval > 0 {
		c.nextPing = now + int64(s.opts.PingInterval)
	}
	if s.opts.LatencyInterval > 0 {
		c.nextLatency = now + int64(s.opts.LatencyInterval)
	}
	c.armTimer()
	var meta []byte
	if p != nil {
		if p.verify != nil {
			// Its commands wait until Verify has answered and the
			// connection is registered, or are dropped (auth.go).
			go s.verify(c, s.hold(c), p.verify)
			return
		}
		meta = p.meta
	}
	if s.localRegistry && len(s.openHooks()) == 0 {
		// Map work: cheaper here than handing it to a worker. No hook runs
		// on the loop, not even one installed a moment from now: it would
		// not have seen this connection open anyway. Metadata from
		// authentication is set before this returns, so before the loop
		// reads the connection's first command.
		if s.register(c, meta, nil, true) && c.wantsID {
			var buf [128]byte
			_ = ec.WriteText(protocol.AppendAssignID(buf[:0], c.id))
		}
		return
	}
	if meta != nil || c.User() != "" || c.wantsID {
		// No command may read the metadata before it is set, nor run
		// before the user's subscription is queued (users.go), nor be
		// answered before the connection is told its id.
		s.hold(c)
	}
	s.work.push(s, job{c: c, kind: jobRegister, meta: meta})
}

// openHooks is the OnConnection hooks installed now.
func (s *Server) openHooks() []func(*Connection) {
	s.hooksMu.RLock()
	defer s.hooksMu.RUnlock()
	return s.onOpen
}

// register records c with the coordinator, with meta (its metadata from
// authentication) if not nil, releases its held commands and then runs
// hooks.
//
// A connection that asked for its id is told it here, once registered and
// before its held commands are released (onLoop: the caller, OnOpen, writes
// it itself): whoever learns the id from the client can then route to it,
// and no reply overtakes it.
func (s *Server) register(c *Connection, meta []byte, hooks []func(*Connection), onLoop bool) (registered bool) {
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if !s.localRegistry {
		ctx, cancel = s.ctx()
	}
	err := s.co.RegisterConnection(ctx, c.id, s.nodeID)
	if meta != nil {
		c.keepMetadata(meta) // written back if the coordinator loses it
	}
	if err == nil && meta != nil {
		// Before the CAS below: a cleanup never runs before it, so it
		// cannot leave the metadata of a gone connection behind.
		if err = s.co.SetConnectionMetadata(ctx, c.id, meta); err != nil {
			err = fmt.Errorf("metadata: %w", err)
		}
	}
	cancel()
	if err != nil {
		s.log.Warn("mesh: registering a connection failed; closed", "conn", c.id, "err", err)
		c.closed.Store(true) // its commands would fail: drop them
		c.c.CloseAsync(engine.CloseInternalError, "registration failed")
	}
	if !c.life.CompareAndSwap(lifeRegistering, lifeRegistered) {
		s.release(c)
		s.cleanupNow(c) // it closed while we registered
		return false
	}
	if err == nil {
		if u := c.User(); u != "" {
			s.subscribeUser(c, u) // queued ahead of what release lets run
		}
		if c.wantsID && !onLoop {
			var buf [128]byte
			c.c.SendText(protocol.AppendAssignID(buf[:0], c.id))
		}
	}
	s.release(c)
	if err != nil {
		return false
	}
	for _, fn := range hooks {
		fn(c)
	}
	return true
}

func (h *handler) OnClose(ec *engine.Conn, _ engine.CloseInfo) {
	s := (*Server)(h)
	c, _ := ec.Value().(*Connection)
	if c == nil {
		return
	}
	c.closed.Store(true)
	if a := c.active.Load(); a != nil && a.cancel != nil {
		a.cancel() // running commands of this connection see ctx.Done
	}
	if c.life.CompareAndSwap(lifeRegistering, lifeClosedEarly) {
		return // register cleans up once it is done
	}
	if c.life.Load() == lifeRefused {
		return // never registered
	}
	s.work.push(s, job{c: c, kind: jobCleanup})
}

// cleanupNow removes a closed connection's shared state, as Mesh's
// cleanupConnection does, then runs the disconnection hooks.
func (s *Server) cleanupNow(c *Connection) {
	ctx, cancel := s.ctx()
	defer cancel()
	removed, err := s.co.RemoveConnection(ctx, c.id)
	if err != nil {
		s.log.Warn("mesh: cleaning up a connection failed", "conn", c.id, "err", err)
	}
	s.afterRemove(ctx, removed)
	s.subs.dropAll(ctx, c)
	s.hooksMu.RLock()
	hooks := s.onClose
	s.hooksMu.RUnlock()
	for _, fn := range hooks {
		fn(c)
	}
}

// afterRemove is where presence "leave" events for the rooms a removed
// connection was present in are published.
func (s *Server) afterRemove(ctx context.Context, r coord.RemovedConnection) {
	if s.presenceHook != nil {
		s.presenceHook(ctx, r)
	}
}

func (h *handler) OnMessage(ec *engine.Conn, op engine.OpCode, payload []byte) {
	s := (*Server)(h)
	c, _ := ec.Value().(*Connection)
	if c == nil || op != engine.OpText {
		return // Mesh speaks JSON text only; binary frames are ignored as invalid JSON
	}
	var m protocol.Message
	if protocol.Decode(payload, &m) != nil {
		return // invalid JSON and non-command frames are dropped, as in Mesh
	}
	switch string(m.Command) {
	case protocol.CmdPong:
		c.onPong()
		return
	case protocol.CmdLatencyResponse:
		c.onLatencyResponse()
		return
	}
	if !m.HasID || c.closed.Load() {
		return // (closed: refused by Identity.Verify, the close on its way)
	}
	s.dispatch(c, &m)
}

func (h *handler) OnTimer(ec *engine.Conn, now int64) {
	if c, _ := ec.Value().(*Connection); c != nil {
		c.onTimer(now)
	}
}

// logRefusal logs a refused connection at info: one line per refusal. (The
// engine's refusals at accept, the cheap defence against a flood, are the
// ones it rate-limits.)
func (s *Server) logRefusal(msg string, args ...any) { s.log.Info(msg, args...) }

func addrString(a net.Addr) string {
	if a == nil {
		return "?"
	}
	return a.String()
}

func randomID() string {
	var b [16]byte
	_, _ = randRead(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
