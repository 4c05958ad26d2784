package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"time"
)

// Run executes the scenario o describes, prints progress and the final
// table to o.Stdout, writes o.Out and o.SVG when set, and returns the
// report. Every phase is bounded by o.Duration or o.Timeout, so Run ends by
// itself.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	rep := newReport(o)
	add := func(r *RunResult, err error) error {
		if err != nil {
			return err
		}
		rep.Runs = append(rep.Runs, r)
		return nil
	}
	var err error
	switch o.Scenario {
	case ScenarioSim:
		err = add(runSim(o))
	case ScenarioMultiNode:
		var runs []*RunResult
		runs, err = runMultiNode(ctx, o)
		rep.Runs = append(rep.Runs, runs...)
	case ScenarioCeiling:
		err = add(runCeiling(ctx, o, "ceiling"))
	default:
		err = add(runScenario(ctx, o, o.Label, o.Targets, o.ServerPID))
		if err == nil && len(o.BaselineTargets) > 0 {
			err = add(runScenario(ctx, o, o.BaselineLabel, o.BaselineTargets, o.BaselinePID))
		}
		if err == nil && o.Scenario == ScenarioFanout && o.Fanout.Ceiling {
			err = add(runCeiling(ctx, o, "ceiling"))
		}
		if err == nil && o.Scenario == ScenarioConnect && o.Connect.Floor {
			err = add(runFloor(ctx, o))
		}
	}
	if err != nil {
		return rep, err
	}
	rep.computeRatios()
	if err := rep.WriteTable(o.Stdout); err != nil {
		return rep, err
	}
	if o.Out != "" {
		if err := rep.WriteJSON(o.Out); err != nil {
			return rep, err
		}
	}
	if o.SVG != "" {
		if err := rep.WritePlot(o.SVG); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func runScenario(ctx context.Context, o Options, label string, targets []string, pid int) (*RunResult, error) {
	switch o.Scenario {
	case ScenarioConnect:
		return runConnect(ctx, o, label, targets, pid)
	case ScenarioIdle:
		return runIdle(ctx, o, label, targets, pid)
	case ScenarioRPC:
		return runRPC(ctx, o, label, targets, pid)
	default:
		return runFanout(ctx, o, label, targets, pid)
	}
}

// share splits total over n parts as evenly as possible.
func share(total, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = total / n
		if i < total%n {
			s[i]++
		}
	}
	return s
}

// sourceIP is the k-th client source address: 127.0.0.2 upward.
func sourceIP(k int) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], 127<<24+uint32(firstSourceIP+k))
	return net.IP(b[:]).String()
}

// plans splits the run over o.Workers: connections, source addresses,
// publishers and request budgets.
func (o Options) plans(targets []string, r role) []plan {
	ps := make([]plan, o.Workers)
	progress := max(o.Progress, 0)
	for i := range ps {
		p := plan{Index: i, Role: r, Targets: targets, Path: o.Path, Dialers: o.Dialers,
			DialConcurrency: o.DialConcurrency, ClientLoops: o.ClientLoops, Progress: progress,
			Payload: o.Fanout.Payload, Channel: o.Fanout.Channel, Command: o.Fanout.Command, Depth: 1, Protocol: o.Fanout.Protocol,
			SSE: o.SSE, SSEPath: o.SSEPath}
		for k := range o.SourceIPs {
			p.SourceIPs = append(p.SourceIPs, sourceIP(i*o.SourceIPs+k))
		}
		switch r {
		case roleRPC:
			p.Payload, p.Depth, p.Rate = o.RPC.Payload, o.RPC.Depth, o.RPC.Rate
			p.ReqBudget = uint64((o.RPC.MaxRequests + int64(o.Conns) - 1) / int64(max(o.Conns, 1)))
		case roleSub:
			p.TotalPubs = uint64(o.Fanout.Publishers)
			if o.Fanout.Rate > 0 {
				p.Rate = o.Fanout.Rate / float64(o.Fanout.Publishers)
			}
		}
		ps[i] = p
	}
	if r == roleSub {
		budgets := share(o.Fanout.Messages, o.Fanout.Publishers)
		for g := range o.Fanout.Publishers {
			p := &ps[g%o.Workers]
			p.Pubs = append(p.Pubs, uint64(g))
			p.PubBudgets = append(p.PubBudgets, uint64(budgets[g]))
		}
	}
	return ps
}

