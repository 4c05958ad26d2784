package mesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/protocol"
)

// Context is what a middleware or command handler receives (Mesh's
// MeshContext). Its context.Context ends when the connection closes (no
// one is left to answer) or after a minute; middleware may attach values
// with Set.
type Context struct {
	context.Context
	// Server is the server running the command.
	Server *Server
	// Command is the command name as received.
	Command string
	// Conn is the calling connection.
	Conn *Connection
	// Payload is the request's payload as raw JSON, nil when the frame had none.
	Payload json.RawMessage

	mu     sync.Mutex
	values map[string]any
}

// Bind decodes the payload into v; an absent payload leaves v as it is. A
// payload that does not fit v gives an error that a handler may return as
// it is: the client gets {"error":"Invalid payload","code":"EINVALID",...},
// never the decoder's message (which quotes the input), and the server logs
// the whole error. errors.Is still finds the decoder's error in it.
func (c *Context) Bind(v any) error {
	if len(c.Payload) == 0 {
		return nil
	}
	if err := protocol.Unmarshal(c.Payload, v); err != nil {
		return fmt.Errorf("%w: %w", errInvalidPayload, err)
	}
	return nil
}

// errInvalidPayload is what Context.Bind's error shows the client.
var errInvalidPayload = protocol.InvalidArgument("Invalid payload")

// Set attaches a value for later middleware and the handler.
func (c *Context) Set(key string, v any) {
	c.mu.Lock()
	if c.values == nil {
		c.values = make(map[string]any)
	}
	c.values[key] = v
	c.mu.Unlock()
}

// Get returns a value attached with Set.
func (c *Context) Get(key string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.values[key]
	return v, ok
}

// HandlerFunc runs a command. Its result becomes the reply payload: a
// json.RawMessage is sent as is, nil omits the payload (Mesh's undefined),
// anything else is encoded as JSON. An error becomes Mesh's error payload;
// return a *protocol.CodeError to choose its code and name.
type HandlerFunc func(c *Context) (any, error)

// Middleware runs before a handler; an error rejects the command with
// that error (Mesh's thrown middleware).
type Middleware func(c *Context) error

type command struct {
	name string
	h    HandlerFunc
	mws  []Middleware
	// concurrent: the command runs on its own goroutine as soon as it
	// arrives instead of in its connection's queue (ExposeConcurrent).
	concurrent bool
}

// Expose registers a command, replacing any handler of that name. mws run
// after the global middleware, before h.
//
// The commands of one connection run one after another, in the order they
// arrived, each after the previous one finished, and their replies leave in
// that order; different connections run in parallel.
func (s *Server) Expose(name string, h HandlerFunc, mws ...Middleware) {
	s.expose(name, h, false, mws)
}

// ExposeConcurrent registers a command that does not wait its turn: each
// call starts on its own goroutine as soon as it arrives, beside the
// connection's queue, for a slow handler whose effects do not depend on the
// connection's other commands (a search, a report). What it gives up: its
// reply may overtake the replies of commands sent before it, and its effects
// may interleave with theirs and with those of commands sent after it. Its
// calls still count against Options.MaxQueuedCommands while they run, so a
// client cannot start them without bound.
func (s *Server) ExposeConcurrent(name string, h HandlerFunc, mws ...Middleware) {
	s.expose(name, h, true, mws)
}

func (s *Server) expose(name string, h HandlerFunc, concurrent bool, mws []Middleware) {
	s.cmdMu.Lock()
	defer s.cmdMu.Unlock()
	cmd := &command{name: name, h: h, concurrent: concurrent}
	if old := s.commands[name]; old != nil {
		cmd.mws = old.mws
	}
	s.commands[name] = cmd
	if len(mws) > 0 {
		s.useForLocked(name, mws)
	}
}

// ExposeFallback registers h for every command no handler is registered
// for (a command proxy), with mws after the global middleware; nil removes
// it. h sees the command's name in Context.Command and runs as any command
// does: in the connection's queue, in arrival order. Names starting with
// "mesh/" are Mesh's own and never reach it: an unknown one is answered
// ENOTFOUND.
func (s *Server) ExposeFallback(h HandlerFunc, mws ...Middleware) {
	s.cmdMu.Lock()
	defer s.cmdMu.Unlock()
	if h == nil {
		s.fallback = nil
		return
	}
	s.fallback = &command{h: h, mws: mws}
}

// isReserved reports whether a command name is in Mesh's own namespace.
func isReserved(name []byte) bool { return len(name) >= 5 && string(name[:5]) == "mesh/" }

// Use adds global middleware, run for every command in registration order.
func (s *Server) Use(mws ...Middleware) {
	s.cmdMu.Lock()
	s.global = append(s.global, mws...)
	s.cmdMu.Unlock()
}

// UseFor adds middleware to one command. As in Mesh, the new list runs
// before middleware added earlier for that command.
func (s *Server) UseFor(name string, mws ...Middleware) {
	s.cmdMu.Lock()
	defer s.cmdMu.Unlock()
	s.useForLocked(name, mws)
}

