package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"
)

// Scenario names, the values of Options.Scenario.
const (
	ScenarioConnect   = "connect"
	ScenarioIdle      = "idle"
	ScenarioRPC       = "rpc"
	ScenarioFanout    = "fanout"
	ScenarioCeiling   = "ceiling"
	ScenarioSim       = "sim"
	ScenarioMultiNode = "multi-node"
)

// Scenarios lists every scenario Run knows.
var Scenarios = []string{ScenarioConnect, ScenarioIdle, ScenarioRPC, ScenarioFanout, ScenarioCeiling, ScenarioSim, ScenarioMultiNode}

// Protocols of a fanout, the values of FanoutOptions.Protocol.
const (
	// ProtocolMesh: subscribers subscribe to a Mesh channel, publishers
	// send the publish command (-bench's bench/publish).
	ProtocolMesh = "mesh"
	// ProtocolZPS: subscribers speak zero-pub-sub's gateway protocol
	// (init, subscribe to a room from sequence 0) and get each publish as
	// a durable event; publishers publish over the gateway too (the node
	// must allow client publishing and lift the gateway's rate limit).
	ProtocolZPS = "zps"
)

// TCP probe modes, the values of ConnectOptions.TCPProbe.
const (
	ProbeServer   = "server"   // connect + close to the target's own port
	ProbeListener = "listener" // connect + close to an accept-only listener in the coordinator
	ProbeOff      = "off"
)

// MaxConnsPerWorker is the most connections one worker process holds: a
// process here may have 20,000 open files, and a worker also needs its
// epoll descriptors, pipes and the sockets of dials in flight.
const MaxConnsPerWorker = 19000

// Defaults. Each names the field it fills when that field is zero.
const (
	DefaultPath             = "/"              // Options.Path
	DefaultZPSPath          = "/zps"           // Options.Path with FanoutOptions.Protocol zps
	DefaultSSEPath          = "/events"        // Options.SSEPath
	DefaultConns            = 1000             // Options.Conns
	DefaultConnsPerWorker   = 10000            // Options.ConnsPerWorker
	DefaultSourceIPs        = 4                // Options.SourceIPs, per worker
	DefaultDialers          = 2                // Options.Dialers
	DefaultDialConcurrency  = 256              // Options.DialConcurrency
	DefaultClientLoops      = 1                // Options.ClientLoops
	DefaultDuration         = 10 * time.Second // Options.Duration
	DefaultTimeout          = 60 * time.Second // Options.Timeout
	DefaultProgress         = time.Second      // Options.Progress
	DefaultLabel            = "target"         // Options.Label
	DefaultBaselineLabel    = "baseline"       // Options.BaselineLabel
	DefaultSettle           = 2 * time.Second  // IdleOptions.Settle
	DefaultPayload          = 64               // RPCOptions.Payload, FanoutOptions.Payload
	DefaultDepth            = 1                // RPCOptions.Depth
	DefaultMaxRequests      = 10_000_000       // RPCOptions.MaxRequests
	DefaultPublishers       = 1                // FanoutOptions.Publishers
	DefaultRate             = 100              // FanoutOptions.Rate, publishes/s
	DefaultClosedLoopMsgs   = 100_000          // FanoutOptions.Messages when Rate < 0
	DefaultChannel          = "bench"          // FanoutOptions.Channel
	DefaultPublishCommand   = "bench/publish"  // FanoutOptions.Command
	DefaultNodes            = 3                // MultiNodeOptions.Nodes
	DefaultMeshfast         = "meshfast"       // MultiNodeOptions.Meshfast
	DefaultDrain            = 15 * time.Second // FanoutOptions.Drain
	DefaultWriters          = 1                // CeilingOptions.Writers
	DefaultWarmup           = 1000             // ConnectOptions.Warmup
	DefaultConnectRounds    = 4                // ConnectOptions.Rounds
	maxConnectRounds        = 1000
	DefaultRounds           = 200              // CeilingOptions.Rounds
	DefaultSimConns         = 1_000_000        // SimOptions.Conns
	DefaultSimPublishes     = 20               // SimOptions.Publishes
	DefaultSimLoops         = 1                // SimOptions.Loops
	defaultRunGrace         = 2 * time.Second  // run phase: wait this long for replies in flight
	defaultPacerTick        = time.Millisecond // open-loop request pacing
	defaultDrainQuiet       = time.Second      // drain ends after this long without a delivery
	firstSourceIP           = 2                // 127.0.0.2 is the first client source address
	defaultTCPDialTimeout   = 5 * time.Second
	defaultMaxClientMessage = 16 << 20
)

