package realtime

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"

	"github.com/meshfast/meshfast/coord"
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

	chanMu sync.RWMutex
	chans  map[string]*chanState // channels with streams on this node (channels.go)

	usersMu sync.Mutex
	users   map[string]map[*Stream]struct{} // streams by user, for SendTo

	hooksMu sync.RWMutex
	hooks   map[string]ChannelOptions // Channel's, by name

	nodeSubs  []coord.Subscription
	closeOnce sync.Once
}

// Coordinator topics of the helpers: every node subscribes to both for its
// life. A message on either is an Event encoded once, in both wire forms
// (encoded.appendWire); a message to a user starts with the user's name.
const (
	topicBroadcast = "mesh:realtime:broadcast"
	topicUser      = "mesh:realtime:user"
)

// New creates a Realtime on e: the Mesh server (Options.Mesh, on its
// Path), the SSE endpoint on Options.SSE.Path, and the helpers' own
// coordinator subscriptions. Call it before e.Serve, instead of mesh.New.
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
		users: make(map[string]map[*Stream]struct{}),
		hooks: make(map[string]ChannelOptions),
	}
	if rt.log == nil {
		rt.log = slog.New(slog.DiscardHandler)
	}
	fail := func(err error) (*Realtime, error) {
		_ = rt.Close()
		return nil, err
	}
	rt.sse, err = e.NewSSE(o.SSE.Path, (*sseHandler)(rt), engine.SSEOptions{
		Heartbeat:  o.SSE.Heartbeat,
		Retry:      o.SSE.Retry,
		MaxStreams: max(o.SSE.MaxConnections, 0),
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
	ms.OnChannelJoin(rt.meshJoined)
	if o.WebSocket.OnMessage != nil {
		ms.Expose(o.WebSocket.MessageCommand, rt.onMessage)
	}
	if fn := o.WebSocket.OnClose; fn != nil {
		ms.OnDisconnection(func(c *mesh.Connection) { fn(&Socket{c: c}) })
	}
	ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
	defer cancel()
	for _, t := range []struct {
		topic string
		h     coord.Handler
	}{
		{topicBroadcast, rt.deliverBroadcast},
		{topicUser, rt.deliverUser},
	} {
		sub, err := ms.Coordinator().Subscribe(ctx, t.topic, t.h)
		if err != nil {
			return fail(fmt.Errorf("realtime: subscribe %q: %w", t.topic, err))
		}
		rt.nodeSubs = append(rt.nodeSubs, sub)
	}
	e.HandleHTTP(o.SSE.Path, rt.serveSSE)
	return rt, nil
}

// Mesh is the Mesh server: the WebSocket driver, and what exposes
// channels, rooms, records and presence.
func (rt *Realtime) Mesh() *mesh.Server { return rt.ms }

// Options returns the options in force, defaults filled in.
func (rt *Realtime) Options() Options { return rt.opts }

// Close drops the helpers' coordinator subscriptions and closes the Mesh
// server (mesh.Server.Close). Shut the engine down first.
func (rt *Realtime) Close() error {
	var err error
	rt.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
		defer cancel()
		for _, sub := range rt.nodeSubs {
			_ = rt.ms.Coordinator().Unsubscribe(ctx, sub)
		}
		err = rt.ms.Close()
	})
	return err
}

// Broadcast sends ev to every stream and every WebSocket connection on
// every node: one coordinator publish, encoded once, and on each node one
// frame for both drivers.
func (rt *Realtime) Broadcast(ctx context.Context, ev Event) error {
	x, err := encode(ev)
	if err != nil {
		return err
	}
	return rt.ms.Coordinator().Publish(ctx, topicBroadcast, x.appendWire(nil))
}

// deliverBroadcast publishes a Broadcast to every connection of the node.
func (rt *Realtime) deliverBroadcast(_ string, p []byte) {
	x, ok := parseWire(p)
	if !ok {
		return
	}
	f := x.frame()
	rt.e.PublishAll(f, nil, nil)
	f.Release()
}

// SendTo sends ev to every stream of user, on every node: those whose
// Options.Mesh.Authenticate named that user.
func (rt *Realtime) SendTo(ctx context.Context, user string, ev Event) error {
	if user == "" {
		return fmt.Errorf("%w: SendTo: empty user", ErrInvalidEvent)
	}
	x, err := encode(ev)
	if err != nil {
		return err
	}
	msg := binary.AppendUvarint(nil, uint64(len(user)))
	msg = append(msg, user...)
	return rt.ms.Coordinator().Publish(ctx, topicUser, x.appendWire(msg))
}

// deliverUser sends a SendTo to the node's streams of its user.
func (rt *Realtime) deliverUser(_ string, p []byte) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)-k) {
		return
	}
	user := p[k : k+int(n)]
	x, ok := parseWire(p[k+int(n):])
	if !ok {
		return
	}
	rt.usersMu.Lock()
	set := rt.users[string(user)]
	conns := make([]*engine.Conn, 0, len(set))
	for st := range set {
		conns = append(conns, st.ec)
	}
	rt.usersMu.Unlock()
	if len(conns) == 0 {
		return
	}
	f := x.frame()
	rt.e.Broadcast(f, conns, nil)
	f.Release()
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
