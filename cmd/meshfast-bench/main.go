// Command meshfast-bench is meshfast's load generator. It maps its
// subcommand and flags to bench.Options (or baseline.Options) and nothing
// more; see package bench. `meshfast-bench -h` lists every scenario and its
// flags, `meshfast-bench SCENARIO -h` one scenario's.
//
//	meshfast-bench connect -addr 127.0.0.1:9300 -conns 19000 -workers 2 -floor
//	meshfast-bench idle    -addr 127.0.0.1:9300 -conns 19000 -sample-at 10000,19000
//	meshfast-bench rpc     -addr 127.0.0.1:9300 -baseline-addr 127.0.0.1:9400 -conns 100
//	meshfast-bench fanout  -addr 127.0.0.1:9300 -conns 10000 -rate 200 -ceiling -svg fanout.svg
//	meshfast-bench ceiling -conns 10000
//	meshfast-bench sim     -sim-conns 1000000
//	meshfast-bench multi-node -addr 127.0.0.1:9301 -addr 127.0.0.1:9302 -addr 127.0.0.1:9303 -single-addr 127.0.0.1:9300 -conns 10000 -rate -1
//	meshfast-bench multi-node -redis redis://127.0.0.1:6379 -conns 10000 -rate -1
//	meshfast-bench baseline -addr 127.0.0.1:9400
//	meshfast-bench targets /tmp/reports/*.json
//	meshfast-bench plot -o fanout.svg /tmp/reports/fanout.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/meshfast/meshfast/bench"
	"github.com/meshfast/meshfast/bench/baseline"
)