// openCmd asks each worker for its share of n connections (plus its
// publishers, which it opens first).
func openCmd(o Options, ps []plan, n int) func(int) command {
	s := share(n, len(ps))
	return func(i int) command {
		return command{Op: "open", N: s[i] + len(ps[i].Pubs), Duration: o.Timeout}
	}
}

var (
	showOpen   = showCounter{c: cReady, name: "ready"}
	showFailed = showCounter{c: cHandshakeErrors, name: "failed"}
	showClosed = showCounter{c: cClosed, name: "closed"}
)

func runConnect(ctx context.Context, o Options, label string, targets []string, pid int) (*RunResult, error) {
	ps := o.plans(targets, roleHold)
	f, err := startFleet(ctx, o, label, ps, []showCounter{showOpen, {c: cReady, rate: true, name: "handshakes"},
		showFailed, {c: cTCP, rate: true, name: "tcp"}})
	if err != nil {
		return nil, err
	}
	defer f.abort()
	r := &RunResult{Label: label, Targets: targets, Workers: o.Workers}
	cpu := newCPUMeter(pid, targets)
	if o.Connect.Warmup > 0 {
		n := share(o.Connect.Warmup, o.Workers)
		if _, err := f.phase(ctx, o.Timeout, func(i int) command {
			return command{Op: "warm", N: n[i], Addr: targets[i%len(targets)], Duration: o.Timeout}
		}); err != nil {
			return nil, err
		}
	}
	probe := o.Connect.TCPProbe != ProbeOff
	addrs := targets
	if o.Connect.TCPProbe == ProbeListener {
		ln, err := listenAcceptOnly()
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		addrs = []string{ln.Addr().String()}
	}
	// Each round: its share of the probe, then its share of the handshakes
	// (Rounds). Counts are cumulative; spans, CPU and segments add up.
	tcpShare, connShare := share(o.Connect.TCPConns, o.Workers), share(o.Conns, o.Workers)
	hs, tcp := newTally(), newTally()
	queued := 0 // most connections left in the accept queues when a probe phase ended
	settle := func() int64 {
		at, q := acceptsSettled(addrs, o.Timeout)
		queued = max(queued, q)
		return at
	}
	for k := range o.Connect.Rounds {
		if probe {
			if err := tcp.measure(ctx, f, o, cpu, func(i int) command {
				return command{Op: "tcp", N: share(tcpShare[i], o.Connect.Rounds)[k], Addr: addrs[i%len(addrs)], Duration: o.Timeout}
			}, settle); err != nil {
				return nil, err
			}
		}
		if err := hs.measure(ctx, f, o, cpu, func(i int) command {
			return command{Op: "open", N: upTo(connShare[i], o.Connect.Rounds, k), Duration: o.Timeout}
		}, nil); err != nil {
			return nil, err
		}
	}
	ready, tcpN := sumCounts(hs.last, cReady), sumCounts(tcp.last, cTCP)
	hsRate, tcpRate := perSecond(ready, hs.span), perSecond(tcpN, tcp.span)
	results, err := f.close(ctx)
	if err != nil {
		return nil, err
	}
	c, err := r.collect(results)
	if err != nil {
		return nil, err
	}
	r.add("connections", float64(ready), "")
	r.add("failed", float64(c[cHandshakeErrors]+c[cDialErrors]), "")
	r.add("handshakes/s", hsRate, "1/s")
	if tcpRate > 0 {
		r.add("tcp connects/s", tcpRate, "1/s")
		r.add("handshakes/s of tcp connects/s", 100*hsRate/tcpRate, "%")
		r.add("tcp probe accept queue at phase end", float64(queued), "")
	}
	r.addCPU("server", hs.server, hs.wall, hs.serverOK, ready, "handshake", "µs")
	// The listener probe's connects are not the server's work.
	r.addCPU("server", tcp.server, 0, tcp.serverOK && o.Connect.TCPProbe == ProbeServer, tcpN, "tcp connect", "µs")
	r.addCPU("client", hs.client, 0, hs.clientOK, ready, "handshake", "µs")
	r.addCPU("client", tcp.client, 0, tcp.clientOK, tcpN, "tcp connect", "µs")
	// Segments on the wire, both ends (loopback only): a handshake's cost
	// next to a bare connect's is mostly this count on a shared host.
	if hs.segsOK && ready > 0 {
		r.add("tcp segments per handshake", float64(hs.segs)/float64(ready), "")
	}
	if tcp.segsOK && tcpN > 0 {
		r.add("tcp segments per tcp connect", float64(tcp.segs)/float64(tcpN), "")
	}
	r.addLatency("handshake")
	r.addLatency("tcp_connect")
	return r, nil
}

