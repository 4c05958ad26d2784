package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"sync"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/features/realtime"
	"github.com/meshfast/meshfast/features/streams"
	"github.com/meshfast/meshfast/features/streams/gateway"
	"github.com/meshfast/meshfast/features/streams/store"
	"github.com/meshfast/meshfast/perf"
	"github.com/meshfast/meshfast/protocol"
)

// Config is a node's whole configuration. The zero value is a single node
// with the in-memory coordinator on :8080.
type Config struct {
	// Engine configures sockets, limits and timeouts.
	Engine engine.Options
	// Mesh configures the Mesh protocol (path, liveness, coordinator).
	Mesh mesh.Options
	// Bench exposes the channels "bench" and "bench:*" and the command
	// "bench/publish" {channel, message} that publishes to them, for
	// meshfast-bench's fanout scenario.
	Bench bool
	// Expose lists the channels, records and presence rooms clients may
	// use. Zero exposes none (but the bench channels when Bench is set).
	Expose Exposures
	// API configures the server HTTP API (none without keys).
	API APIConfig
	// JWT turns on authentication with a token at connect.
	JWT JWTConfig
	// Proxy forwards unregistered commands, and connections to
	// authenticate, to a backend.
	Proxy ProxyConfig
	// SSE configures the Server-Sent Events endpoint (features/realtime):
	// its path (zero: /events), heartbeat, retry hint and cap. Unlike
	// realtime's own default, a zero MaxConnections caps the streams at
	// nothing of their own: the node's connection limits apply.
	SSE realtime.SSEOptions
	// Demo serves the demo page on /demo, and exposes what it uses: the
	// channel "demo:feed", presence in the room "demo", and the command
	// "demo/post" (demo.go).
	Demo bool
	// Logger, if set, receives the node's log lines, and the engine's and
	// Mesh's (each at its own level, with a "component" attribute) where
	// their Options leave Logger nil. Nil leaves them as the options say.
	Logger *slog.Logger
	// Redis, when its URL is set, makes Start connect to Redis and run the
	// node on it (Mesh.Coordinator must then be nil): several nodes on one
	// Redis serve as one.
	Redis RedisConfig
	// Streams configures the durable event streams and zero-pub-sub's
	// gateway beside Mesh (streams.go).
	Streams StreamsConfig
}

// Node is a running meshfast node.
type Node struct {
	Engine  *engine.Engine
	Mesh    *mesh.Server
	Metrics *perf.Metrics
	// Realtime is the helper API (broadcast, send to a user, channels) over
	// the node's two drivers: Mesh, and Server-Sent Events.
	Realtime *realtime.Realtime
	// Admin is the API's own listener when APIConfig.Addr is set, else nil.
	Admin *engine.Engine
	// Streams are the node's durable event streams, Gateway zero-pub-sub's
	// gateway over them (streams.go).
	Streams *streams.Streams
	Gateway *gateway.Gateway

	history      histories // written by Start, read-only after
	coordTimeout time.Duration
	proxy        *proxy            // the command and connect proxies, nil without a backend
	ownedCo      coord.Coordinator // the coordinator Start opened (Redis), closed by Shutdown
	health       *health           // checks of the coordinator's and the streams store's backends, nil without one
	closeOnce    sync.Once         // closeCoordinator
	ownedStore   store.Store       // the streams store Start opened (Redis), closed by Shutdown
	givenStreams bool              // Streams came in Config.Mesh.Streams: the caller closes them
}

// ErrInvalidConfig is wrapped by every error Config.Validate returns.
var ErrInvalidConfig = errors.New("server: invalid configuration")

// Validate reports a configuration Start would refuse or that could not
// serve anyone: the engine's own Validate, and a Mesh path no request can
// match (a request's path always starts with "/", so "chat" would leave the
// server up and unreachable). Start calls it first; a program that builds a
// Config from flags can call it to report a mistake before starting.
func (c Config) Validate() error {
	if err := c.Engine.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := c.Mesh.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := (realtime.Options{Mesh: c.Mesh, SSE: c.SSE}).Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := c.API.validate(); err != nil {
		return err
	}
	if err := c.JWT.validate(); err != nil {
		return err
	}
	if err := c.Proxy.validate(); err != nil {
		return err
	}
	if c.JWT.Enabled() && c.Proxy.ConnectURL != "" {
		return fmt.Errorf("%w: JWT and a connect proxy both authenticate connections: choose one", ErrInvalidConfig)
	}
	if (c.JWT.Enabled() || c.Proxy.ConnectURL != "") && c.Mesh.Authenticate != nil {
		return fmt.Errorf("%w: JWT or a connect proxy and Mesh.Authenticate both authenticate connections: choose one", ErrInvalidConfig)
	}
	if err := c.Redis.validate(c.Mesh.Coordinator != nil); err != nil {
		return err
	}
	meshPath, ssePath := c.Mesh.Path, c.SSE.Path
	if meshPath == "" {
		meshPath = mesh.DefaultPath
	}
	if ssePath == "" {
		ssePath = realtime.DefaultSSEPath
	}
	if err := c.Streams.validate(c.Redis.URL, meshPath, ssePath); err != nil {
		return err
	}
	return c.Expose.validate()
}