func (s *Server) useForLocked(name string, mws []Middleware) {
	cmd := s.commands[name]
	if cmd == nil {
		cmd = &command{name: name}
	}
	next := make([]Middleware, 0, len(mws)+len(cmd.mws))
	next = append(next, mws...)
	next = append(next, cmd.mws...)
	// A new value, not an update: queued commands hold the old one and
	// read it without the lock.
	s.commands[name] = &command{name: name, h: cmd.h, mws: next, concurrent: cmd.concurrent}
}

// HasCommand reports whether name is exposed.
func (s *Server) HasCommand(name string) bool {
	s.cmdMu.RLock()
	defer s.cmdMu.RUnlock()
	cmd := s.commands[name]
	return cmd != nil && cmd.h != nil
}

// errBusy answers a command that arrives while Options.MaxInFlight
// commands are queued or running across the server.
var errBusy = protocol.NewCodeError("server busy", "EBUSY", "LimitError")

// dispatch queues a command (or starts it, when concurrent). It runs on the
// loop: it copies the frame's payload, which the engine reuses, and never
// runs a handler.
func (s *Server) dispatch(c *Connection, m *protocol.Message) {
	s.cmdMu.RLock()
	cmd := s.commands[string(m.Command)]
	if (cmd == nil || cmd.h == nil) && s.fallback != nil && !isReserved(m.Command) {
		cmd = s.fallback
	}
	s.cmdMu.RUnlock()
	q := queued{cmd: cmd, id: m.ID, start: time.Now()}
	if cmd != nil && cmd != s.fallback {
		q.name = cmd.name // the registered string: no copy
	} else {
		q.name = string(m.Command)
	}
	if m.Payload != nil {
		q.payload = append(json.RawMessage(nil), m.Payload...)
	}
	a := c.activate()
	if a.ctx == nil {
		a.ctx, a.cancel = context.WithCancel(context.Background())
	}
	if s.inflight.Add(1) > int64(s.opts.MaxInFlight) {
		// The server as a whole is over its limit: answer at once, but in
		// turn, so the replies keep their order. The answer still counts
		// against the connection's bounds, so it cannot be flooded past them.
		q.cmd, q.payload, q.err = nil, nil, errBusy
	} else if !s.admitRate(a, q.start.UnixNano()) {
		// The connection is past its rate (limits.go): answered the same way.
		s.m.limited(limitRate)
		q.cmd, q.payload, q.err = nil, nil, errRateLimited
	}
	if cmd == nil || !cmd.concurrent || q.err != nil {
		s.enqueue(c, a, q)
		return
	}
	a.qmu.Lock()
	if a.held || c.closed.Load() {
		// Not verified or registered yet: even a concurrent command waits,
		// in the queue, which drops it if the connection is refused
		// (auth.go). Refusal sets closed before it releases the queue.
		a.qmu.Unlock()
		s.enqueue(c, a, q)
		return
	}
	s.admitLocked(a, q.size())
	pause := s.overLocked(a)
	a.qmu.Unlock()
	if pause {
		c.c.PauseReading()
	}
	go s.runConcurrent(c, a, q)
}

// execute runs middleware and handler, turning a panic into Mesh's
// EUNKNOWN error so one bad handler cannot take the process down. a.ctx
// is read here rather than passed: it was set on the loop before the
// command was queued and is never replaced.
func (s *Server) execute(c *Connection, a *connActive, q *queued) (result any, err error) {
	cmd := q.cmd
	if cmd == nil || cmd.h == nil {
		return nil, protocol.CommandNotFound(q.name)
	}
	s.cmdMu.RLock()
	global := s.global
	s.cmdMu.RUnlock()
	ctx, cancel := context.WithTimeout(a.ctx, commandTimeout)
	defer cancel()
	mc := &Context{Context: ctx, Server: s, Command: q.name, Conn: c, Payload: q.payload}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error(fmt.Sprintf("mesh: command %q panicked: %v", q.name, r), "conn", c.id)
			if _, isErr := r.(error); isErr {
				// A runtime error (nil dereference, index out of range) or
				// an error value: a bug, whose text names internals.
				result, err = nil, errInternal
				return
			}
			// A value that is not an error is Mesh's thrown non-Error.
			result, err = nil, protocol.UnknownError(fmt.Sprint(r))
		}
	}()
	for _, mw := range global {
		if err := mw(mc); err != nil {
			return nil, s.unavailable(err)
		}
	}
	for _, mw := range cmd.mws {
		if err := mw(mc); err != nil {
			return nil, s.unavailable(err)
		}
	}
	result, err = cmd.h(mc)
	return result, s.unavailable(err)
}

// unavailable gives an application's error that comes from an unreachable
// coordinator (a Server method it called) errUnavailable's code, unless it
// chose a code of its own.
func (s *Server) unavailable(err error) error {
	if err == nil || !errors.Is(err, coord.ErrUnavailable) {
		return err
	}
	var ce *protocol.CodeError
	if errors.As(err, &ce) {
		return err
	}
	s.m.coordError()
	return fmt.Errorf("%w (%w)", errUnavailable, err)
}

