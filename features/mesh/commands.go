package mesh

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/meshfast/meshfast/engine"
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

// Bind decodes the payload into v.
func (c *Context) Bind(v any) error {
	if len(c.Payload) == 0 {
		return nil
	}
	return protocol.Unmarshal(c.Payload, v)
}

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
	h   HandlerFunc
	mws []Middleware
}

// Expose registers a command, replacing any handler of that name. mws run
// after the global middleware, before h.
func (s *Server) Expose(name string, h HandlerFunc, mws ...Middleware) {
	s.cmdMu.Lock()
	defer s.cmdMu.Unlock()
	old := s.commands[name]
	cmd := &command{h: h}
	if old != nil {
		cmd.mws = old.mws
	}
	s.commands[name] = cmd
	if len(mws) > 0 {
		s.useForLocked(name, mws)
	}
}

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
		cmd = &command{}
		s.commands[name] = cmd
	}
	next := make([]Middleware, 0, len(mws)+len(cmd.mws))
	next = append(next, mws...)
	next = append(next, cmd.mws...)
	s.commands[name] = &command{h: cmd.h, mws: next}
}

// HasCommand reports whether name is exposed.
func (s *Server) HasCommand(name string) bool {
	s.cmdMu.RLock()
	defer s.cmdMu.RUnlock()
	cmd := s.commands[name]
	return cmd != nil && cmd.h != nil
}

// Errors answered when a client runs more commands than allowed.
var (
	errTooMany = protocol.NewCodeError("too many commands in flight on this connection", "ETOOMANY", "LimitError")
	errBusy    = protocol.NewCodeError("server busy", "EBUSY", "LimitError")
)

// dispatch starts a command. It runs on the loop: it only copies the
// frame's bytes and starts a goroutine.
func (s *Server) dispatch(c *Connection, m *protocol.Message) {
	name := string(m.Command)
	a := c.active.Load()
	var running int32 // a connection without connActive has run no command
	if a != nil {
		running = a.inflight.Load()
	}
	if int(running) >= s.opts.MaxInFlightPerConn {
		s.replyError(c, m.ID, name, errTooMany)
		return
	}
	if s.inflight.Load() >= int64(s.opts.MaxInFlight) {
		s.replyError(c, m.ID, name, errBusy)
		return
	}
	if a == nil {
		a = c.activate()
	}
	if a.ctx == nil {
		a.ctx, a.cancel = context.WithCancel(context.Background())
	}
	var payload json.RawMessage
	if m.Payload != nil {
		payload = append(json.RawMessage(nil), m.Payload...)
	}
	a.inflight.Add(1)
	s.inflight.Add(1)
	go s.run(c, a, m.ID, name, payload, time.Now())
}

// run reads a.ctx instead of taking it as an argument: the go statement's
// closure holds the arguments, and one word more puts it in the next size
// class for every command.
func (s *Server) run(c *Connection, a *connActive, id int64, name string, payload json.RawMessage, start time.Time) {
	result, err := s.execute(c, a.ctx, name, payload)
	s.m.command(time.Since(start), err)
	// Free the slot before the reply leaves: a client that has its answer
	// may send the next command at once.
	a.inflight.Add(-1)
	s.inflight.Add(-1)
	if c.closed.Load() {
		return
	}
	f := engine.AcquireFrame()
	var b []byte
	if err != nil {
		b = protocol.AppendErrorReply(f.PayloadBuf(), id, name, err)
	} else {
		p, encErr := encodePayload(nil, result)
		if encErr != nil {
			b = protocol.AppendErrorReply(f.PayloadBuf(), id, name, fmt.Errorf("encode reply: %w", encErr))
		} else {
			if result == nil {
				p = nil
			}
			b = protocol.AppendReply(f.PayloadBuf(), id, name, p)
		}
	}
	f.SetPayload(engine.OpText, b)
	c.c.Send(f)
	f.Release()
}

// execute runs middleware and handler, turning a panic into Mesh's
// EUNKNOWN error so one bad handler cannot take the process down.
func (s *Server) execute(c *Connection, cctx context.Context, name string, payload json.RawMessage) (result any, err error) {
	s.cmdMu.RLock()
	cmd := s.commands[name]
	global := s.global
	s.cmdMu.RUnlock()
	if cmd == nil || cmd.h == nil {
		return nil, protocol.CommandNotFound(name)
	}
	ctx, cancel := context.WithTimeout(cctx, commandTimeout)
	defer cancel()
	mc := &Context{Context: ctx, Server: s, Command: name, Conn: c, Payload: payload}
	defer func() {
		if r := recover(); r != nil {
			s.opts.Logf("mesh: command %q panicked: %v", name, r)
			result, err = nil, protocol.UnknownError(fmt.Sprint(r))
		}
	}()
	for _, mw := range global {
		if err := mw(mc); err != nil {
			return nil, err
		}
	}
	for _, mw := range cmd.mws {
		if err := mw(mc); err != nil {
			return nil, err
		}
	}
	return cmd.h(mc)
}

// commandTimeout bounds a command's context; Mesh's client gives up after
// 30 s by default, so nothing is waiting for an answer after that.
const commandTimeout = time.Minute

func (s *Server) replyError(c *Connection, id int64, name string, err error) {
	var buf [256]byte
	_ = c.c.WriteText(protocol.AppendErrorReply(buf[:0], id, name, err))
}

// Guard decides whether a connection may use a named resource (a channel,
// record or presence room). It runs on the command's goroutine.
type Guard func(c *Connection, name string) bool

// exposures is a set of exact names and patterns, each with an optional
// guard. Exposing the same name or pattern again replaces its guard.
type exposures struct {
	mu       sync.RWMutex
	exact    map[string]Guard
	patterns []patternGuard
}

type patternGuard struct {
	re    *regexp.Regexp
	guard Guard
}

func (x *exposures) addExact(name string, g Guard) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.exact == nil {
		x.exact = make(map[string]Guard)
	}
	x.exact[name] = g
}

func (x *exposures) addPattern(re *regexp.Regexp, g Guard) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i, p := range x.patterns {
		if p.re.String() == re.String() {
			x.patterns[i].guard = g
			return
		}
	}
	x.patterns = append(x.patterns, patternGuard{re: re, guard: g})
}

// allowed reports whether name is exposed and its guard lets c in: an
// exact name's guard if there is one, else the first matching pattern's
// (Mesh's rule). A guard that panics refuses.
func (x *exposures) allowed(c *Connection, name string) bool {
	x.mu.RLock()
	g, ok := x.exact[name]
	if !ok {
		for _, p := range x.patterns {
			if p.re.MatchString(name) {
				g, ok = p.guard, true
				break
			}
		}
	}
	x.mu.RUnlock()
	if !ok {
		return false
	}
	return g == nil || runGuard(g, c, name)
}

func runGuard(g Guard, c *Connection, name string) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			c.server().opts.Logf("mesh: guard for %q panicked: %v", name, r)
			ok = false
		}
	}()
	return g(c, name)
}
