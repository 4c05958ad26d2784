package mesh

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/meshfast/meshfast/engine"
)

// Members that are not Mesh connections.
//
// A channel's subscribers need not all speak Mesh: features/realtime's
// Server-Sent Events streams receive channels too, through the same engine
// topic as the Mesh connections subscribed to the channel, so that one
// publish reaches both with one task per event loop and one frame holding
// a variant per transport (engine.Frame.SetStream). What they need from
// this package is here, and nothing more:
//
//   - RetainChannel and ReleaseChannel hold the node's coordinator
//     subscription to a channel for such a member: the same reference
//     count (subscriptions.go) that Mesh connections' subscriptions hold,
//     so the node stays subscribed while any member of either kind is. The
//     member's own set of channels, and its engine topics, are its
//     owner's: each RetainChannel is matched by exactly one ReleaseChannel,
//     and the engine forgets a closed connection's topics by itself.
//   - SetChannelTap lets the owner give each channel message its stream
//     variant before it is published to the channel's engine topic.
//   - AuthenticateRequest, MemberConnection and ChannelAllowed apply the
//     rules Mesh clients are held to (the Origin allow-list,
//     Options.Authenticate, the channel exposures and their guards) to a
//     member that arrives by plain HTTP.
//   - OnChannelJoin tells the owner when a Mesh connection joined a
//     channel, for hooks that treat members of both kinds alike.
//   - RetainUser and ReleaseUser do for a user's messages (SendToUser)
//     what RetainChannel and ReleaseChannel do for a channel, and
//     SetPushTap gives the pushes delivered to a user's topic, and the
//     broadcasts to every connection, their stream variant. Handler is the
//     engine handler whose PublishAll a broadcast to every connection
//     uses: an SSE endpoint that names it (engine.SSEOptions.PublishAllOf)
//     is reached by those broadcasts too.

// ChannelTap sees every channel message this node delivers to its local
// subscribers (SetChannelTap). DeliverChannel runs on the coordinator's
// delivery goroutine, one message at a time, and must not block for long:
// every message of every channel waits while it runs. f holds the Mesh
// frame of the message; DeliverChannel may give it a stream variant and
// must publish it to topic with the engine's Publish (the caller releases
// its own reference afterwards).
type ChannelTap interface {
	DeliverChannel(channel, topic string, message []byte, f *engine.Frame)
}

// PushTap gives the Mesh pushes this node delivers to a topic (a user's,
// SendToUser; a room's) or to every connection (Broadcast) a stream
// variant (SetPushTap). StreamPush runs on the coordinator's delivery
// goroutine, once per push and node, and must not block: it appends the
// stream variant of push, a {"command","payload"} message delivered to
// topic ("" for every connection), to dst, or returns dst as it is for
// none (a topic without streams).
type PushTap interface {
	StreamPush(dst []byte, topic string, push []byte) []byte
}

// tapHolder boxes a ChannelTap for an atomic pointer.
type tapHolder struct{ t ChannelTap }

// pushTapHolder boxes a PushTap.
type pushTapHolder struct{ t PushTap }

// streamHooks is what SetChannelTap, SetPushTap and OnChannelJoin
// installed.
type streamHooks struct {
	tap  atomic.Pointer[tapHolder]
	push atomic.Pointer[pushTapHolder]
	join atomic.Pointer[func(c *Connection, channel string)]
}

// SetPushTap installs t (nil removes it). Set it before clients connect.
func (s *Server) SetPushTap(t PushTap) {
	if t == nil {
		s.streams.push.Store(nil)
		return
	}
	s.streams.push.Store(&pushTapHolder{t})
}

// streamPush gives a push delivered to engineTopic its stream variant, if
// the push tap wants one.
func (s *Server) streamPush(engineTopic string, push []byte, f *engine.Frame) {
	h := s.streams.push.Load()
	if h == nil {
		return
	}
	if b := h.t.StreamPush(f.StreamBuf(), engineTopic, push); len(b) > 0 {
		f.SetStreamBytes(b)
	}
}

// Handler is the engine handler of this server's Mesh connections: the one
// its broadcasts to every connection are published to (PublishAll).
func (s *Server) Handler() engine.Handler { return (*handler)(s) }

// RetainUser takes a node reference on user's coordinator subscription
// (the topic SendToUser publishes on) for a member that is not a Mesh
// connection, as RetainChannel does for a channel, and returns the engine
// topic the user's messages are published to on every loop. Every
// successful call must be matched by one ReleaseUser. Any goroutine but a
// loop's.
func (s *Server) RetainUser(ctx context.Context, user string) (topic string, err error) {
	if user == "" {
		return "", errors.New("mesh: RetainUser: empty user")
	}
	if err := s.subs.retain(ctx, subKey{userSource, user}); err != nil {
		return "", err
	}
	return userRoute.engineTopic(user), nil
}

// ReleaseUser drops a reference RetainUser took. Any goroutine but a
// loop's.
func (s *Server) ReleaseUser(ctx context.Context, user string) {
	s.subs.release(ctx, subKey{userSource, user})
}

// SetChannelTap installs t (nil removes it). Set it before clients
// subscribe.
func (s *Server) SetChannelTap(t ChannelTap) {
	if t == nil {
		s.streams.tap.Store(nil)
		return
	}
	s.streams.tap.Store(&tapHolder{t})
}

