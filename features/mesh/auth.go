package mesh

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/meshfast/meshfast/engine"
)

// Authentication at connect.
//
// The engine asks the handler about each handshake on the loop, before the
// upgrade (CheckHandshake): the Origin allow-list is checked there, then
// Options.Authenticate runs and either refuses with an HTTP status or
// returns an Identity, which waits on the engine connection (SetValue) for
// OnOpen, a moment later on the same loop. OnOpen gives the Connection its
// user, and the identity's metadata is stored with the coordinator as part
// of registration, before the connection's first command runs:
//
//   - registered on the loop (the embedded memory coordinator, no
//     OnConnection hook): registration and metadata are done when OnOpen
//     returns, before the loop reads the next frame;
//   - registered by a worker: the connection's command queue is held
//     (hold) until registration, metadata included, is done (release);
//     commands that arrive meanwhile wait in order, within the queue's
//     bounds.
//
// An Identity with Verify finishes off the loop: the upgrade is accepted,
// the queue is held, Verify runs on a goroutine of its own, and then either
// the connection is registered as above or it is closed with a close code
// and its waiting commands are dropped unrun.

// Identity is who a connection is, as Options.Authenticate established it.
// The zero Identity is an anonymous connection.
type Identity struct {
	// User is the connection's user id (Connection.User). meshfast gives
	// it no meaning of its own: guards and handlers decide what a user may
	// do.
	User string

	// Claims is what the application keeps about the connection for its
	// guards and handlers, e.g. a token's verified claims
	// (Connection.Claims). It is not sent anywhere.
	Claims any

	// Metadata, if not nil, becomes the connection's Mesh metadata (what
	// mesh/get-connection-metadata returns, as if set with
	// SetConnectionMetadata) before the client can run any command. It is
	// encoded as JSON; a json.RawMessage must be valid JSON.
	Metadata any

	// Verify, if set, finishes authentication off the event loop, for a
	// check that does I/O (asking a backend over HTTP, reading a session
	// store). The upgrade is accepted; Verify then runs on a goroutine of
	// its own with a context that ends after Options.AuthTimeout or when
	// the connection closes, while the connection's commands wait. The
	// Identity it returns replaces this one (its own Verify is ignored). An
	// error closes the connection, with the code and reason of a
	// *CloseError in it, else 1008 (policy violation) "authentication
	// failed"; the error's text is logged, not sent. The request is gone by
	// then: capture what Verify needs (a cookie's value, a header) in the
	// closure.
	Verify func(ctx context.Context) (Identity, error)
}

// Authenticator decides whether a WebSocket handshake may upgrade
// (Options.Authenticate). It sees the request: r.Header("Authorization"),
// r.Header("Origin"), r.Cookie(name), r.QueryValue(key), r.Path,
// r.VisitHeaders, r.Conn().RemoteAddr(). r and the byte slices it returns
// are valid only during the call; a string conversion copies.
//
// It runs on the event loop that owns the connection, before the upgrade,
// and must not block: every connection of that loop waits while it runs.
// Work that is CPU only (parsing a cookie, verifying a token's HMAC or RSA
// signature: tens of microseconds) belongs here; anything that waits on
// I/O belongs in Identity.Verify.
//
// Its error refuses the handshake: an *engine.HTTPError (see Refuse)
// answers with its status, message and header lines (a 401 should carry
// "WWW-Authenticate"); any other error answers 401 Unauthorized, and its
// text is logged, not sent. A panic answers 500 Internal Server Error and
// is logged; the loop goes on serving.
type Authenticator func(r *engine.Request) (Identity, error)

// Refuse returns the error with which an Authenticator refuses a handshake:
// HTTP status (3xx to 5xx), message as the response body, and extra header
// lines, "Name: value" each, such as `WWW-Authenticate: Bearer
// error="invalid_token"`.
func Refuse(status int, message string, headers ...string) error {
	return &engine.HTTPError{Status: status, Message: message, Headers: headers}
}

// CloseError is an error with which Identity.Verify chooses how the
// connection closes: Code (4000 to 4999 are the application's own, RFC
// 6455) and Reason, which the client receives (at most 123 bytes).
type CloseError struct {
	Code   engine.CloseCode
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("mesh: close %d: %s", e.Code, e.Reason)
}

// Close codes and answers of authentication failures that the application
// did not choose.
var (
	errAuthFailed   = &CloseError{Code: engine.ClosePolicyViolation, Reason: "authentication failed"}
	errAuthPanicked = &CloseError{Code: engine.CloseInternalError, Reason: "internal error"}
	errUnauthorized = &engine.HTTPError{Status: 401, Message: "Unauthorized"}
	errAuthInternal = &engine.HTTPError{Status: 500, Message: "Internal Server Error"}
	errOrigin       = &engine.HTTPError{Status: 403, Message: "origin not allowed"}
)

// connAuth is what an authenticated connection carries beyond an anonymous
// one, out of Connection, whose size every idle connection pays.
type connAuth struct {
	user   string
	claims any
}

// pendingAuth is an accepted Identity on its way from CheckHandshake to
// OnOpen (on the engine connection's value) and to registration.
type pendingAuth struct {
	auth   *connAuth // nil: no user and no claims
	meta   []byte    // compact JSON, nil: none
	verify func(context.Context) (Identity, error)
}

// User is the connection's user id as Options.Authenticate established it:
// "" for an anonymous connection.
func (c *Connection) User() string {
	if a := c.auth.Load(); a != nil {
		return a.user
	}
	return ""
}

// Claims is the connection's Identity.Claims: nil for an anonymous
// connection.
func (c *Connection) Claims() any {
	if a := c.auth.Load(); a != nil {
		return a.claims
	}
	return nil
}