// Start builds and starts a node; it returns once the listener is bound, or
// the error that kept it from starting (Validate's first).
func Start(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	eo := cfg.Engine
	reg := perf.NewMetrics()
	publish := reg.Tracker("meshfast_publish_to_write_seconds", "Time from a publish to its frame being written by a loop, per loop.", perf.Options{})
	if eo.PublishLatency == nil {
		eo.PublishLatency = func(loop int, d time.Duration) { publish.RecordOn(loop, int64(d)) }
	}
	if cfg.Mesh.Metrics == nil {
		cfg.Mesh.Metrics = reg
	}
	// Mesh has its own application-level liveness (ping/pong with
	// maxMissedPongs); WebSocket pings and the idle timeout would only
	// duplicate it, unless asked for explicitly.
	if eo.IdleTimeout == 0 {
		eo.IdleTimeout = -1
	}
	if eo.PingInterval == 0 {
		eo.PingInterval = -1
	}
	eo.SweepPeriod, eo.TickInterval = sweepFor(eo, cfg.Mesh)
	eo.SweepPeriod, eo.TickInterval = gatewaySweep(eo, cfg.Engine.SweepPeriod, cfg.Streams.Gateway)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	} else {
		if eo.Logger == nil {
			eo.Logger = cfg.Logger.With("component", "engine")
		}
		if cfg.Mesh.Logger == nil {
			cfg.Mesh.Logger = cfg.Logger.With("component", "mesh")
		}
	}
	n := &Node{Metrics: reg, coordTimeout: cfg.Mesh.CoordTimeout}
	if n.coordTimeout <= 0 {
		n.coordTimeout = mesh.DefaultCoordTimeout
	}
	jwtCfg := cfg.JWT.withDefaults()
	if err := jwtCfg.loadRSAKey(); err != nil {
		return nil, fmt.Errorf("%w: JWT RSA public key: %w", ErrInvalidConfig, err)
	}
	var px *proxy
	if cfg.Proxy.CommandURL != "" || cfg.Proxy.ConnectURL != "" {
		px = newProxy(n, cfg.Proxy, reg, log.With("component", "proxy"))
		n.proxy = px
	}
	switch {
	case jwtCfg.Enabled():
		cfg.Mesh.Authenticate = newJWTAuth(jwtCfg).authenticate
	case cfg.Proxy.ConnectURL != "":
		cfg.Mesh.Authenticate = px.authenticate
	}
	if cfg.Redis.URL != "" {
		rc, err := connectRedis(cfg.Redis, log.With("component", "redis"))
		if err != nil {
			return nil, err
		}
		n.ownedCo, cfg.Mesh.Coordinator = rc, rc
	}
	// One Streams per node: the gateway's durable events and Mesh's durable
	// channels are the same streams (a durable channel's name is its room).
	if cfg.Mesh.Streams != nil {
		n.Streams, n.givenStreams = cfg.Mesh.Streams, true
	} else if err := n.startStreams(&cfg, reg, log); err != nil {
		_ = n.closeCoordinator()
		return nil, err
	}
	cfg.Mesh.Streams = n.Streams
	e := engine.New(eo)
	so := cfg.SSE
	if so.MaxConnections == 0 {
		so.MaxConnections = -1 // no cap of the streams' own: the node's limits apply
	}
	rt, err := realtime.New(e, realtime.Options{
		Mesh: cfg.Mesh,
		SSE:  so,
		// The node's connection limits apply to Mesh, not the helpers' default.
		WebSocket: realtime.WebSocketOptions{MaxConnections: -1},
		History:   func(ch string) int { h, _ := n.history.lookup(ch); return h },
	})
	if err != nil {
		_ = n.closeStreams()
		_ = n.closeCoordinator()
		return nil, err
	}
	ms := rt.Mesh()
	n.Engine, n.Mesh, n.Realtime = e, ms, rt
	n.registerMetrics()
	if cfg.Proxy.CommandURL != "" {
		ms.ExposeFallback(px.command)
	}
	var probes []*healthProbe
	if ob, ok := ms.Coordinator().(coord.Observed); ok {
		registerCoordMetrics(reg, ob)
		probes = append(probes, &healthProbe{name: "coordinator", check: ob.Health})
	}
	// The store, captured: Shutdown closes it while the checks may still run.
	probes = append(probes, &healthProbe{name: "streams", check: n.Streams.Store().Health})
	n.health = startHealth(DefaultHealthInterval, probes...)
	ms.Expose("echo", func(c *mesh.Context) (any, error) { return c.Payload, nil })
	if cfg.Bench {
		n.exposeBench()
	}
	if err := n.expose(cfg.Expose); err != nil {
		_ = rt.Close()
		_ = n.closeStreams()
		_ = n.closeCoordinator()
		return nil, err
	}
	if cfg.Demo {
		n.serveDemo(rt.Options().Mesh.Path, rt.Options().SSE.Path)
	}
	if (jwtCfg.Enabled() || cfg.Proxy.ConnectURL != "") && !cfg.Mesh.Private {
		n.guardAllRooms() // after the configured rooms: they match first
	}
	ms.UseFor(protocol.CmdSubscribeChannel, n.boundHistory)
	if err := n.startGateway(&cfg, e, jwtCfg, reg, log); err != nil {
		_ = rt.Close()
		_ = n.closeStreams()
		_ = n.closeCoordinator()
		return nil, err
	}
	if len(cfg.API.Keys) > 0 {
		a := newAPI(n, cfg.API, reg, log.With("component", "api"))
		if cfg.API.Addr == "" {
			a.cfg.MaxBodySize = min(a.cfg.MaxBodySize, e.Options().MaxMessageSize)
			a.register(e)
		} else {
			n.Admin = engine.New(engine.Options{Addr: cfg.API.Addr, Loops: 1, MaxMessageSize: a.cfg.MaxBodySize,
				IdleTimeout: -1, PingInterval: -1, Logger: eo.Logger})
			a.register(n.Admin)
		}
	}
	e.HandleHTTP("/health", n.healthHandler())
	e.HandleHTTP("/metrics", func(w *engine.Response, _ *engine.Request) {
		w.ContentType = "text/plain; version=0.0.4"
		w.Body = n.Metrics.WritePrometheus(nil)
	})
	if err := e.Start(); err != nil {
		_ = rt.Close()
		_ = n.closeStreams()
		_ = n.closeCoordinator()
		return nil, err
	}
	if n.Admin != nil {
		if err := n.Admin.Start(); err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = e.Shutdown(ctx)
			_ = rt.Close()
			_ = n.closeStreams()
			_ = n.closeCoordinator()
			return nil, fmt.Errorf("API address: %w", err)
		}
	}
	return n, nil
}