// OnChannelJoin installs fn, run after each successful mesh/subscribe-
// channel of a Mesh connection, on the command's goroutine, before the
// reply is sent (nil removes it).
func (s *Server) OnChannelJoin(fn func(c *Connection, channel string)) {
	if fn == nil {
		s.streams.join.Store(nil)
		return
	}
	s.streams.join.Store(&fn)
}

// channelJoined runs the OnChannelJoin hook, if any.
func (s *Server) channelJoined(c *Connection, channel string) {
	if fn := s.streams.join.Load(); fn != nil {
		(*fn)(c, channel)
	}
}

// publishChannel hands a channel message's frame to the tap, or publishes
// it as it is.
func (s *Server) publishChannel(channel, topic string, message []byte, f *engine.Frame) {
	if h := s.streams.tap.Load(); h != nil {
		h.t.DeliverChannel(channel, topic, message, f)
		return
	}
	s.e.Publish(topic, f, nil)
}

// RetainChannel takes a node reference on channel's coordinator
// subscription for a member that is not a Mesh connection, subscribing
// the node on the first reference, and returns once the subscription is
// live, with the engine topic the channel's messages are published to on
// every loop. Subscribe the member to that topic on its loop
// (engine.Engine.Subscribe). Every successful call must be matched by one
// ReleaseChannel. It checks the name (the "mesh:" prefix is reserved), not
// the exposures: see ChannelAllowed. Any goroutine but a loop's.
//
// A channel exposed as durable is followed through its stream, and the
// topic is the one its Mesh frames are published to (durable.go); the
// exposure must not change between RetainChannel and ReleaseChannel.
func (s *Server) RetainChannel(ctx context.Context, channel string) (topic string, err error) {
	if err := checkChannel(channel); err != nil {
		return "", err
	}
	r := channelRoute
	if s.durable(channel) {
		if err := checkDurable(channel); err != nil {
			return "", err
		}
		r = durablePlainRoute
	}
	if err := s.subs.retain(ctx, subKey{r.src, channel}); err != nil {
		return "", err
	}
	return r.engineTopic(channel), nil
}

// ReleaseChannel drops a reference RetainChannel took, unsubscribing the
// node from the coordinator with the last one. Any goroutine but a loop's
// (it may wait on the coordinator).
func (s *Server) ReleaseChannel(ctx context.Context, channel string) {
	src := channelSource
	if s.durable(channel) {
		src = durableSource
	}
	s.subs.release(ctx, subKey{src, channel})
}

// AuthenticateRequest applies to a request that is not a Mesh handshake
// (an SSE stream's GET) what CheckHandshake applies to one: the Origin
// allow-list, then Options.Authenticate. It returns the Identity (its
// Metadata dropped: such a member has no Mesh metadata), or the error to
// answer the request with, an *engine.HTTPError. Without Authenticate
// every request is anonymous. Loop only: it runs where CheckHandshake
// would, under the same rules.
func (s *Server) AuthenticateRequest(r *engine.Request) (Identity, error) {
	if s.origins != nil {
		if o := r.Header("Origin"); o != nil && !s.origins.Allows(o) {
			s.m.refused()
			s.logRefusal("mesh: request refused: origin not allowed", "remote", remote(r), "origin", string(o))
			return Identity{}, errOrigin
		}
	}
	if s.opts.Authenticate == nil {
		return Identity{}, nil
	}
	p, err := s.authenticate(r)
	if err != nil {
		s.m.refused()
		return Identity{}, err
	}
	var id Identity
	if p != nil {
		if p.auth != nil {
			id.User, id.Claims = p.auth.user, p.auth.claims
		}
		id.Verify = p.verify
	}
	return id, nil
}

// VerifyIdentity finishes an Identity whose Verify is set, as for a Mesh
// connection: Verify runs with a context that ends after
// Options.AuthTimeout or with ctx, and a panic is an error. It returns the
// Identity Verify returned (its Verify ignored), or id itself if it has
// none. Any goroutine (it blocks while Verify runs).
func (s *Server) VerifyIdentity(ctx context.Context, id Identity) (Identity, error) {
	if id.Verify == nil {
		return id, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.AuthTimeout)
	defer cancel()
	out, err := runVerify(ctx, id.Verify)
	if err != nil {
		s.m.refused()
		return Identity{}, err
	}
	out.Verify = nil
	return out, nil
}

// MemberConnection returns the Connection that guards see for a member
// that is not a Mesh connection, on the engine connection ec with identity
// id: its ID is unique like a Mesh connection's, User, Claims and
// RemoteAddr are the member's, Send pushes a Mesh frame that a stream
// skips. It is not registered with the coordinator and Server.Connection
// does not find it. Any goroutine.
func (s *Server) MemberConnection(ec *engine.Conn, id Identity) *Connection {
	c := &Connection{id: s.newConnID(ec), c: ec}
	if id.User != "" || id.Claims != nil {
		c.auth.Store(&connAuth{user: id.User, claims: id.Claims})
	}
	return c
}

// ChannelAllowed reports whether c may subscribe to channel under the
// channel exposures and their guards, as mesh/subscribe-channel decides
// for a Mesh connection. A guard that panics refuses. It runs the guard on
// the calling goroutine.
func (s *Server) ChannelAllowed(c *Connection, channel string) (ok bool) {
	if checkChannel(channel) != nil {
		return false
	}
	g, exposed := s.channels.lookup(channel)
	if !exposed {
		return false
	}
	if g == nil {
		return true
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("mesh: a guard panicked; refused", "name", channel, "panic", r)
			ok = false
		}
	}()
	return g(c, channel)
}