// Options configures one Run. The zero value of every field means the
// default named beside it; Validate refuses conflicts.
type Options struct {
	// Scenario is one of Scenarios. Zero means ScenarioConnect.
	Scenario string

	// Targets are the servers under test, "host:port" on 127.0.0.0/8.
	// Connections are spread over them round-robin (nodes sharing Redis).
	// Required except for ScenarioCeiling and ScenarioSim.
	Targets []string
	// Label names the Targets run in reports. Zero means DefaultLabel.
	Label string

	// BaselineTargets, when set, runs the same scenario against these
	// servers right after Targets, so the report compares both from one
	// invocation on the same box.
	BaselineTargets []string
	// BaselineLabel names that run. Zero means DefaultBaselineLabel.
	BaselineLabel string

	// Path is the WebSocket path. Zero means DefaultPath.
	Path string

	// SSE is the share of the held (connect, idle) or subscribed (fanout)
	// connections that are Server-Sent Events streams rather than
	// WebSockets, from 0 (none) to 1 (all); the rest are WebSockets, in the
	// same run. Publishers are WebSockets. Zero means none.
	SSE float64
	// SSEPath is the path streams are opened on. Zero means DefaultSSEPath.
	SSEPath string

	// ServerPID is the pid of the Targets server, whose memory (idle) and
	// CPU time (every scenario) are read from /proc. Zero means: find the
	// process listening on each target port; CPU figures are left out when
	// none is found (a remote or containerised server).
	ServerPID int
	// BaselinePID is ServerPID for BaselineTargets.
	BaselinePID int

	// Conns is the number of client connections: held (connect, idle),
	// requesting (rpc) or subscribed (fanout, ceiling). Zero means DefaultConns.
	Conns int

	// Workers is how many worker processes share the connections. Zero
	// means ceil(connections / ConnsPerWorker).
	Workers int
	// ConnsPerWorker sizes automatic Workers; at most MaxConnsPerWorker.
	// Zero means DefaultConnsPerWorker.
	ConnsPerWorker int
	// InProcess runs the workers as goroutines of this process instead of
	// child processes (tests; small runs). All of them then share this
	// process's open-file limit.
	InProcess bool

	// SourceIPs is how many source addresses each worker binds its
	// connections to (127.0.0.2 upward, disjoint per worker), each good for
	// ~28k ports. Zero means DefaultSourceIPs.
	SourceIPs int
	// Dialers is the number of goroutines per worker calling connect(2).
	// Zero means DefaultDialers. A plain connect does not wait for the
	// server to accept, so dialers that outnumber the server's threads can
	// fill its accept queue: with 4 per worker on 2 cores a fresh server's
	// 4,096-deep queue overflowed in one probe run of three (a SYN
	// retransmitted after 1 s, the probe phase 4× longer); with 2, none in
	// nine, at 5-7% fewer connects/s.
	Dialers int
	// DialConcurrency caps the handshakes in flight per worker. Zero means
	// DefaultDialConcurrency.
	DialConcurrency int
	// ClientLoops is the number of client event loops per worker. Zero means
	// DefaultClientLoops.
	ClientLoops int

	// Duration bounds the measured phase: hold (idle), requests (rpc),
	// publishing (fanout), writing (ceiling). Zero means DefaultDuration.
	Duration time.Duration
	// Timeout bounds every other phase (opening connections, draining).
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// Progress is how often a progress line is printed. Zero means
	// DefaultProgress; negative disables progress lines.
	Progress time.Duration

	// Out, when set, is the path the JSON report is written to.
	Out string
	// SVG, when set, is the path the scenario's latency distribution is
	// drawn to (ReportPlot: PlotMetric's histogram of every run, as
	// percentile curves side by side). Connect, rpc, fanout and ceiling.
	SVG string
	// Stdout receives progress lines and the final table. Nil means
	// os.Stdout; io.Discard silences them.
	Stdout io.Writer `json:"-"`

	Connect   ConnectOptions
	Idle      IdleOptions
	RPC       RPCOptions
	Fanout    FanoutOptions
	Ceiling   CeilingOptions
	Sim       SimOptions
	MultiNode MultiNodeOptions

	// sidePIDs are processes the server depends on (the Redis of a
	// multi-node run) whose CPU time fanout also reports.
	sidePIDs []int
}