// errCoordinator answers a command the coordinator failed. The client gets
// this, not the coordinator's text, which names internals.
var errCoordinator = protocol.NewCodeError("the server could not complete the command", protocol.CodeServer, protocol.NameError)

// errUnavailable answers a command whose coordinator could not reach its
// backend (coord.ErrUnavailable: Redis down or out of reach), built-in or
// application: the client learns that retrying later may work, and the
// call failed fast rather than waiting out the client's timeout.
var errUnavailable = protocol.Unavailable("the server's shared state (Redis) is unavailable; try again later")

// errInternal answers a command that failed on a bug (a panic with an
// error value, a reply that could not be encoded).
var errInternal = protocol.NewCodeError("internal server error", protocol.CodeServer, protocol.NameError)

// errInvalidArgument answers a command whose arguments the coordinator
// refused, when the built-in had no more precise word for it.
var errInvalidArgument = protocol.InvalidArgument("Invalid argument")

// coordFailed is how a built-in command answers an error from the
// coordinator (or from a Server method that calls it): an argument the
// coordinator refuses is the client's error (EINVALID); anything else is
// counted (mesh_coord_errors_total) and answered with errCoordinator, never
// turned into a quiet false. The returned error wraps err, so the reply
// shows the client-facing text and run logs the detail, once.
func (s *Server) coordFailed(command string, err error) error {
	switch {
	case errors.Is(err, coord.ErrInvalidArgument), errors.Is(err, coord.ErrInvalidJSON), errors.Is(err, coord.ErrNotObject):
		return fmt.Errorf("%w (%s: %w)", errInvalidArgument, command, err)
	case errors.Is(err, errConnectionGone):
		return fmt.Errorf("%w (%s: %w)", errCoordinator, command, err) // no one reads the reply
	case errors.Is(err, coord.ErrUnavailable):
		s.m.coordError()
		return fmt.Errorf("%w (%s: coordinator: %w)", errUnavailable, command, err)
	}
	s.m.coordError()
	return fmt.Errorf("%w (%s: coordinator: %w)", errCoordinator, command, err)
}

// bindRequest decodes a built-in command's payload into v. A payload that
// does not fit gets bad, whose text names the fields the command expects;
// the decoder's message, which quotes the input, is only logged.
func bindRequest(c *Context, v any, bad *protocol.CodeError) error {
	if len(c.Payload) == 0 {
		return nil
	}
	if err := protocol.Unmarshal(c.Payload, v); err != nil {
		return fmt.Errorf("%w (%w)", bad, err)
	}
	return nil
}

// commandTimeout bounds a command's context; Mesh's client gives up after
// 30 s by default, so nothing is waiting for an answer after that.
const commandTimeout = time.Minute

// Guard decides whether a connection may use a named resource (a channel,
// record or presence room). It runs on the command's goroutine.
type Guard func(c *Connection, name string) bool

// exposures is a set of exact names and patterns, each with an optional
// guard. Exposing the same name or pattern again replaces its guard.
type exposures struct {
	mu       sync.RWMutex
	exact    map[string]exposure
	patterns []patternGuard
}

// exposure is what a name or pattern is exposed with.
type exposure struct {
	guard Guard
	// durable: channels kept in a durable stream (ExposeDurableChannel);
	// the other kinds leave it false.
	durable bool
}

type patternGuard struct {
	re *regexp.Regexp
	exposure
}

func (x *exposures) addExact(name string, g Guard) { x.putExact(name, exposure{guard: g}) }

func (x *exposures) addPattern(re *regexp.Regexp, g Guard) { x.putPattern(re, exposure{guard: g}) }

func (x *exposures) putExact(name string, e exposure) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.exact == nil {
		x.exact = make(map[string]exposure)
	}
	x.exact[name] = e
}

func (x *exposures) putPattern(re *regexp.Regexp, e exposure) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i, p := range x.patterns {
		if p.re.String() == re.String() {
			x.patterns[i].exposure = e
			return
		}
	}
	x.patterns = append(x.patterns, patternGuard{re: re, exposure: e})
}

// find reports whether name is exposed, and how: an exact name's exposure
// if there is one, else the first matching pattern's (Mesh's rule).
func (x *exposures) find(name string) (exposure, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if e, ok := x.exact[name]; ok {
		return e, true
	}
	for _, p := range x.patterns {
		if p.re.MatchString(name) {
			return p.exposure, true
		}
	}
	return exposure{}, false
}

// lookup reports whether name is exposed, and with which guard.
func (x *exposures) lookup(name string) (Guard, bool) {
	e, ok := x.find(name)
	return e.guard, ok
}

// allowed reports whether name is exposed and its guard lets c in. A guard
// that panics refuses.
func (x *exposures) allowed(c *Connection, name string) bool {
	g, ok := x.lookup(name)
	if !ok {
		return false
	}
	return g == nil || runGuard(g, c, name)
}

func runGuard(g Guard, c *Connection, name string) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			c.server().log.Error("mesh: a guard panicked; refused", "name", name, "panic", r)
			ok = false
		}
	}()
	return g(c, name)
}
