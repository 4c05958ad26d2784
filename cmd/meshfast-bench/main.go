// Command meshfast-bench is meshfast's load generator. It maps its
// subcommand and flags to bench.Options (or baseline.Options) and nothing
// more; see package bench.
//
//	meshfast-bench connect -addr 127.0.0.1:9300 -conns 19000 -workers 2 -floor
//	meshfast-bench idle    -addr 127.0.0.1:9300 -conns 19000 -sample-at 10000,19000
//	meshfast-bench rpc     -addr 127.0.0.1:9300 -baseline-addr 127.0.0.1:9400 -conns 100
//	meshfast-bench fanout  -addr 127.0.0.1:9300 -conns 10000 -rate 200 -ceiling
//	meshfast-bench ceiling -conns 10000
//	meshfast-bench sim     -sim-conns 1000000
//	meshfast-bench baseline -addr 127.0.0.1:9400
package main

import (
	"context"
	"flag"
	"fmt"
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
	if len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "-") {
		fmt.Fprintf(os.Stderr, "usage: meshfast-bench {%s|baseline|targets} [flags]\n", strings.Join(bench.Scenarios, "|"))
		os.Exit(2)
	}
	sub, args := os.Args[1], os.Args[2:]
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch sub {
	case "baseline":
		os.Exit(runBaseline(ctx, args))
	case "targets":
		os.Exit(runTargets(args))
	}
	o := bench.Options{Scenario: sub}
	fs := flag.NewFlagSet("meshfast-bench "+sub, flag.ExitOnError)
	fs.Var((*list)(&o.Targets), "addr", "target host:port list, comma separated (loopback only)")
	fs.StringVar(&o.Label, "label", "meshfast", "name of the -addr run in reports")
	fs.Var((*list)(&o.BaselineTargets), "baseline-addr", "also run against these servers and compare")
	fs.StringVar(&o.BaselineLabel, "baseline-label", bench.DefaultBaselineLabel, "name of the -baseline-addr run")
	fs.StringVar(&o.Path, "path", bench.DefaultPath, "WebSocket path")
	fs.IntVar(&o.Conns, "conns", bench.DefaultConns, "client connections (subscribers for fanout and ceiling)")
	fs.IntVar(&o.Workers, "workers", 0, "worker processes, 0 = conns/conns-per-worker rounded up")
	fs.IntVar(&o.ConnsPerWorker, "conns-per-worker", bench.DefaultConnsPerWorker, "connections per automatic worker")
	fs.BoolVar(&o.InProcess, "in-process", false, "run workers as goroutines of this process")
	fs.IntVar(&o.SourceIPs, "source-ips", bench.DefaultSourceIPs, "source addresses per worker (127.0.0.2 up)")
	fs.IntVar(&o.Dialers, "dialers", bench.DefaultDialers, "dialing goroutines per worker")
	fs.IntVar(&o.DialConcurrency, "dial-concurrency", bench.DefaultDialConcurrency, "handshakes in flight per worker")
	fs.IntVar(&o.ClientLoops, "client-loops", bench.DefaultClientLoops, "client event loops per worker")
	fs.DurationVar(&o.Duration, "duration", bench.DefaultDuration, "length of the measured phase")
	fs.DurationVar(&o.Timeout, "timeout", bench.DefaultTimeout, "bound of every other phase")
	fs.DurationVar(&o.Progress, "progress", bench.DefaultProgress, "progress line interval, negative = none")
	fs.StringVar(&o.Out, "out", "", "write the JSON report here")
	fs.StringVar(&o.Connect.TCPProbe, "tcp-probe", bench.ProbeServer, "connect: plain TCP probe: server, listener or off")
	fs.IntVar(&o.Connect.TCPConns, "tcp-conns", 0, "connect: probe connects, 0 = -conns")
	fs.IntVar(&o.Connect.Warmup, "warmup", 0, "connect: uncounted TCP connects first, 0 = min(1000, -conns), -1 = none")
	fs.IntVar(&o.Connect.Rounds, "connect-rounds", bench.DefaultConnectRounds, "connect: rounds alternating the TCP probe and the handshakes")
	fs.Var((*intList)(&o.Idle.SampleAt), "sample-at", "idle: connection counts to read server RSS at (default conns/2,conns)")
	fs.IntVar(&o.ServerPID, "server-pid", 0, "pid of the -addr server (memory, CPU), 0 = find the listener")
	fs.IntVar(&o.BaselinePID, "baseline-pid", 0, "pid of the -baseline-addr server, 0 = find the listener")
	fs.DurationVar(&o.Idle.Settle, "settle", bench.DefaultSettle, "idle: pause before each memory sample")
	fs.IntVar(&o.RPC.Payload, "rpc-payload", bench.DefaultPayload, "rpc: echo payload bytes")
	fs.IntVar(&o.RPC.Depth, "depth", bench.DefaultDepth, "rpc: requests in flight per connection")
	fs.Float64Var(&o.RPC.Rate, "rpc-rate", 0, "rpc: requests/s per connection, 0 = closed loop")
	fs.Int64Var(&o.RPC.MaxRequests, "requests", bench.DefaultMaxRequests, "rpc: most requests in the run")
	fs.IntVar(&o.Fanout.Publishers, "publishers", bench.DefaultPublishers, "fanout: publishing connections")
	fs.Float64Var(&o.Fanout.Rate, "rate", bench.DefaultRate, "fanout: publishes/s in all, negative = closed loop")
	fs.IntVar(&o.Fanout.Messages, "messages", 0, "fanout: most publishes, 0 = rate x duration")
	fs.IntVar(&o.Fanout.Payload, "payload", bench.DefaultPayload, "fanout, ceiling, sim: message bytes")
	fs.StringVar(&o.Fanout.Channel, "channel", bench.DefaultChannel, "fanout: channel name")
	fs.DurationVar(&o.Fanout.Drain, "drain", bench.DefaultDrain, "fanout, ceiling: wait for deliveries after the last publish")
	fs.BoolVar(&o.Fanout.Ceiling, "ceiling", false, "fanout: also measure the write(2) ceiling")
	fs.BoolVar(&o.Connect.Floor, "floor", false, "connect: also measure a minimal epoll responder (the handshake ceiling)")
	fs.IntVar(&o.Ceiling.Writers, "writers", bench.DefaultWriters, "ceiling: writing goroutines, 1 or 2")
	fs.IntVar(&o.Ceiling.Rounds, "rounds", bench.DefaultRounds, "ceiling: most frames per socket")
	fs.Float64Var(&o.Ceiling.Rate, "ceiling-rate", 0, "ceiling: rounds/s, 0 = back to back")
	fs.IntVar(&o.Sim.Conns, "sim-conns", bench.DefaultSimConns, "sim: simulated subscribers")
	fs.IntVar(&o.Sim.Publishes, "publishes", bench.DefaultSimPublishes, "sim: broadcasts timed")
	fs.IntVar(&o.Sim.Loops, "sim-loops", bench.DefaultSimLoops, "sim: simulated event loops")
	cpuprofile := fs.String("cpuprofile", "", "write this process's CPU profile here (sim, ceiling: the measured side runs in this process)")
	_ = fs.Parse(args)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	if _, err := bench.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func runBaseline(ctx context.Context, args []string) int {
	var o baseline.Options
	fs := flag.NewFlagSet("meshfast-bench baseline", flag.ExitOnError)
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:9400", "listen address")
	fs.StringVar(&o.Path, "path", baseline.DefaultPath, "WebSocket path")
	fs.IntVar(&o.SendQueue, "send-queue", baseline.DefaultSendQueue, "outbound messages queued per connection")
	_ = fs.Parse(args)
	s := baseline.New(o)
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "baseline: listening on %s (pid %d)\n", s.Addr(), os.Getpid())
	<-ctx.Done()
	_ = s.Shutdown(context.Background())
	return 0
}

// runTargets checks the JSON reports named in args against meshfast's
// published targets.
func runTargets(args []string) int {
	fs := flag.NewFlagSet("meshfast-bench targets", flag.ExitOnError)
	strict := fs.Bool("strict", false, "exit 1 when a target is missed (by the median, unless -each)")
	each := fs.Bool("each", false, "one row per report instead of the median of repeated runs")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: meshfast-bench targets [-strict] [-each] REPORT.json...")
		fs.PrintDefaults()
	}
	_ = fs.Parse(args)
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	var reps []*bench.Report
	for _, path := range fs.Args() {
		rep, err := bench.ReadReport(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		reps = append(reps, rep)
	}
	res := bench.CheckTargets(reps)
	if !*each {
		res = bench.Summarize(res)
	}
	if err := bench.WriteTargets(os.Stdout, res); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if *strict && bench.Missed(res) {
		return 1
	}
	return 0
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