// ConnectOptions configures ScenarioConnect.
type ConnectOptions struct {
	// TCPProbe measures plain TCP connects/s in the same run, so handshakes/s
	// can be given as a fraction of it: ProbeServer, ProbeListener or
	// ProbeOff. Zero means ProbeServer.
	TCPProbe string
	// TCPConns is the number of probe connects. Zero means Conns.
	TCPConns int
	// Warmup is a number of plain TCP connects (opened and closed, not
	// counted) made before anything is measured: a freshly started server
	// pays once for starting threads and growing its heap, and in a burst
	// at 60k connects/s that once overflowed its 4,096-deep accept queue
	// (one SYN retransmitted after 1 s, a probe phase 7× longer). Zero means
	// min(DefaultWarmup, Conns); negative means none.
	Warmup int
	// Rounds alternates the probe and the handshakes: each round makes its
	// share of the probe connects, then opens its share of the connections,
	// and the rates are totals over totals. A host whose speed drifts over
	// seconds (a shared VM) then slows both alike instead of whichever phase
	// it fell on. Zero means DefaultConnectRounds.
	Rounds int
	// Floor also runs the scenario against a minimal epoll responder in
	// this process (accept, read the request, write the 101, hold: four
	// system calls a connection), the handshake ceiling of this host. It
	// runs one loop per GOMAXPROCS, as meshfast does by default.
	Floor bool
}

// IdleOptions configures ScenarioIdle.
type IdleOptions struct {
	// SampleAt are the open-connection counts at which the server's RSS is
	// read, ascending; memory per connection is the slope between the first
	// and the last (run it against a freshly started server: one that held
	// connections before reuses their freed memory). Zero means
	// {Conns/2, Conns}.
	SampleAt []int
	// Settle is the pause before each sample. Zero means DefaultSettle.
	Settle time.Duration
}

// RPCOptions configures ScenarioRPC.
type RPCOptions struct {
	// Payload is the length of the echoed payload string. Zero means
	// DefaultPayload.
	Payload int
	// Depth is the requests in flight per connection. Zero means DefaultDepth.
	Depth int
	// Rate is requests/s per connection; zero means closed loop (the next
	// request leaves when a reply arrives).
	Rate float64
	// MaxRequests bounds the requests of the whole run. Zero means
	// DefaultMaxRequests.
	MaxRequests int64
}

// FanoutOptions configures ScenarioFanout (and the payload of the ceiling
// and the simulation, so the three compare).
type FanoutOptions struct {
	// Publishers is the number of publishing connections, on top of Conns
	// subscribers. Zero means DefaultPublishers.
	Publishers int
	// Rate is publishes/s over all publishers. Zero means DefaultRate;
	// negative means closed loop (each publisher publishes again when the
	// server answers).
	Rate float64
	// Messages bounds the publishes of the run. Zero means Rate×Duration,
	// or DefaultClosedLoopMsgs in closed loop.
	Messages int
	// Payload is the length of each published message string
	// ("<ts-ns>|<seq>|" then padding). Zero means DefaultPayload.
	Payload int
	// Channel is the channel subscribed and published to. Zero means
	// DefaultChannel.
	Channel string
	// Command is the command publishers send, with the payload
	// {"channel": Channel, "message": "..."}; the server publishes the
	// message to the channel and answers. Zero means DefaultPublishCommand,
	// which a meshfast node started with -bench exposes.
	Command string
	// Protocol is ProtocolMesh or ProtocolZPS. Zero means ProtocolMesh.
	// With ProtocolZPS, Channel is the room (a fresh "Channel:<run>" when
	// it has no ':', so that every run starts an empty room from sequence
	// 0) and Options.Path DefaultZPSPath when it is DefaultPath.
	Protocol string
	// Drain bounds the wait for deliveries after the last publish (the wait
	// also ends once every message has arrived, or after a second without
	// any delivery). A message not received by then counts as lost. Zero
	// means DefaultDrain.
	Drain time.Duration
	// Ceiling also runs ScenarioCeiling with the same subscribers and
	// payload, to report fanout as a fraction of the kernel's limit.
	Ceiling bool
}