func main() {
	if bench.IsWorker() {
		if err := bench.ServeWorker(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches the subcommand and returns the exit status: 0, 1 for a
// failed run, 2 for bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch sub := args[0]; sub {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	case "baseline":
		return runBaseline(ctx, args[1:], stdout, stderr)
	case "targets":
		return runTargets(args[1:], stdout, stderr)
	case "plot":
		return runPlot(args[1:], stdout, stderr)
	default:
		sc, ok := findScenario(sub)
		if !ok {
			fmt.Fprintf(stderr, "meshfast-bench: unknown subcommand %q\n\n", sub)
			usage(stderr)
			return 2
		}
		return runScenario(ctx, sc, args[1:], stdout, stderr)
	}
}

// cli is what a scenario's flags fill: the options, and the flags that are
// this command's own.
type cli struct {
	o          bench.Options
	cpuprofile string
}

// group is flags that belong together; a scenario registers the groups it
// uses, so it accepts no flag it would ignore.
type group struct {
	title string
	add   func(fs *flag.FlagSet, c *cli)
}

var (
	serverFlags = group{"servers under test", func(fs *flag.FlagSet, c *cli) {
		o := &c.o
		fs.Var((*list)(&o.Targets), "addr", "target `host:port` list, comma separated (loopback only)")
		fs.StringVar(&o.Label, "label", "meshfast", "name of the -addr run in reports")
		fs.Var((*list)(&o.BaselineTargets), "baseline-addr", "also run against these servers (`host:port` list) and compare")
		fs.StringVar(&o.BaselineLabel, "baseline-label", bench.DefaultBaselineLabel, "name of the -baseline-addr run")
		fs.StringVar(&o.Path, "path", bench.DefaultPath, "WebSocket path")
		fs.IntVar(&o.ServerPID, "server-pid", 0, "pid of the -addr server (memory, CPU), 0 = find the listener")
		fs.IntVar(&o.BaselinePID, "baseline-pid", 0, "pid of the -baseline-addr server, 0 = find the listener")
	}}
	clientFlags = group{"client connections", func(fs *flag.FlagSet, c *cli) {
		o := &c.o
		fs.IntVar(&o.Conns, "conns", bench.DefaultConns, "client connections (subscribers for fanout and ceiling)")
		fs.IntVar(&o.Workers, "workers", 0, "worker processes, 0 = conns/conns-per-worker rounded up")
		fs.IntVar(&o.ConnsPerWorker, "conns-per-worker", bench.DefaultConnsPerWorker, "connections per automatic worker")
		fs.BoolVar(&o.InProcess, "in-process", false, "run workers as goroutines of this process")
		fs.IntVar(&o.SourceIPs, "source-ips", bench.DefaultSourceIPs, "source addresses per worker (127.0.0.2 up)")
		fs.IntVar(&o.Dialers, "dialers", bench.DefaultDialers, "dialing goroutines per worker")
		fs.IntVar(&o.DialConcurrency, "dial-concurrency", bench.DefaultDialConcurrency, "handshakes in flight per worker")
		fs.IntVar(&o.ClientLoops, "client-loops", bench.DefaultClientLoops, "client event loops per worker")
	}}
	sseFlags = group{"Server-Sent Events", func(fs *flag.FlagSet, c *cli) {
		fs.Float64Var(&c.o.SSE, "sse", 0, "`share` of held or subscribed connections that are SSE streams, 0 to 1 (the rest WebSockets)")
		fs.StringVar(&c.o.SSEPath, "sse-path", bench.DefaultSSEPath, "path streams are opened on")
	}}
	runFlags = group{"every scenario", func(fs *flag.FlagSet, c *cli) {
		o := &c.o
		fs.DurationVar(&o.Duration, "duration", bench.DefaultDuration, "length of the measured phase")
		fs.DurationVar(&o.Timeout, "timeout", bench.DefaultTimeout, "bound of every other phase")
		fs.DurationVar(&o.Progress, "progress", bench.DefaultProgress, "progress line interval, negative = none")
		fs.StringVar(&o.Out, "out", "", "write the JSON report to this `file`")
		fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write this process's CPU profile to this `file` (sim, ceiling: the measured side runs in this process)")
	}}
	svgFlag = group{"drawing", func(fs *flag.FlagSet, c *cli) {
		fs.StringVar(&c.o.SVG, "svg", "", "draw the latency percentile curves of every run (server, baseline, ceiling) to this SVG `file`")
	}}
	payloadFlag = group{"message", func(fs *flag.FlagSet, c *cli) {
		fs.IntVar(&c.o.Fanout.Payload, "payload", bench.DefaultPayload, "message bytes")
	}}
	drainFlag = group{"delivery", func(fs *flag.FlagSet, c *cli) {
		fs.DurationVar(&c.o.Fanout.Drain, "drain", bench.DefaultDrain, "wait for deliveries after the last publish")
	}}
	connectFlags = group{"connect", func(fs *flag.FlagSet, c *cli) {
		o := &c.o.Connect
		fs.StringVar(&o.TCPProbe, "tcp-probe", bench.ProbeServer, "plain TCP probe: server, listener or off")
		fs.IntVar(&o.TCPConns, "tcp-conns", 0, "probe connects, 0 = -conns")
		fs.IntVar(&o.Warmup, "warmup", 0, "uncounted TCP connects first, 0 = min(1000, -conns), -1 = none")
		fs.IntVar(&o.Rounds, "connect-rounds", bench.DefaultConnectRounds, "rounds alternating the TCP probe and the handshakes")
		fs.BoolVar(&o.Floor, "floor", false, "also measure a minimal epoll responder (the handshake ceiling)")
	}}
	idleFlags = group{"idle", func(fs *flag.FlagSet, c *cli) {
		o := &c.o.Idle
		fs.Var((*intList)(&o.SampleAt), "sample-at", "connection `counts` to read server RSS at, comma separated (default conns/2,conns)")
		fs.DurationVar(&o.Settle, "settle", bench.DefaultSettle, "pause before each memory sample")
	}}
	rpcFlags = group{"rpc", func(fs *flag.FlagSet, c *cli) {
		o := &c.o.RPC
		fs.IntVar(&o.Payload, "rpc-payload", bench.DefaultPayload, "echo payload bytes")
		fs.IntVar(&o.Depth, "depth", bench.DefaultDepth, "requests in flight per connection")
		fs.Float64Var(&o.Rate, "rpc-rate", 0, "requests/s per connection, 0 = closed loop")
		fs.Int64Var(&o.MaxRequests, "requests", bench.DefaultMaxRequests, "most requests in the run")
	}}
	fanoutFlags = group{"fanout", func(fs *flag.FlagSet, c *cli) {
		publishFlags(fs, c)
		fs.BoolVar(&c.o.Fanout.Ceiling, "ceiling", false, "also measure the write(2) ceiling (its flags below)")
		fs.StringVar(&c.o.Fanout.Protocol, "protocol", bench.ProtocolMesh, "mesh (a channel) or zps (durable events over the zero-pub-sub gateway, -path /zps; the node must allow client publishing without a rate limit)")
	}}
	multiNodeFlags = group{"multi-node", func(fs *flag.FlagSet, c *cli) {
		o := &c.o.MultiNode
		fs.Var((*list)(&c.o.Targets), "addr", "the nodes on one Redis, `host:port`, repeated or comma separated (loopback only)")
		fs.Var((*list)(&o.Single), "single-addr", "one node alone with the same configuration, `host:port`, for the figures beside")
		fs.IntVar(&c.o.ServerPID, "server-pid", 0, "pid of the -addr nodes when they are one process (CPU), 0 = find each listener")
		fs.IntVar(&o.SinglePID, "single-pid", 0, "pid of the -single-addr node, 0 = find the listener")
		fs.StringVar(&o.Redis, "redis", "", "instead of -addr and -single-addr: start -nodes meshfast nodes on this Redis `URL` and one alone, and stop them after (Redis itself is not started)")
		fs.IntVar(&o.Nodes, "nodes", bench.DefaultNodes, "nodes -redis starts")
		fs.StringVar(&o.Meshfast, "meshfast", bench.DefaultMeshfast, "the meshfast `binary` -redis starts: a path, or a name next to this program or on PATH")
		fs.IntVar(&o.NodeLoops, "node-loops", 0, "-loops of each node -redis starts, 0 = one per CPU")
		fs.StringVar(&c.o.Path, "path", bench.DefaultPath, "WebSocket path")
		publishFlags(fs, c)
	}}
	ceilingFlags = group{"ceiling", func(fs *flag.FlagSet, c *cli) {
		o := &c.o.Ceiling
		fs.IntVar(&o.Writers, "writers", bench.DefaultWriters, "writing goroutines, 1 or 2")
		fs.IntVar(&o.Rounds, "rounds", bench.DefaultRounds, "most frames per socket")
		fs.Float64Var(&o.Rate, "ceiling-rate", 0, "rounds/s, 0 = back to back")
	}}
	simFlags = group{"sim", func(fs *flag.FlagSet, c *cli) {
		o := &c.o.Sim
		fs.IntVar(&o.Conns, "sim-conns", bench.DefaultSimConns, "simulated subscribers")
		fs.IntVar(&o.Publishes, "publishes", bench.DefaultSimPublishes, "broadcasts timed")
		fs.IntVar(&o.Loops, "sim-loops", bench.DefaultSimLoops, "simulated event loops")
	}}
)

// scenario is one of bench.Scenarios with its help and its flag groups, its
// own first.
type scenario struct {
	name, about string
	own         []group // shown under the scenario in the overview
	shared      []group // shown once, after every scenario
}

var scenarios = []scenario{
	{bench.ScenarioConnect, "handshakes/s, as a share of plain TCP connects/s in the same run",
		[]group{connectFlags}, []group{serverFlags, clientFlags, sseFlags, svgFlag, runFlags}},
	{bench.ScenarioIdle, "server memory per held connection: the RSS slope between -sample-at counts",
		[]group{idleFlags}, []group{serverFlags, clientFlags, sseFlags, runFlags}},
	{bench.ScenarioRPC, "echo command round trips",
		[]group{rpcFlags}, []group{serverFlags, clientFlags, svgFlag, runFlags}},
	{bench.ScenarioFanout, "one channel, many subscribers: deliveries/s, publish-to-receive latency, loss",
		[]group{fanoutFlags}, []group{payloadFlag, drainFlag, ceilingFlags, serverFlags, clientFlags, sseFlags, svgFlag, runFlags}},
	{bench.ScenarioCeiling, "a bare write(2) of one frame to every socket: the kernel's limit for fanout",
		[]group{ceilingFlags}, []group{payloadFlag, drainFlag, clientFlags, svgFlag, runFlags}},
	{bench.ScenarioSim, "the engine's write path over simulated sockets: CPU ns per subscriber per broadcast",
		[]group{simFlags}, []group{payloadFlag, runFlags}},
	{bench.ScenarioMultiNode, "fanout and rpc across several nodes on one Redis, then against one node alone: each figure beside its single-node one",
		[]group{multiNodeFlags}, []group{payloadFlag, drainFlag, rpcFlags, clientFlags, runFlags}},
}

// publishFlags are the publishing side of fanout and multi-node.
func publishFlags(fs *flag.FlagSet, c *cli) {
	o := &c.o.Fanout
	fs.IntVar(&o.Publishers, "publishers", bench.DefaultPublishers, "publishing connections")
	fs.Float64Var(&o.Rate, "rate", bench.DefaultRate, "publishes/s in all, negative = closed loop")
	fs.IntVar(&o.Messages, "messages", 0, "most publishes, 0 = rate x duration")
	fs.StringVar(&o.Channel, "channel", bench.DefaultChannel, "channel name")
	fs.StringVar(&o.Command, "publish-command", bench.DefaultPublishCommand, "the `command` publishers send with {channel, message}; the server publishes the message and answers")
}

func findScenario(name string) (scenario, bool) {
	for _, sc := range scenarios {
		if sc.name == name {
			return sc, true
		}
	}
	return scenario{}, false
}

// flagSet is sc's flag set, every group registered on c.
func (sc scenario) flagSet(c *cli) *flag.FlagSet {
	fs := flag.NewFlagSet("meshfast-bench "+sc.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, g := range append(append([]group(nil), sc.own...), sc.shared...) {
		g.add(fs, c)
	}
	return fs
}

// printGroup prints g's flags as flag.PrintDefaults does.
func printGroup(w io.Writer, g group) {
	fs := flag.NewFlagSet(g.title, flag.ContinueOnError)
	g.add(fs, new(cli))
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// usage is the overview: every subcommand, every scenario with its own
// flags, then the flags scenarios share.
func usage(w io.Writer) {
	fmt.Fprint(w, `usage: meshfast-bench SCENARIO [flags]             run a load scenario against loopback servers
       meshfast-bench SCENARIO -h                  that scenario's flags, all of them
       meshfast-bench baseline [flags]             serve the goroutine-per-connection baseline
       meshfast-bench targets [flags] REPORT.json...   grade -out reports against meshfast's targets
       meshfast-bench plot [flags] REPORT.json...  draw -out reports' latency percentile curves as SVG

Scenarios and their own flags:
`)
	for _, sc := range scenarios {
		fmt.Fprintf(w, "\n%s: %s\n", sc.name, sc.about)
		for _, g := range sc.own {
			printGroup(w, g)
		}
	}
	fmt.Fprint(w, "\nFlags several scenarios share (meshfast-bench SCENARIO -h says which):\n")
	seen := map[string]bool{}
	for _, sc := range scenarios {
		for _, g := range sc.shared {
			if seen[g.title] || isOwnSomewhere(g) {
				continue
			}
			seen[g.title] = true
			var users []string
			for _, s := range scenarios {
				if s.uses(g) {
					users = append(users, s.name)
				}
			}
			fmt.Fprintf(w, "\n%s (%s):\n", g.title, strings.Join(users, ", "))
			printGroup(w, g)
		}
	}
}

// isOwnSomewhere: the ceiling's flags are the ceiling scenario's own and
// already listed under it.
func isOwnSomewhere(g group) bool {
	for _, sc := range scenarios {
		for _, o := range sc.own {
			if o.title == g.title {
				return true
			}
		}
	}
	return false
}

func (sc scenario) uses(g group) bool {
	for _, x := range append(append([]group(nil), sc.own...), sc.shared...) {
		if x.title == g.title {
			return true
		}
	}
	return false
}

// scenarioUsage is one scenario's help: every flag it takes, by group.
func (sc scenario) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: meshfast-bench %s [flags]\n\n%s\n", sc.name, sc.about)
	for _, g := range append(append([]group(nil), sc.own...), sc.shared...) {
		fmt.Fprintf(w, "\n%s:\n", g.title)
		printGroup(w, g)
	}
}

// parse maps a scenario's arguments onto its options.
func (sc scenario) parse(args []string) (*cli, error) {
	c := &cli{o: bench.Options{Scenario: sc.name}}
	fs := sc.flagSet(c)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, nil
}

func runScenario(ctx context.Context, sc scenario, args []string, stdout, stderr io.Writer) int {
	c, err := sc.parse(args)
	if errors.Is(err, flag.ErrHelp) {
		sc.usage(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "meshfast-bench %s: %v\n(meshfast-bench %s -h lists its flags)\n", sc.name, err, sc.name)
		return 2
	}
	c.o.Stdout = stdout
	if c.cpuprofile != "" {
		f, err := os.Create(c.cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	if _, err := bench.Run(ctx, c.o); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func runBaseline(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o baseline.Options
	fs := flag.NewFlagSet("meshfast-bench baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:9400", "listen address")
	fs.StringVar(&o.Path, "path", baseline.DefaultPath, "WebSocket path")
	fs.IntVar(&o.SendQueue, "send-queue", baseline.DefaultSendQueue, "outbound messages queued per connection")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: meshfast-bench baseline [flags]\n\nA goroutine-per-connection WebSocket server (two goroutines and a send\nqueue per connection) that speaks enough Mesh for every scenario.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, done := parseOrHelp(fs, args, stdout); done {
		return code
	}
	s := baseline.New(o)
	if err := s.Start(); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stderr, "baseline: listening on %s (pid %d)\n", s.Addr(), os.Getpid())
	<-ctx.Done()
	_ = s.Shutdown(context.Background())
	return 0
}

// parseOrHelp parses args; -h prints fs's usage to stdout (exit 0), an error
// goes to fs's output (exit 2).
func parseOrHelp(fs *flag.FlagSet, args []string, stdout io.Writer) (code int, done bool) {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return 0, true
	case err != nil:
		fmt.Fprintf(out, "%s: %v\n", fs.Name(), err)
		fs.Usage()
		return 2, true
	}
	return 0, false
}

// runTargets checks the JSON reports named in args against meshfast's
// published targets.
func runTargets(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("meshfast-bench targets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	strict := fs.Bool("strict", false, "exit 1 when a target is missed (by the median, unless -each)")
	each := fs.Bool("each", false, "one row per report instead of the median of repeated runs")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: meshfast-bench targets [-strict] [-each] REPORT.json...\n\nGrades each figure of the reports against the targets in perf/results.md.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, done := parseOrHelp(fs, args, stdout); done {
		return code
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	reps, err := readReports(fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	res := bench.CheckTargets(reps)
	if !*each {
		res = bench.Summarize(res)
	}
	if err := bench.WriteTargets(stdout, res); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *strict && bench.Missed(res) {
		return 1
	}
	return 0
}

// runPlot draws the latency percentile curves of -out reports as SVG.
func runPlot(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("meshfast-bench plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the SVG to this `file` (default: standard output)")
	metric := fs.String("metric", "", "the latency histogram to draw (delivery, rtt, handshake, tcp_connect, sweep; default: the scenario's own)")
	title := fs.String("title", "", "replace the title")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: meshfast-bench plot [flags] REPORT.json...\n\nDraws the latency percentile curves of every run in the reports (for a fanout\nreport: meshfast, the baseline and the write(2) ceiling of the same run), on a\nlog scale of 1/(1-q) as HdrHistogram's plots are. Runs of several reports are\nlabelled with their file names.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, done := parseOrHelp(fs, args, stdout); done {
		return code
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	reps, err := readReports(fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var p bench.Plot
	for i, rep := range reps {
		rp, err := bench.ReportPlot(rep, *metric)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", fs.Arg(i), err)
			return 1
		}
		if len(reps) > 1 {
			for j := range rp.Curves {
				rp.Curves[j].Label += " (" + fs.Arg(i) + ")"
			}
		}
		if i == 0 {
			p = rp
			continue
		}
		p.Curves = append(p.Curves, rp.Curves...)
	}
	if *title != "" {
		p.Title = *title
	}
	if *out == "" {
		err = p.WriteSVG(stdout)
	} else {
		var f *os.File
		if f, err = os.Create(*out); err == nil {
			err = errors.Join(p.WriteSVG(f), f.Close())
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func readReports(paths []string) ([]*bench.Report, error) {
	var reps []*bench.Report
	for _, path := range paths {
		rep, err := bench.ReadReport(path)
		if err != nil {
			return nil, err
		}
		reps = append(reps, rep)
	}
	return reps, nil
}

// list is a comma-separated string list flag.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }
func (l *list) Set(s string) error {
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// intList is a comma-separated integer list flag.
type intList []int

func (l *intList) String() string { return fmt.Sprint(*l) }
func (l *intList) Set(s string) error {
	for v := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return err
		}
		*l = append(*l, n)
	}
	return nil
}