// CheckHandshake is engine.HandshakeChecker: the Origin allow-list, then
// Options.Authenticate. Loop only.
func (h *handler) CheckHandshake(r *engine.Request) error {
	s := (*Server)(h)
	if s.origins != nil {
		if o := r.Header("Origin"); o != nil && !s.origins.Allows(o) {
			s.m.refused()
			s.logRefusal("mesh: handshake refused: origin not allowed", "remote", remote(r), "origin", string(o))
			return errOrigin
		}
	}
	if s.opts.Authenticate == nil {
		return nil
	}
	p, err := s.authenticate(r)
	if err != nil {
		s.m.refused()
		return err
	}
	if p != nil {
		r.Conn().SetValue(p) // OnOpen takes it, on this loop, before anyone else sees the connection
	}
	return nil
}

// authenticate runs Options.Authenticate for r and turns its answer into a
// refusal for the engine or what OnOpen needs.
func (s *Server) authenticate(r *engine.Request) (p *pendingAuth, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("mesh: Authenticate panicked; answered 500", "remote", remote(r), "panic", v)
			p, err = nil, errAuthInternal
		}
	}()
	id, err := s.opts.Authenticate(r)
	if err != nil {
		var he *engine.HTTPError
		switch {
		case !errors.As(err, &he):
			s.logRefusal("mesh: handshake refused", "remote", remote(r), "status", 401, "err", err)
			return nil, errUnauthorized
		case he.Status < 300 || he.Status > 599:
			s.log.Error("mesh: Authenticate refused with a status that is no refusal; answered 500", "remote", remote(r), "status", he.Status)
			return nil, errAuthInternal
		}
		s.logRefusal("mesh: handshake refused", "remote", remote(r), "status", he.Status, "reason", he.Message)
		return nil, he
	}
	p, err = newPending(id, true)
	if err != nil {
		s.log.Error("mesh: handshake: answered 500", "remote", remote(r), "err", err)
		return nil, errAuthInternal
	}
	return p, nil
}

// newPending prepares id for OnOpen and registration; nil for an anonymous
// identity with nothing to do.
func newPending(id Identity, verify bool) (*pendingAuth, error) {
	p := &pendingAuth{}
	if id.User != "" || id.Claims != nil {
		p.auth = &connAuth{user: id.User, claims: id.Claims}
	}
	if id.Metadata != nil {
		meta, err := recordJSON(id.Metadata)
		if err != nil {
			return nil, fmt.Errorf("Identity.Metadata: %w", err)
		}
		p.meta = meta
	}
	if verify {
		p.verify = id.Verify
	}
	if p.auth == nil && p.meta == nil && p.verify == nil {
		return nil, nil
	}
	return p, nil
}

func remote(r *engine.Request) string {
	if c := r.Conn(); c != nil && c.RemoteAddr() != nil {
		return c.RemoteAddr().String()
	}
	return "?"
}

// verify runs an Identity's Verify for c, whose queue OnOpen held, then
// registers c or closes it. It runs on a goroutine of its own: Verify may
// wait on the network for up to Options.AuthTimeout, and a worker or a loop
// waiting with it would hold up other connections.
func (s *Server) verify(c *Connection, a *connActive, fn func(context.Context) (Identity, error)) {
	ctx, cancel := context.WithTimeout(a.ctx, s.opts.AuthTimeout)
	id, err := runVerify(ctx, fn)
	cancel()
	var p *pendingAuth
	if err == nil {
		p, err = newPending(id, false)
	}
	if err != nil {
		s.m.refused()
		ce := errAuthFailed
		if errors.As(err, &ce) && !closeCodeValid(ce.Code) {
			ce = errAuthFailed
		}
		s.logRefusal("mesh: authentication failed; connection closed", "conn", c.id, "remote", addrString(c.RemoteAddr()), "close", int(ce.Code), "err", err)
		c.closed.Store(true) // what waits in its queue is dropped, unrun
		c.c.CloseAsync(ce.Code, truncateReason(ce.Reason))
		// Never registered: nothing to clean up. If OnClose came first, it
		// left lifeClosedEarly, which says the same.
		c.life.CompareAndSwap(lifeRegistering, lifeRefused)
		s.release(c)
		return
	}
	var meta []byte
	if p != nil {
		if p.auth != nil {
			c.auth.Store(p.auth)
		}
		meta = p.meta
	}
	if hooks := s.openHooks(); s.localRegistry && len(hooks) == 0 {
		s.register(c, meta, nil, false) // tells the connection its id, if it asked
		return
	}
	s.work.push(s, job{c: c, kind: jobRegister, meta: meta})
}

// runVerify calls fn, turning a panic into a close with 1011.
func runVerify(ctx context.Context, fn func(context.Context) (Identity, error)) (id Identity, err error) {
	defer func() {
		if v := recover(); v != nil {
			id, err = Identity{}, fmt.Errorf("%w: Verify panicked: %v", errAuthPanicked, v)
		}
	}()
	return fn(ctx)
}

// closeCodeValid reports whether code may be sent in a close frame (RFC
// 6455 7.4: the defined codes a server may send, and 3000 to 4999).
func closeCodeValid(code engine.CloseCode) bool {
	return code == 1000 || (code >= 1001 && code <= 1003) || (code >= 1007 && code <= 1014) ||
		(code >= 3000 && code <= 4999)
}

// truncateReason keeps a close reason within the 123 bytes a close frame
// holds, on a rune boundary.
func truncateReason(r string) string {
	const max = 123
	if len(r) <= max {
		return r
	}
	n := max
	for n > 0 && !utf8.RuneStart(r[n]) {
		n--
	}
	return r[:n]
}