// CeilingOptions configures ScenarioCeiling: a bare program that writes one
// pre-encoded frame to every socket with write(2), the kernel's limit.
type CeilingOptions struct {
	// Writers is the number of writing goroutines, 1 or 2. Zero means
	// DefaultWriters.
	Writers int
	// Rounds bounds the frames written to every socket. Zero means
	// DefaultRounds.
	Rounds int
	// Rate is rounds/s; zero means back to back.
	Rate float64
}

// MultiNodeOptions configures ScenarioMultiNode: fanout, then rpc, against
// several meshfast nodes that share one Redis (Options.Targets: subscribers
// and clients spread over them), then the same two of the same shape
// against one node alone (Single), so that the report sets each multi-node
// figure beside its single-node one and their ratio. The scenario never
// starts Redis; with Redis set it starts the nodes on it.
type MultiNodeOptions struct {
	// Single is the one-node server the same shape runs against
	// ("host:port"). Required unless Redis is set.
	Single []string
	// SinglePID is the pid of Single's server (CPU); zero finds the
	// listener.
	SinglePID int
	// Redis, when set, is a Redis URL (meshfast's -redis): Run starts
	// Nodes meshfast processes on it and one more alone, with -bench, on
	// loopback ports of their choosing, runs against them, and stops them
	// (SIGTERM: a clean shutdown removes their state from Redis). Targets
	// and Single must then be empty. Redis itself is not started.
	Redis string
	// Nodes is how many nodes Redis starts. Zero means DefaultNodes.
	Nodes int
	// Meshfast is the meshfast binary Redis starts: a path, or a name
	// looked up next to this program, then on PATH. Zero means
	// DefaultMeshfast.
	Meshfast string
	// NodeLoops is each started node's -loops; zero lets each take one per
	// CPU. Several nodes on one host share its cores either way.
	NodeLoops int
}

// SimOptions configures ScenarioSim, the in-process engine.Simulator run.
type SimOptions struct {
	// Conns is the number of simulated subscribers. Zero means DefaultSimConns.
	Conns int
	// Publishes is the number of broadcasts timed (fewer if Options.Duration
	// runs out first; opening the connections is bounded by Options.Timeout).
	// Zero means DefaultSimPublishes.
	Publishes int
	// Loops is the number of simulated event loops. Zero means DefaultSimLoops.
	Loops int
}

// withDefaults returns o with every zero field filled.
func (o Options) withDefaults() Options {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	if o.Scenario == "" {
		o.Scenario = ScenarioConnect
	}
	if o.Label == "" {
		o.Label = DefaultLabel
	}
	if o.BaselineLabel == "" {
		o.BaselineLabel = DefaultBaselineLabel
	}
	if o.SSEPath == "" {
		o.SSEPath = DefaultSSEPath
	}
	if o.Fanout.Protocol == "" {
		o.Fanout.Protocol = ProtocolMesh
	}
	if o.Path == "" || o.Fanout.Protocol == ProtocolZPS && o.Path == DefaultPath {
		o.Path = DefaultPath
		if o.Fanout.Protocol == ProtocolZPS {
			o.Path = DefaultZPSPath
		}
	}
	def(&o.Conns, DefaultConns)
	def(&o.ConnsPerWorker, DefaultConnsPerWorker)
	def(&o.SourceIPs, DefaultSourceIPs)
	def(&o.Dialers, DefaultDialers)
	def(&o.DialConcurrency, DefaultDialConcurrency)
	def(&o.ClientLoops, DefaultClientLoops)
	defDur(&o.Duration, DefaultDuration)
	defDur(&o.Timeout, DefaultTimeout)
	defDur(&o.Progress, DefaultProgress)
	if o.Connect.TCPProbe == "" {
		o.Connect.TCPProbe = ProbeServer
	}
	def(&o.Connect.TCPConns, o.Conns)
	if o.Connect.Warmup == 0 {
		o.Connect.Warmup = min(DefaultWarmup, o.Conns)
	}
	def(&o.Connect.Rounds, DefaultConnectRounds)
	if len(o.Idle.SampleAt) == 0 {
		o.Idle.SampleAt = []int{o.Conns / 2, o.Conns}
	}
	defDur(&o.Idle.Settle, DefaultSettle)
	def(&o.RPC.Payload, DefaultPayload)
	def(&o.RPC.Depth, DefaultDepth)
	if o.RPC.MaxRequests == 0 {
		o.RPC.MaxRequests = DefaultMaxRequests
	}
	def(&o.Fanout.Publishers, DefaultPublishers)
	if o.Fanout.Rate == 0 {
		o.Fanout.Rate = DefaultRate
	}
	if o.Fanout.Messages == 0 {
		if o.Fanout.Rate > 0 {
			o.Fanout.Messages = max(1, int(o.Fanout.Rate*o.Duration.Seconds()))
		} else {
			o.Fanout.Messages = DefaultClosedLoopMsgs
		}
	}
	def(&o.Fanout.Payload, DefaultPayload)
	if o.Fanout.Channel == "" {
		o.Fanout.Channel = DefaultChannel
	}
	if o.Fanout.Command == "" {
		o.Fanout.Command = DefaultPublishCommand
	}
	def(&o.MultiNode.Nodes, DefaultNodes)
	if o.MultiNode.Meshfast == "" {
		o.MultiNode.Meshfast = DefaultMeshfast
	}
	defDur(&o.Fanout.Drain, DefaultDrain)
	def(&o.Ceiling.Writers, DefaultWriters)
	def(&o.Ceiling.Rounds, DefaultRounds)
	def(&o.Sim.Conns, DefaultSimConns)
	def(&o.Sim.Publishes, DefaultSimPublishes)
	def(&o.Sim.Loops, DefaultSimLoops)
	if o.Workers == 0 {
		o.Workers = max(1, (o.totalConns()+o.ConnsPerWorker-1)/o.ConnsPerWorker)
	}
	return o
}