// tally adds up one kind of connect phase over the rounds of a run.
type tally struct {
	span, server, wall, client time.Duration
	segs                       uint64
	serverOK, clientOK, segsOK bool
	last                       []event // the latest phase's: counts are cumulative
}

func newTally() tally { return tally{serverOK: true, clientOK: true, segsOK: true} }

// measure runs one phase and adds its span, CPU on both sides and segments.
// settle, if not nil, runs when the workers are done and returns when the
// server finished the phase's work (UnixNano, 0 if it already had): the
// phase lasts until then.
func (t *tally) measure(ctx context.Context, f *fleet, o Options, cpu *cpuMeter, cmd func(int) command, settle func() int64) error {
	cpu.begin()
	seg0, ok0 := tcpOutSegs()
	evs, err := f.phase(ctx, o.Timeout, cmd)
	if err != nil {
		return err
	}
	var settled int64
	if settle != nil {
		settled = settle()
	}
	seg1, ok1 := tcpOutSegs()
	c, w, ok := cpu.end()
	cc, cok := clientCPU(o, evs)
	t.span += spanUntil(evs, settled)
	t.server += c
	t.wall += w
	t.client += cc
	t.segs += seg1 - seg0
	t.serverOK, t.clientOK, t.segsOK = t.serverOK && ok, t.clientOK && cok, t.segsOK && ok0 && ok1
	t.last = evs
	return nil
}

// acceptsSettled waits, after a TCP probe phase, until the servers on addrs
// have accepted every connection the kernel completed for them, up to
// timeout. It returns when that happened (UnixNano; 0 if nothing was queued
// when the phase ended, or no listener is visible) and how many were queued
// then. The probe's client counts a connect when the kernel completes it,
// while the server may still be behind by a full accept queue: those accepts
// are the probe's work, and counting them on the server side keeps them out
// of the handshakes measured next.
func acceptsSettled(addrs []string, timeout time.Duration) (at int64, queued int) {
	var ports []int
	for _, a := range addrs {
		if _, ps, err := net.SplitHostPort(a); err == nil {
			if p, err := strconv.Atoi(ps); err == nil && !slices.Contains(ports, p) {
				ports = append(ports, p)
			}
		}
	}
	pending := func() int {
		n := 0
		for _, p := range ports {
			k, _ := acceptQueue(p)
			n += k
		}
		return n
	}
	if queued = pending(); queued == 0 {
		return 0, 0
	}
	deadline := time.Now().Add(timeout)
	for pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Microsecond)
	}
	return time.Now().UnixNano(), queued
}

// upTo is the cumulative share of n after round k of rounds (0-based).
func upTo(n, rounds, k int) int {
	t := 0
	for _, v := range share(n, rounds)[:k+1] {
		t += v
	}
	return t
}

// runFloor runs the connect scenario against the floor responder, served
// from this process.
func runFloor(ctx context.Context, o Options) (*RunResult, error) {
	s, err := startFloorServer(runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, err
	}
	defer s.close()
	return runConnect(ctx, o, "floor", []string{s.addr()}, os.Getpid())
}

// listenAcceptOnly starts a loopback listener that accepts and closes.
func listenAcceptOnly() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	return ln, nil
}