// Addr is the bound address.
func (n *Node) Addr() net.Addr { return n.Engine.Addr() }

// Shutdown closes every connection (1001), waits for them until ctx ends,
// then releases the coordinator: each connection's shared state goes with
// it, then the node's own, so the other nodes of a Redis see this one's
// clients leave at once, not after a TTL.
func (n *Node) Shutdown(ctx context.Context) error {
	var aerr error
	if n.Admin != nil {
		if aerr = n.Admin.Shutdown(ctx); errors.Is(aerr, engine.ErrServerClosed) {
			aerr = nil
		}
	}
	err := n.Engine.Shutdown(ctx)
	if errors.Is(err, engine.ErrServerClosed) {
		err = nil
	}
	return errors.Join(aerr, err, n.Realtime.Close(), n.closeStreams(), n.closeCoordinator())
}

func (n *Node) registerMetrics() {
	registerMetrics(n.Metrics, n.Engine, n.Engine.Stats, n.Mesh.LocalTopics)
}

// scrape is one scrape's reading of the engine's counters and the topic
// tables. Engine.Stats walks every loop and LocalTopics every topic under
// the topic lock, so registerMetrics takes each once per scrape, in an
// OnScrape hook, and its funcs read this copy instead of calling them once
// per series. Guarded by the registry's lock, under which the hook and the
// funcs run.
type scrape struct {
	stats  engine.Stats
	topics mesh.TopicCounts
}