// totalConns is every client connection the scenario opens.
func (o Options) totalConns() int {
	if o.Scenario == ScenarioFanout || o.Scenario == ScenarioMultiNode {
		return o.Conns + o.Fanout.Publishers
	}
	return o.Conns
}

// Validate reports the first setting Run would refuse, after defaults.
// Errors wrap ErrInvalidOptions (and ErrNotLoopback for a bad target).
func (o Options) Validate() error {
	o = o.withDefaults()
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, a...)...)
	}
	if !slices.Contains(Scenarios, o.Scenario) {
		return bad("unknown scenario %q", o.Scenario)
	}
	needsTarget := o.Scenario != ScenarioCeiling && o.Scenario != ScenarioSim &&
		!(o.Scenario == ScenarioMultiNode && o.MultiNode.Redis != "")
	if needsTarget && len(o.Targets) == 0 {
		return bad("scenario %s needs a target address", o.Scenario)
	}
	if o.Scenario == ScenarioMultiNode {
		if err := o.MultiNode.validate(o); err != nil {
			return bad("%v", err)
		}
	}
	for _, t := range slices.Concat(o.Targets, o.BaselineTargets, o.MultiNode.Single) {
		if err := checkLoopback(t); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
	}
	switch {
	case o.Conns < 0 || o.Workers < 0 || o.SourceIPs < 0 || o.Dialers < 0 || o.DialConcurrency < 0 || o.ClientLoops < 0:
		return bad("negative count")
	case o.ConnsPerWorker < 1 || o.ConnsPerWorker > MaxConnsPerWorker:
		return bad("ConnsPerWorker %d outside 1..%d", o.ConnsPerWorker, MaxConnsPerWorker)
	case (o.totalConns()+o.Workers-1)/o.Workers > MaxConnsPerWorker:
		return bad("%d connections over %d workers is more than %d per process", o.totalConns(), o.Workers, MaxConnsPerWorker)
	case o.InProcess && o.Scenario != ScenarioSim && o.totalConns() > MaxConnsPerWorker:
		return bad("InProcess holds every connection in one process: at most %d", MaxConnsPerWorker)
	case o.InProcess && o.Scenario == ScenarioCeiling && 2*o.Conns > MaxConnsPerWorker:
		return bad("an in-process ceiling holds both ends of %d sockets", o.Conns)
	case o.Scenario == ScenarioConnect && o.Connect.Floor && o.Conns > MaxConnsPerWorker:
		return bad("the floor responder holds %d server sockets in this process: at most %d", o.Conns, MaxConnsPerWorker)
	case (o.Scenario == ScenarioCeiling || o.Fanout.Ceiling) && o.Conns > MaxConnsPerWorker:
		return bad("the ceiling holds %d server sockets in this process: at most %d", o.Conns, MaxConnsPerWorker)
	case o.Workers*o.SourceIPs > 1<<20:
		return bad("too many source addresses")
	case o.Duration < 0 || o.Timeout < 0:
		return bad("negative duration")
	case o.SSE < 0 || o.SSE > 1:
		return bad("SSE share %v outside 0..1", o.SSE)
	case o.SSE > 0 && o.Scenario != ScenarioConnect && o.Scenario != ScenarioIdle && o.Scenario != ScenarioFanout:
		return bad("scenario %s has no streams (SSE is for connect, idle and fanout)", o.Scenario)
	case o.Connect.TCPProbe != ProbeServer && o.Connect.TCPProbe != ProbeListener && o.Connect.TCPProbe != ProbeOff:
		return bad("TCPProbe %q", o.Connect.TCPProbe)
	case o.Connect.Rounds < 0 || o.Connect.Rounds > maxConnectRounds:
		return bad("connect rounds %d outside 0..%d", o.Connect.Rounds, maxConnectRounds)
	case o.RPC.Depth < 1 || o.RPC.Depth > maxRing/2 || o.RPC.Rate < 0 || o.RPC.MaxRequests < 0 || o.RPC.Payload < 0:
		return bad("rpc depth must be 1..%d, rate and counts non-negative", maxRing/2)
	case o.Fanout.Publishers < 1 || o.Fanout.Messages < 0 || o.Fanout.Payload < 0:
		return bad("fanout needs a publisher and non-negative counts")
	case o.Fanout.Protocol != ProtocolMesh && o.Fanout.Protocol != ProtocolZPS:
		return bad("protocol %q: %s or %s", o.Fanout.Protocol, ProtocolMesh, ProtocolZPS)
	case o.Fanout.Protocol == ProtocolZPS && (o.Scenario != ScenarioFanout || o.SSE > 0 || o.Fanout.Ceiling):
		return bad("protocol %s is for fanout, without SSE or the ceiling", ProtocolZPS)
	case !simpleName(o.Fanout.Channel):
		return bad("channel %q: use letters, digits and -_:./", o.Fanout.Channel)
	case !simpleName(o.Fanout.Command):
		return bad("publish command %q: use letters, digits and -_:./", o.Fanout.Command)
	case o.Ceiling.Writers < 1 || o.Ceiling.Writers > 2 || o.Ceiling.Rounds < 0 || o.Ceiling.Rate < 0:
		return bad("ceiling writers must be 1 or 2")
	case o.Sim.Conns < 1 || o.Sim.Publishes < 1 || o.Sim.Loops < 1:
		return bad("sim counts must be positive")
	}
	if _, ok := PlotMetric(o.Scenario); o.SVG != "" && !ok {
		return bad("scenario %s has no latency to draw as SVG", o.Scenario)
	}
	if o.Scenario == ScenarioIdle {
		prev := 0
		for _, n := range o.Idle.SampleAt {
			if n <= prev || n > o.Conns {
				return bad("SampleAt %v must ascend within 1..Conns", o.Idle.SampleAt)
			}
			prev = n
		}
	}
	return nil
}

