package realtime

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
)

// Realtime is the helper API over a node's two drivers: Server-Sent Events
// streams and WebSocket (Mesh) connections. Its methods are safe from any
// goroutine unless they say otherwise.
type Realtime struct {
	opts Options
	e    *engine.Engine
	ms   *mesh.Server
	sse  *engine.SSE
	log  *slog.Logger // Options.Mesh.Logger's, or none

	streams atomic.Int64 // open streams on this node

	chanMu sync.RWMutex
	chans  map[string]*chanState // channels with streams on this node (channels.go)

	usersMu sync.RWMutex
	users   map[string]int // user topics with streams on this node, and how many

	hooksMu sync.RWMutex
	hooks   map[string]ChannelOptions // Channel's, by name
}

// New creates a Realtime on e: the Mesh server (Options.Mesh, on its
// Path) and the SSE endpoint on Options.SSE.Path. Call it before e.Serve,
// instead of mesh.New.
func New(e *engine.Engine, o Options) (*Realtime, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	ms, err := mesh.New(e, o.Mesh)
	if err != nil {
		return nil, err
	}
	rt := &Realtime{
		opts:  o,
		e:     e,
		ms:    ms,
		log:   o.Mesh.Logger,
		chans: make(map[string]*chanState),
		users: make(map[string]int),
		hooks: make(map[string]ChannelOptions),
	}
	if rt.log == nil {
		rt.log = slog.New(slog.DiscardHandler)
	}
	fail := func(err error) (*Realtime, error) {
		_ = ms.Close()
		return nil, err
	}
	rt.sse, err = e.NewSSE(o.SSE.Path, (*sseHandler)(rt), engine.SSEOptions{
		Heartbeat:  o.SSE.Heartbeat,
		Retry:      o.SSE.Retry,
		MaxStreams: max(o.SSE.MaxConnections, 0),
		// Mesh's broadcasts to every connection reach the streams too.
		PublishAllOf: ms.Handler(),
	})
	if err != nil {
		return fail(err)
	}
	if n := o.WebSocket.MaxConnections; n > 0 {
		if err := e.LimitConnections(o.Mesh.Path, n); err != nil {
			return fail(err)
		}
	}
	ms.SetChannelTap(rt)
	ms.SetPushTap(rt)
	ms.OnChannelJoin(rt.meshJoined)
	if o.WebSocket.OnMessage != nil {
		ms.Expose(o.WebSocket.MessageCommand, rt.onMessage)
	}
	if fn := o.WebSocket.OnClose; fn != nil {
		ms.OnDisconnection(func(c *mesh.Connection) { fn(&Socket{c: c}) })
	}
	e.HandleHTTP(o.SSE.Path, rt.serveSSE)
	return rt, nil
}

// Mesh is the Mesh server: the WebSocket driver, and what exposes
// channels, rooms, records and presence.
func (rt *Realtime) Mesh() *mesh.Server { return rt.ms }

// Options returns the options in force, defaults filled in.
func (rt *Realtime) Options() Options { return rt.opts }

// Close closes the Mesh server (mesh.Server.Close). Shut the engine down
// first.
func (rt *Realtime) Close() error { return rt.ms.Close() }

// Broadcast sends ev to every stream and every WebSocket connection on
// every node: Mesh's broadcast (mesh.Server.Broadcast, the HTTP API's
// broadcast), one coordinator publish, and on each node one frame for both
// drivers. ev.ID is not sent (see Event).
func (rt *Realtime) Broadcast(ctx context.Context, ev Event) error {
	name, data, err := pushParts(ev)
	if err != nil {
		return err
	}
	return rt.ms.Broadcast(ctx, name, data)
}

// SendTo sends ev to every connection of user, streams and WebSocket
// connections alike, on every node: Mesh's message to a user
// (mesh.Server.SendToUser, the HTTP API's send_user), whose per-user
// topic a node subscribes to while it has a connection or a stream of
// that user. ev.ID is not sent (see Event).
func (rt *Realtime) SendTo(ctx context.Context, user string, ev Event) error {
	if user == "" {
		return fmt.Errorf("%w: SendTo: empty user", ErrInvalidEvent)
	}
	name, data, err := pushParts(ev)
	if err != nil {
		return err
	}
	return rt.ms.SendToUser(ctx, user, name, data)
}