func runIdle(ctx context.Context, o Options, label string, targets []string, pid int) (*RunResult, error) {
	pids, err := serverPIDs(pid, targets)
	if err != nil {
		return nil, fmt.Errorf("bench: idle needs the server's pid (set Options.ServerPID): %w", err)
	}
	ps := o.plans(targets, roleHold)
	f, err := startFleet(ctx, o, label, ps, []showCounter{showOpen, showFailed, showClosed, {c: cLiveness, name: "liveness"}})
	if err != nil {
		return nil, err
	}
	defer f.abort()
	r := &RunResult{Label: label, Targets: targets, Workers: o.Workers}
	sample := func() error {
		if err := f.hold(ctx, o.Idle.Settle); err != nil {
			return err
		}
		t := f.total()
		s, err := sampleMemory(pids, targets, int64(t[cReady])-int64(t[cClosed]))
		if err != nil {
			return err
		}
		r.Memory = append(r.Memory, s)
		fmt.Fprintf(o.Stdout, "%s: %d connections, server RSS %.1f MiB\n", label, s.Conns, float64(s.RSS)/(1<<20))
		return nil
	}
	if err := sample(); err != nil {
		return nil, err
	}
	for _, k := range o.Idle.SampleAt {
		if _, err := f.phase(ctx, o.Timeout, openCmd(o, ps, k)); err != nil {
			return nil, err
		}
		if err := sample(); err != nil {
			return nil, err
		}
	}
	held := f.total()
	cpu := newCPUMeter(pid, targets)
	cpu.begin()
	if err := f.hold(ctx, o.Duration); err != nil {
		return nil, err
	}
	holdCPU, holdWall, holdOK := cpu.end()
	if err := sample(); err != nil {
		return nil, err
	}
	results, err := f.close(ctx)
	if err != nil {
		return nil, err
	}
	c, err := r.collect(results)
	if err != nil {
		return nil, err
	}
	first, last, end := r.Memory[1], r.Memory[len(r.Memory)-2], r.Memory[len(r.Memory)-1]
	r.add("connections", float64(held[cReady]-held[cClosed]), "")
	if held[cSSEReady] > 0 {
		r.add("of them SSE streams", float64(held[cSSEReady]), "")
	}
	r.add("failed", float64(c[cHandshakeErrors]+c[cDialErrors]), "")
	r.add("closed while held", float64(c[cClosed]-held[cClosed]), "")
	r.add("rss at first sample", float64(first.RSS)/(1<<20), "MiB")
	r.add("rss at last sample", float64(last.RSS)/(1<<20), "MiB")
	r.add("rss after hold", float64(end.RSS)/(1<<20), "MiB")
	if dn := last.Conns - first.Conns; dn > 0 {
		r.add("rss per extra connection", (float64(last.RSS)-float64(first.RSS))/float64(dn), "B")
		if first.Heap > 0 && last.Heap > 0 {
			r.add("heap per extra connection", (float64(last.Heap)-float64(first.Heap))/float64(dn), "B")
		}
	}
	if last.Conns > 0 {
		r.add("rss over idle base per connection", (float64(last.RSS)-float64(r.Memory[0].RSS))/float64(last.Conns), "B")
	}
	if holdOK && holdWall > 0 {
		r.add("server cpu while held", 100*holdCPU.Seconds()/holdWall.Seconds(), "% of a core")
	}
	r.addLatency("handshake")
	return r, nil
}

func runRPC(ctx context.Context, o Options, label string, targets []string, pid int) (*RunResult, error) {
	ps := o.plans(targets, roleRPC)
	f, err := startFleet(ctx, o, label, ps, []showCounter{showOpen, {c: cReplies, rate: true, name: "replies"}, showClosed})
	if err != nil {
		return nil, err
	}
	defer f.abort()
	r := &RunResult{Label: label, Targets: targets, Workers: o.Workers}
	open, err := f.phase(ctx, o.Timeout, openCmd(o, ps, o.Conns))
	if err != nil {
		return nil, err
	}
	cpu := newCPUMeter(pid, targets)
	cpu.begin()
	evs, err := f.phase(ctx, o.Duration+defaultRunGrace, func(int) command {
		return command{Op: "run", Duration: o.Duration}
	})
	if err != nil {
		return nil, err
	}
	serverCPU, wall, serverOK := cpu.end()
	results, err := f.close(ctx)
	if err != nil {
		return nil, err
	}
	c, err := r.collect(results)
	if err != nil {
		return nil, err
	}
	r.add("clients", float64(sumCounts(open, cReady)), "")
	r.add("replies", float64(c[cReplies]), "")
	r.add("requests/s", perSecond(sumCounts(evs, cReplies), span(evs)), "1/s")
	r.add("unanswered", float64(c[cRequests]-c[cReplies]), "")
	r.add("closed", float64(c[cClosed]), "")
	replies := sumCounts(evs, cReplies)
	r.addCPU("server", serverCPU, wall, serverOK, replies, "request", "µs")
	cc, ok := clientCPU(o, evs)
	r.addCPU("client", cc, 0, ok, replies, "request", "µs")
	r.addLatency("rtt")
	return r, nil
}