// validate reports what ScenarioMultiNode cannot run with.
func (m MultiNodeOptions) validate(o Options) error {
	switch {
	case m.Redis != "" && (len(o.Targets) > 0 || len(m.Single) > 0):
		return errors.New("multi-node with a Redis URL starts its own nodes: give no addresses")
	case m.Redis == "" && len(o.Targets) < 2:
		return errors.New("multi-node needs the addresses of two or more nodes on one Redis (-addr, repeated), or a Redis URL to start them on")
	case m.Redis == "" && len(m.Single) != 1:
		return errors.New("multi-node needs one single node of the same configuration to compare with (-single-addr)")
	case m.Nodes < 2 || m.Nodes > 16 || m.NodeLoops < 0:
		return fmt.Errorf("nodes %d outside 2..16, or negative loops", m.Nodes)
	case len(o.BaselineTargets) > 0:
		return errors.New("multi-node compares with -single-addr, not a baseline")
	case o.Fanout.Ceiling:
		return errors.New("multi-node has no ceiling run")
	}
	return nil
}

// checkLoopback accepts "host:port" with host in 127.0.0.0/8 or "localhost".
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return fmt.Errorf("target %q: want host:port", addr)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host).To4()
	if ip == nil || ip[0] != 127 {
		return fmt.Errorf("%w: %q", ErrNotLoopback, addr)
	}
	return nil
}

// simpleName reports whether s needs no JSON escaping and is non-empty.
func simpleName(s string) bool {
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == ':' || c == '.' || c == '/'
		if !ok {
			return false
		}
	}
	return s != ""
}