// StreamPush implements mesh.PushTap: a broadcast to every connection, or
// a message to a user with streams on this node, is given its stream
// variant, encoded once per node.
func (rt *Realtime) StreamPush(dst []byte, topic string, push []byte) []byte {
	if topic == "" {
		if rt.streams.Load() == 0 {
			return dst
		}
	} else {
		rt.usersMu.RLock()
		n := rt.users[topic]
		rt.usersMu.RUnlock()
		if n == 0 {
			return dst
		}
	}
	return appendPushEvent(dst, push)
}

// ChannelOptions configures a channel (Channel).
type ChannelOptions struct {
	// Guard, if set, decides who may join (mesh.Guard: it sees a Mesh
	// connection, or a stream as one).
	Guard mesh.Guard
	// History is how many of the channel's newest messages
	// ToChannel(name).Broadcast keeps. Zero keeps none (unless
	// Options.History says otherwise).
	History int
	// OnJoin, if set, runs once a member (a stream or a WebSocket
	// connection) has joined the channel: what is published after it runs
	// reaches the member. It runs on a goroutine that may block, but the
	// member's join waits for it: a WebSocket connection's subscribe reply,
	// a stream's OnJoin hooks of other channels.
	OnJoin func(m Member)
}

// Channel exposes the channel name to members of both drivers (streams
// ask for it in their query string, WebSocket clients subscribe to it as
// Mesh clients do), with o's guard, history and join hook. Exposing it
// again replaces them.
func (rt *Realtime) Channel(name string, o ChannelOptions) {
	rt.hooksMu.Lock()
	rt.hooks[name] = o
	rt.hooksMu.Unlock()
	rt.ms.ExposeChannel(name, o.Guard)
}

func (rt *Realtime) channelOptions(name string) (ChannelOptions, bool) {
	rt.hooksMu.RLock()
	defer rt.hooksMu.RUnlock()
	o, ok := rt.hooks[name]
	return o, ok
}

// joined runs the channel's OnJoin for a stream.
func (rt *Realtime) joined(st *Stream, channel string) {
	if o, ok := rt.channelOptions(channel); ok && o.OnJoin != nil {
		o.OnJoin(st)
	}
}

// meshJoined runs the channel's OnJoin for a WebSocket connection.
func (rt *Realtime) meshJoined(c *mesh.Connection, channel string) {
	if o, ok := rt.channelOptions(channel); ok && o.OnJoin != nil {
		o.OnJoin(&Socket{c: c})
	}
}

// ChannelRef publishes to one channel (ToChannel).
type ChannelRef struct {
	rt   *Realtime
	name string
}

// ToChannel names a channel to publish to.
func (rt *Realtime) ToChannel(name string) ChannelRef { return ChannelRef{rt: rt, name: name} }

// Broadcast publishes ev to every member of the channel, on every node,
// streams and WebSocket connections alike: one channel message (see
// Event), kept in the channel's history if it has one, encoded on each
// node once per driver.
func (c ChannelRef) Broadcast(ctx context.Context, ev Event) error {
	msg, err := appendEnvelope(nil, ev)
	if err != nil {
		return err
	}
	history := 0
	if o, ok := c.rt.channelOptions(c.name); ok && o.History > 0 {
		history = o.History
	} else if c.rt.opts.History != nil {
		history = c.rt.opts.History(c.name)
	}
	return c.rt.ms.PublishToChannel(ctx, c.name, string(msg), history)
}

// Member is a member of a channel, whichever driver it came by.
type Member interface {
	// ID is the member's connection id.
	ID() string
	// User is the member's user ("" if anonymous).
	User() string
	// Send sends ev to this member alone.
	Send(ev Event) error
	// Close closes the member's connection.
	Close()
}

var (
	_ Member = (*Stream)(nil)
	_ Member = (*Socket)(nil)
)
