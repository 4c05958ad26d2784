package gateway

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/streams"
	"github.com/meshfast/meshfast/perf"
	"github.com/meshfast/meshfast/protocol/zps"
)

// Gateway serves zero-pub-sub's gateway protocol on an engine path, over a
// node's Streams. Create it with New before the engine serves; Close it
// after the engine has shut down.
type Gateway struct {
	e  *engine.Engine
	st *streams.Streams
	o  Options
	m  *metrics

	origins engine.Origins // o.AllowedOrigins, parsed; nil: every origin

	seed   maphash.Seed
	shards []*shard

	roomsMu sync.Mutex
	rooms   map[string]*room
	erooms  map[string]*eroom
	closed  bool

	conns     atomic.Int64 // open connections of the route
	nextAnon  atomic.Uint64
	closeOnce sync.Once

	// pingFrame is a WebSocket ping, written as is.
	pingFrame []byte
}

// New registers the gateway's handler on e at o.Path and starts its fan-out
// goroutines; st is the node's streams. Call it before e serves.
func New(e *engine.Engine, st *streams.Streams, o Options) (*Gateway, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	origins, _ := engine.ParseOrigins(o.AllowedOrigins) // Validate parsed them
	g := &Gateway{e: e, st: st, o: o, origins: origins, seed: maphash.MakeSeed(), rooms: make(map[string]*room), erooms: make(map[string]*eroom),
		pingFrame: engine.AppendFrame(nil, engine.OpPing, nil)}
	g.m = newMetrics(o.Metrics, g)
	e.Handle(o.Path, (*handler)(g))
	if n := o.Limits.MaxSocketBufferedBytes; n > 0 {
		if err := e.LimitPendingBytes(o.Path, n); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	g.shards = make([]*shard, o.Shards)
	for i := range g.shards {
		sh := &shard{g: g, wake: make(chan struct{}, 1), done: make(chan struct{})}
		g.shards[i] = sh
		go sh.run()
	}
	return g, nil
}

// Options returns the options in force, defaults filled in.
func (g *Gateway) Options() Options { return g.o }

// Close stops the fan-out and every room the node follows. Call it once
// the engine has shut down (its connections are gone). Idempotent.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		g.roomsMu.Lock()
		g.closed = true
		g.roomsMu.Unlock()
		for _, sh := range g.shards {
			sh.mu.Lock()
			sh.stop = true
			sh.mu.Unlock()
			select {
			case sh.wake <- struct{}{}:
			default:
			}
		}
		for _, sh := range g.shards {
			<-sh.done
		}
		g.roomsMu.Lock()
		var stops []func()
		for k, r := range g.rooms {
			select {
			case <-r.ready:
				if r.stop != nil {
					stops = append(stops, r.stop)
				}
			default: // still attaching: acquire releases it
			}
			delete(g.rooms, k)
		}
		for k, r := range g.erooms {
			select {
			case <-r.ready:
				if r.stop != nil {
					stops = append(stops, r.stop)
				}
			default:
			}
			delete(g.erooms, k)
		}
		g.roomsMu.Unlock()
		for _, stop := range stops {
			stop()
		}
	})
	return nil
}

// Connections is how many connections the gateway has open.
func (g *Gateway) Connections() int { return int(g.conns.Load()) }

// Health is the document's gateway.health().
type Health struct {
	Status      string          `json:"status"`
	Connections int             `json:"connections"`
	Transport   TransportHealth `json:"transport"`
	Metrics     HealthMetrics   `json:"metrics"`
}

// TransportHealth is the storage's side of Health.
type TransportHealth struct {
	Provider string `json:"provider"`
	Status   string `json:"status"`
	Error    string `json:"error,omitempty"`
}

// HealthMetrics are the node's streams counters.
type HealthMetrics struct {
	Published uint64 `json:"published"`
	Received  uint64 `json:"received"`
}

// Health checks the node's streams (store and pub/sub) and reports the
// gateway's connections. It may wait for both.
func (g *Gateway) Health(ctx context.Context) Health {
	sh := g.st.Health(ctx)
	s := g.st.Stats()
	return Health{Status: sh.Status, Connections: g.Connections(),
		Transport: TransportHealth{Provider: sh.Provider, Status: sh.Status, Error: sh.Error},
		Metrics:   HealthMetrics{Published: s.Published, Received: s.Received}}
}