func runFanout(ctx context.Context, o Options, label string, targets []string, pid int) (*RunResult, error) {
	if o.Fanout.Protocol == ProtocolZPS {
		o.Fanout.Channel = zpsRoom(o.Fanout.Channel)
	}
	ps := o.plans(targets, roleSub)
	f, err := startFleet(ctx, o, label, ps, []showCounter{showOpen, {c: cRequests, rate: true, name: "publishes"},
		{c: cDeliveries, rate: true, name: "deliveries"}, showClosed, {c: cSlowCloses, name: "slow"}})
	if err != nil {
		return nil, err
	}
	defer f.abort()
	r := &RunResult{Label: label, Targets: targets, Workers: o.Workers}
	open, err := f.phase(ctx, o.Timeout, openCmd(o, ps, o.Conns))
	if err != nil {
		return nil, err
	}
	subs := sumCounts(open, cSubsReady)
	w0, f0, statsBefore := serverWriteStats(targets)
	cpu := newCPUMeter(pid, targets)
	cpu.begin()
	side := &cpuMeter{pids: o.sidePIDs}
	side.begin()
	evs, err := f.phase(ctx, o.Duration+defaultRunGrace, func(int) command {
		return command{Op: "run", Duration: o.Duration}
	})
	if err != nil {
		return nil, err
	}
	published := sumCounts(evs, cRequests)
	drain, err := f.phase(ctx, o.Fanout.Drain, func(int) command {
		return command{Op: "drain", Published: published, Duration: o.Fanout.Drain}
	})
	if err != nil {
		return nil, err
	}
	serverCPU, wall, serverOK := cpu.end()
	sideCPU, sideWall, sideOK := side.end()
	w1, f1, statsAfter := serverWriteStats(targets)
	results, err := f.close(ctx)
	if err != nil {
		return nil, err
	}
	c, err := r.collect(results)
	if err != nil {
		return nil, err
	}
	r.add("subscribers", float64(subs), "")
	sseSubs := sumCounts(open, cSSEReady)
	if sseSubs > 0 {
		r.add("of them SSE streams", float64(sseSubs), "")
	}
	r.add("publishers", float64(o.Fanout.Publishers), "")
	r.add("published", float64(published), "")
	r.add("publishes/s", perSecond(published, span(evs)), "1/s")
	deliveryStats(r, c, subs*published, firstStart(evs), drain)
	if sseSubs > 0 {
		sseStats(r, c, sseSubs, published, firstStart(evs), drain)
	}
	r.add("closed", float64(c[cClosed]), "")
	r.add("slow consumer closes", float64(c[cSlowCloses]), "")
	if statsBefore && statsAfter && w1 > w0 {
		// Includes the replies to publishes and liveness pushes of the window.
		r.add("server frames per write", (f1-f0)/(w1-w0), "")
	}
	r.addCPU("server", serverCPU, wall, serverOK, c[cUnique], "delivery", "ns")
	if sideOK && c[cUnique] > 0 {
		r.add("redis cpu per delivery", float64(sideCPU.Nanoseconds())/float64(c[cUnique]), "ns")
		r.add("redis cpu", 100*sideCPU.Seconds()/sideWall.Seconds(), "% of a core")
	}
	cc, ok := clientCPU(o, append(evs, drain...))
	r.addCPU("client", cc, 0, ok, c[cUnique], "delivery", "ns")
	r.addLatency("delivery")
	r.addLatency("rtt")
	return r, nil
}

// deliveryStats adds the delivery rows shared by fanout and the ceiling.
func deliveryStats(r *RunResult, c counts, expected uint64, start int64, drain []event) {
	var last int64
	for _, e := range drain {
		last = max(last, e.End)
	}
	unique := c[cUnique]
	lost := uint64(0)
	if expected > unique {
		lost = expected - unique
	}
	r.add("expected deliveries", float64(expected), "")
	r.add("delivered", float64(unique), "")
	r.add("lost", float64(lost), "")
	if expected > 0 {
		r.add("loss", 100*float64(lost)/float64(expected), "%")
	}
	r.add("duplicates", float64(c[cDups]), "")
	// Arrivals further behind the newest than the reorder window cannot be
	// told from duplicates, so they stay in "lost"; shown so that a lagging
	// publisher is not mistaken for a server that drops messages.
	r.add("late (behind reorder window)", float64(c[cStale]), "")
	if last > start {
		r.add("deliveries/s", perSecond(unique, time.Duration(last-start)), "1/s")
	}
	if c[cSubReads] > 0 {
		r.add("client frames per read", float64(c[cSubFrames])/float64(c[cSubReads]), "")
	}
}

func firstStart(evs []event) int64 {
	var lo int64
	for i, e := range evs {
		if i == 0 || e.Start < lo {
			lo = e.Start
		}
	}
	return lo
}