// registerMetrics registers the engine's and Mesh's series on m, reading
// stats and topics (Engine.Stats and Server.LocalTopics; tests count the
// calls) once per scrape.
func registerMetrics(m *perf.Metrics, e *engine.Engine, stats func() engine.Stats, topics func() mesh.TopicCounts) {
	m.RegisterRuntime()
	s := new(scrape)
	m.OnScrape(func() {
		s.stats = stats()
		s.topics = topics()
	})
	m.GaugeFunc("meshfast_connections", "Open WebSocket and stream connections.", func() float64 { return float64(s.stats.Connections) })
	m.GaugeFunc("meshfast_tcp_connections", "Accepted TCP connections, including handshakes.", func() float64 { return float64(s.stats.TCP) })
	m.CounterFunc("meshfast_accepted_total", "Connections accepted.", func() uint64 { return s.stats.Accepted })
	m.CounterFunc("meshfast_messages_in_total", "Messages received.", func() uint64 { return s.stats.MessagesIn })
	m.CounterFunc("meshfast_bytes_in_total", "Bytes received in frames.", func() uint64 { return s.stats.BytesIn })
	m.CounterFunc("meshfast_frames_out_total", "Frames written.", func() uint64 { return s.stats.FramesWritten })
	m.CounterFunc("meshfast_bytes_out_total", "Bytes written.", func() uint64 { return s.stats.BytesWritten })
	m.CounterFunc("meshfast_writes_total", "write/writev system calls by the write path.", func() uint64 { return s.stats.Writes })
	for _, l := range []struct {
		limit string
		n     func() uint64
	}{
		{"max_connections", func() uint64 { return s.stats.RefusedMaxConnections }},
		{"file_limit", func() uint64 { return s.stats.RefusedFileLimit }},
		{"per_ip", func() uint64 { return s.stats.RefusedPerIP }},
	} {
		m.CounterFunc("meshfast_connections_refused_total", "TCP connections closed as soon as accepted, by the limit they were past.",
			l.n, perf.Label{Name: "limit", Value: l.limit})
	}
	// Accepting backs off while descriptors or memory run out, rather than
	// stopping the listener: an episode and the failed accept(2) calls in it.
	m.CounterFunc("meshfast_accept_backoffs_total", "Times accepting backed off for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM).",
		func() uint64 { return s.stats.AcceptBackoffs })
	m.CounterFunc("meshfast_accept_errors_total", "accept(2) calls failed during those back-offs.", func() uint64 { return s.stats.AcceptErrors })
	m.CounterFunc("meshfast_slow_consumers_total", "Connections closed as slow consumers.", func() uint64 { return s.stats.SlowConsumers })
	m.CounterFunc("meshfast_dropped_frames_total", "Frames discarded when slow consumers were cut off.", func() uint64 { return s.stats.Dropped })
	for _, r := range engine.CloseReasons() {
		// One atomic load each, no walk: read live rather than from Stats'
		// map of the non-zero ones.
		m.CounterFunc("meshfast_closed_total", "Connections ended, by reason.", func() uint64 { return e.ClosedBy(r) },
			perf.Label{Name: "reason", Value: r.String()})
	}
	m.GaugeFunc("mesh_rooms", "Rooms with members on this node.", func() float64 { return float64(s.topics.Rooms) })
	m.GaugeFunc("mesh_channels", "Channels with subscribers on this node.", func() float64 { return float64(s.topics.Channels) })
	m.GaugeFunc("mesh_presence_rooms", "Rooms whose presence has subscribers on this node.", func() float64 { return float64(s.topics.Presence) })
	m.GaugeFunc("mesh_records", "Records with subscribers on this node.", func() float64 { return float64(s.topics.Records) })
}

// exposeBench adds the load generator's channels and publish command. The
// channels go through expose like the configured ones, before them, so a
// configuration that names them too decides their history.
func (n *Node) exposeBench() {
	ms := n.Mesh
	_ = n.expose(Exposures{Channels: []ChannelExposure{ // no durable channel: no error
		{Exposure: Exposure{Name: "bench"}},
		{Exposure: Exposure{Pattern: regexp.MustCompile(`^bench:`)}},
	}})
	ms.Expose("bench/publish", func(c *mesh.Context) (any, error) {
		var req struct {
			Channel string `json:"channel"`
			Message string `json:"message"`
		}
		if err := c.Bind(&req); err != nil {
			return nil, err
		}
		if req.Channel == "" {
			req.Channel = "bench"
		}
		if err := n.PublishToChannel(c, req.Channel, req.Message); err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
		return json.RawMessage("true"), nil
	})
}

// sweepFor returns the engine's sweep period and tick for Mesh's timers.
// A connection's ping and latency probe fire on the engine's sweep, which
// looks at each connection once per SweepPeriod (1 s by default): an
// interval shorter than that would silently stretch to it (a 10 ms
// -ping-interval gave pings 250–750 ms apart). The sweep follows the
// finest Mesh interval, at half of it, unless the engine's are set.
func sweepFor(eo engine.Options, mo mesh.Options) (sweep, tick time.Duration) {
	sweep, tick = eo.SweepPeriod, eo.TickInterval
	if sweep != 0 {
		return sweep, tick
	}
	finest := time.Duration(0)
	for _, d := range []time.Duration{mo.PingInterval, mo.LatencyInterval} {
		if d > 0 && (finest == 0 || d < finest) {
			finest = d
		}
	}
	if finest == 0 || finest >= 2*engine.DefaultSweepPeriod {
		return sweep, tick
	}
	sweep = max(finest/2, minSweep)
	if tick == 0 || tick > sweep {
		tick = sweep
	}
	return sweep, tick
}

// minSweep bounds how often a loop looks at every connection's timers.
const minSweep = 5 * time.Millisecond