// handler is the gateway's engine.Handler. Its methods run on the
// connection's event loop and never block: what may wait (storage, the
// application's hooks) runs on the connection's worker.
type handler Gateway

// errOrigin refuses a handshake from a page whose origin is not allowed.
var errOrigin = &engine.HTTPError{Status: 403, Message: "origin not allowed"}

// CheckHandshake is engine.HandshakeChecker: Options.AllowedOrigins. The
// protocol's own auth comes later, on init.
func (h *handler) CheckHandshake(r *engine.Request) error {
	g := (*Gateway)(h)
	if g.origins == nil {
		return nil
	}
	if o := r.Header("Origin"); o != nil && !g.origins.Allows(o) {
		g.m.originRefused.Inc()
		return errOrigin
	}
	return nil
}

func (h *handler) OnOpen(ec *engine.Conn, _ *engine.Request) {
	g := (*Gateway)(h)
	c := newConn(g, ec)
	ec.SetValue(c)
	n := g.conns.Add(1)
	if max := g.o.Limits.MaxConnections; max > 0 && n > int64(max) {
		c.fatalLoop(zps.CodeTooManyConnections, fmt.Sprintf("Too many connections (at most %d)", max))
		return
	}
	c.openedAt = ec.LastRead()
	c.schedule(c.openedAt)
}

func (h *handler) OnMessage(ec *engine.Conn, op engine.OpCode, p []byte) {
	c, _ := ec.Value().(*conn)
	if c == nil {
		return
	}
	c.onMessage(op, p)
}

func (h *handler) OnClose(ec *engine.Conn, _ engine.CloseInfo) {
	g := (*Gateway)(h)
	g.conns.Add(-1)
	if c, _ := ec.Value().(*conn); c != nil {
		c.onClose()
	}
}

func (h *handler) OnTimer(ec *engine.Conn, now int64) {
	if c, _ := ec.Value().(*conn); c != nil {
		c.onTimer(now)
	}
}

// metrics are the gateway's series, meshfast_zps_*.
type metrics struct {
	messages *perf.Counter // client messages handed to workers
	events   *perf.Counter // events encoded and published to engine topics
	caught   *perf.Counter // events sent by catch-ups from the store
	// originRefused counts handshakes refused by AllowedOrigins
	originRefused *perf.Counter
	errors        map[string]*perf.Counter
}

func newMetrics(reg *perf.Metrics, g *Gateway) *metrics {
	if reg == nil {
		reg = perf.NewMetrics()
	}
	m := &metrics{
		messages:      reg.Counter("meshfast_zps_messages_total", "Gateway messages received from clients."),
		events:        reg.Counter("meshfast_zps_events_total", "Durable events encoded once and published to a room's subscribers on this node."),
		caught:        reg.Counter("meshfast_zps_catchup_events_total", "Events sent to subscribers catching up from the store."),
		originRefused: reg.Counter("meshfast_zps_handshakes_refused_total", "Gateway handshakes refused because their Origin is not allowed."),
		errors:        map[string]*perf.Counter{},
	}
	for _, code := range []string{zps.CodeInvalidMessage, zps.CodeUnauthorized, zps.CodeInitRequired, zps.CodeInitTimeout,
		zps.CodePublishDisabled, zps.CodePayloadTooLarge, zps.CodeRateLimited, zps.CodeAccessDenied,
		zps.CodeTooManySubscriptions, zps.CodeTooManyConnections, zps.CodeServerError} {
		m.errors[code] = reg.Counter("meshfast_zps_errors_total", "Gateway error messages sent, by code.", perf.Label{Name: "code", Value: code})
	}
	reg.GaugeFunc("meshfast_zps_connections", "Open gateway connections.", func() float64 { return float64(g.conns.Load()) })
	reg.GaugeFunc("meshfast_zps_rooms", "Rooms and scope patterns this node's gateway follows.", func() float64 {
		g.roomsMu.Lock()
		defer g.roomsMu.Unlock()
		return float64(len(g.rooms))
	})
	return m
}

func (m *metrics) refused(code string) {
	if c := m.errors[code]; c != nil {
		c.Inc()
	}
}
