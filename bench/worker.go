package bench

import (
	"bytes"
	cryptorand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/meshfast/meshfast/perf"
	"github.com/meshfast/meshfast/protocol"
)

// Commands the load generator sends.
const (
	cmdEcho    = "echo"
	cmdPublish = "bench/publish"
)

// WorkerEnv, set in a process's environment, makes it a worker: the
// coordinator re-executes its own binary with it and talks JSON lines over
// the child's stdin and stdout.
const WorkerEnv = "MESHFAST_BENCH_WORKER"

// IsWorker reports whether this process was started as a worker. A main
// (or TestMain) calls it first and, if true, runs ServeWorker and exits.
func IsWorker() bool { return os.Getenv(WorkerEnv) != "" }

// plan is a worker's share of a run, sent once with the init command.
type plan struct {
	Index           int           `json:"index"`
	Role            role          `json:"role"`
	Targets         []string      `json:"targets"`
	Path            string        `json:"path"`
	SourceIPs       []string      `json:"source_ips"`
	Dialers         int           `json:"dialers"`
	DialConcurrency int           `json:"dial_concurrency"`
	ClientLoops     int           `json:"client_loops"`
	Pubs            []uint64      `json:"pubs,omitempty"`        // global indexes of this worker's publishers
	PubBudgets      []uint64      `json:"pub_budgets,omitempty"` // publishes each may send
	TotalPubs       uint64        `json:"total_pubs,omitempty"`
	ReqBudget       uint64        `json:"req_budget,omitempty"` // echo requests per rpc connection
	Rate            float64       `json:"rate,omitempty"`       // requests/s per requester; 0 closed loop
	Depth           int           `json:"depth,omitempty"`
	Payload         int           `json:"payload,omitempty"`
	Channel         string        `json:"channel,omitempty"`
	Command         string        `json:"command,omitempty"`  // publish command; "" is cmdPublish
	Protocol        string        `json:"protocol,omitempty"` // "" is Mesh; ProtocolZPS
	SSE             float64       `json:"sse,omitempty"`      // share of held or subscribed connections that are streams
	SSEPath         string        `json:"sse_path,omitempty"`
	Progress        time.Duration `json:"progress"`
}

// command is one coordinator → worker line.
type command struct {
	Op        string        `json:"op"` // init, warm, tcp, open, run, drain, close
	Plan      *plan         `json:"plan,omitempty"`
	N         int           `json:"n,omitempty"`    // tcp: connects; open: connections to have in all
	Addr      string        `json:"addr,omitempty"` // tcp: where to connect
	Duration  time.Duration `json:"duration,omitempty"`
	Published uint64        `json:"published,omitempty"` // drain: publishes in the run
}

// event is one worker → coordinator line.
type event struct {
	Ev     string                     `json:"ev"` // progress, done, result, error
	Counts counts                     `json:"counts"`
	Start  int64                      `json:"start,omitempty"`  // phase start, unix ns
	End    int64                      `json:"end,omitempty"`    // last useful event of the phase
	CPU    time.Duration              `json:"cpu_ns,omitempty"` // this process's CPU time during the phase
	Hists  map[string]*perf.Histogram `json:"hists,omitempty"`
	Err    string                     `json:"err,omitempty"`
}

// eventWriter serializes events from the command loop and the progress ticker.
type eventWriter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (e *eventWriter) send(ev event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.enc.Encode(ev)
}

// ServeWorker runs a worker: it reads commands from r, one JSON object per
// line, and answers on w until the close command or EOF. It is what a
// worker process runs on its stdin and stdout.
func ServeWorker(r io.Reader, w io.Writer) error {
	dec := json.NewDecoder(r)
	out := &eventWriter{enc: json.NewEncoder(w)}
	var wk *worker
	defer func() {
		if wk != nil {
			wk.stop()
		}
	}()
	for {
		var cmd command
		if err := dec.Decode(&cmd); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("bench: worker: %w", err)
		}
		if cmd.Op != "init" && wk == nil {
			return fmt.Errorf("bench: worker: %q before init", cmd.Op)
		}
		var ev event
		cpu0 := processCPU()
		switch cmd.Op {
		case "init":
			var err error
			if wk, err = newWorker(cmd.Plan, out); err != nil {
				_ = out.send(event{Ev: "error", Err: err.Error()})
				return err
			}
			ev = event{Ev: "done"}
		case "warm":
			ev = wk.tcpProbe(cmd.Addr, cmd.N, cmd.Duration, false)
		case "tcp":
			ev = wk.tcpProbe(cmd.Addr, cmd.N, cmd.Duration, true)
		case "open":
			ev = wk.open(cmd.N, cmd.Duration)
		case "run":
			ev = wk.run(cmd.Duration)
		case "drain":
			ev = wk.drain(cmd.Published, cmd.Duration)
		case "close":
			ev = wk.stop()
			wk = nil
			return out.send(ev)
		default:
			ev = event{Ev: "error", Err: "unknown op " + cmd.Op}
		}
		ev.Counts = wk.counts.snapshot()
		ev.CPU = processCPU() - cpu0
		if err := out.send(ev); err != nil {
			return err
		}
	}
}

// worker holds one process's share of the client connections on its
// event loops. Its methods run on the command goroutine; connection state
// lives on the loops; counters are atomics.
type worker struct {
	plan         plan
	out          *eventWriter
	loops        []*cloop
	table        connTable             // descriptor → connection
	targets      []*unix.SockaddrInet4 // parsed plan.Targets
	sources      []*unix.SockaddrInet4 // parsed plan.SourceIPs, port 0
	counts       liveCounts
	hist         [numHists]*perf.Tracker
	upgrades     [][]byte // upgrade request per target
	sseGets      [][]byte // SSE stream request per target (sse.go)
	accept       string
	key          uint32
	subFrame     []byte
	pongFrame    []byte // Mesh pong
	latencyFrame []byte // Mesh latency:response
	pubPrefix    []byte
	pubCommand   string
	zps          bool   // the gateway protocol (zps.go)
	pubInit      []byte // zps: a publisher's init frame
	echoPayload  []byte
	pad          []byte
	sem          chan struct{} // handshakes in flight
	resolved     atomic.Int64  // claimed connections now ready or failed
	claimed      atomic.Int64
	lastReady    atomic.Int64
	lastRecv     atomic.Int64
	active       atomic.Int64 // requesters running
	runDone      chan struct{}
	stopping     atomic.Bool
	stopProg     chan struct{}
	progWG       sync.WaitGroup
	stopOnce     sync.Once
	result       event
	mu           sync.Mutex // guards conns
	conns        []*cconn
}

func newWorker(p *plan, out *eventWriter) (*worker, error) {
	if p == nil || len(p.Targets) == 0 || len(p.SourceIPs) == 0 {
		return nil, fmt.Errorf("%w: incomplete plan", ErrWorker)
	}
	w := &worker{plan: *p, out: out, key: rand.Uint32(), stopProg: make(chan struct{})}
	for i := range w.hist {
		w.hist[i] = perf.MustNewTracker(histOptions)
	}
	var kb [16]byte
	_, _ = cryptorand.Read(kb[:])
	key := base64.StdEncoding.EncodeToString(kb[:])
	w.accept = acceptKey(key)
	for _, t := range p.Targets {
		w.upgrades = append(w.upgrades, upgradeRequest(t, p.Path, key))
		w.sseGets = append(w.sseGets, sseRequest(t, p.SSEPath, p.Role, p.Channel))
	}
	sub := protocol.AppendMessage(nil, 1, true, protocol.CmdSubscribeChannel,
		[]byte(`{"channel":"`+p.Channel+`"}`))
	w.subFrame = appendMaskedFrame(nil, opText, sub, w.key)
	w.pongFrame = appendMaskedFrame(nil, opText, protocol.AppendPong(nil, 0), w.key)
	w.latencyFrame = appendMaskedFrame(nil, opText, protocol.AppendLatencyResponse(nil, 0, []byte("{}")), w.key)
	w.pubPrefix = []byte(`{"channel":"` + p.Channel + `","message":"`)
	w.pubCommand = p.Command
	if w.pubCommand == "" {
		w.pubCommand = cmdPublish
	}
	if p.Protocol == ProtocolZPS {
		w.setupZPS()
	}
	w.pad = bytes.Repeat([]byte{'x'}, max(p.Payload, 1))
	w.echoPayload = []byte(`"` + string(w.pad[:p.Payload]) + `"`)
	for _, t := range p.Targets {
		sa, err := sockaddr4(t)
		if err != nil {
			return nil, fmt.Errorf("%w: target %q: %w", ErrWorker, t, err)
		}
		w.targets = append(w.targets, sa)
	}
	for _, s := range p.SourceIPs {
		sa, err := sockaddr4(s)
		if err != nil {
			return nil, fmt.Errorf("%w: source address %q: %w", ErrWorker, s, err)
		}
		w.sources = append(w.sources, sa)
	}
	w.sem = make(chan struct{}, max(p.DialConcurrency, 1))
	w.table = newConnTable()
	for range max(p.ClientLoops, 1) {
		l, err := newCloop(w)
		if err != nil {
			w.stopLoops()
			return nil, err
		}
		w.loops = append(w.loops, l)
	}
	if p.Progress > 0 {
		w.progWG.Add(1)
		go w.progress(p.Progress)
	}
	return w, nil
}

func (w *worker) progress(every time.Duration) {
	defer w.progWG.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-w.stopProg:
			return
		case <-t.C:
			_ = w.out.send(event{Ev: "progress", Counts: w.counts.snapshot()})
		}
	}
}

// release frees a handshake slot and marks one claimed connection settled.
func (w *worker) release() {
	<-w.sem
	w.resolved.Add(1)
}

// tcpProbe connects and closes n plain TCP connections to addr, with the
// socket code the handshakes use; unless record, nothing is counted.
func (w *worker) tcpProbe(addr string, n int, timeout time.Duration, record bool) event {
	start := time.Now()
	dst, err := sockaddr4(addr)
	if err != nil {
		return event{Ev: "error", Err: err.Error()}
	}
	deadline := start.Add(timeout)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(w.plan.Dialers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || time.Now().After(deadline) {
					return
				}
				t0 := time.Now()
				fd, err := dialSocket(w.sources[int(i)%len(w.sources)], dst)
				if err == nil {
					if err = awaitConnect(fd, defaultTCPDialTimeout); err != nil {
						_ = rawClose(fd)
					}
				}
				if !record {
					if err == nil {
						_ = rawClose(fd)
					}
					continue
				}
				if err != nil {
					w.counts.inc(cTCPErrors)
					continue
				}
				w.hist[hTCP].Record(time.Since(t0))
				_ = rawClose(fd)
				w.counts.inc(cTCP)
			}
		}()
	}
	wg.Wait()
	return event{Ev: "done", Start: start.UnixNano(), End: time.Now().UnixNano()}
}

// open brings the worker to n connections (claimed from index claimed on),
// each ready, failed or swept at the deadline.
func (w *worker) open(n int, timeout time.Duration) event {
	start := time.Now()
	deadline := start.Add(timeout)
	first := w.claimed.Load()
	var wg sync.WaitGroup
	for range max(w.plan.Dialers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.dialLoop(int64(n), deadline)
		}()
	}
	wg.Wait()
	want := min(w.claimed.Load(), int64(n))
	for w.resolved.Load() < want && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if w.resolved.Load() < want {
		w.sweep()
	}
	end := w.lastReady.Load()
	if end == 0 || w.claimed.Load() == first {
		end = time.Now().UnixNano()
	}
	return event{Ev: "done", Start: start.UnixNano(), End: end}
}

// dialLoop claims connection indexes below n and dials them.
func (w *worker) dialLoop(n int64, deadline time.Time) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		select {
		case w.sem <- struct{}{}:
		case <-timer.C:
			return
		}
		i := w.claimed.Add(1) - 1
		if i >= n {
			w.claimed.Add(-1)
			<-w.sem
			return
		}
		w.dialOne(int(i))
	}
}

func (w *worker) dialOne(i int) {
	cc := &cconn{w: w, target: i % len(w.plan.Targets), role: w.plan.Role}
	cc.seq.words = seqWindowFor(w.plan.TotalPubs)
	cc.fp.maxSize = defaultMaxClientMessage
	switch {
	case i < len(w.plan.Pubs):
		cc.role = rolePub
		cc.req = w.newRequester(reqPublish, w.plan.Pubs[i], w.plan.PubBudgets[i])
	case cc.role == roleRPC:
		cc.req = w.newRequester(reqEcho, 0, w.plan.ReqBudget)
	case (cc.role == roleHold || cc.role == roleSub) && isStream(i-len(w.plan.Pubs), w.plan.SSE):
		cc.sse = &sseReader{}
	}
	cc.start = time.Now().UnixNano()
	w.counts.inc(cDials)
	fd, err := dialSocket(w.sources[i%len(w.sources)], w.targets[cc.target])
	if err != nil {
		w.counts.inc(cDialErrors)
		w.release()
		return
	}
	cc.fd = int32(fd)
	if fd >= len(w.table) {
		_ = unix.Close(fd)
		w.counts.inc(cDialErrors)
		w.release()
		return
	}
	// The request goes out before the loop knows the socket, so nothing
	// races; if the connect has not completed yet, the loop sends the rest
	// on the socket's first EPOLLOUT edge.
	req := w.upgrades[cc.target]
	if cc.sse != nil {
		req = w.sseGets[cc.target]
	}
	n, err := rawWrite(fd, req)
	if err != nil {
		if !errors.Is(err, unix.EAGAIN) {
			_ = unix.Close(fd)
			w.counts.inc(cDialErrors)
			w.release()
			return
		}
		n = 0
	}
	if n < len(req) {
		cc.out = append([]byte(nil), req[n:]...)
	}
	cc.loop = w.loops[i%len(w.loops)]
	if err := cc.loop.add(cc); err != nil {
		_ = unix.Close(fd)
		w.counts.inc(cDialErrors)
		w.release()
		return
	}
	w.mu.Lock()
	w.conns = append(w.conns, cc)
	w.mu.Unlock()
}

func (w *worker) newRequester(kind byte, pub, budget uint64) *requester {
	ring := maxRing
	if w.plan.Rate == 0 {
		ring = 2
		for ring < 2*w.plan.Depth {
			ring <<= 1
		}
	}
	return &requester{kind: kind, pub: pub, pubs: max(w.plan.TotalPubs, 1), depth: max(w.plan.Depth, 1),
		rate: w.plan.Rate, budget: budget, ring: make([]sentAt, ring)}
}

// sweep closes every connection still short of ready; closed counts them.
func (w *worker) sweep() {
	conns := w.snapshot()
	for _, l := range w.loops {
		_ = l.execute(func() {
			for _, cc := range conns {
				if cc.loop == l && !cc.ready.Load() {
					cc.close()
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
}

func (w *worker) snapshot() []*cconn {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.conns[:len(w.conns):len(w.conns)]
}

// run starts every ready requester for d and waits for them to finish
// (their replies in flight get a grace period).
func (w *worker) run(d time.Duration) event {
	start := time.Now()
	conns := w.snapshot()
	var idx []int
	for i, cc := range conns {
		if cc.req != nil && cc.ready.Load() {
			idx = append(idx, i)
		}
	}
	w.runDone = make(chan struct{})
	w.active.Store(int64(len(idx)))
	if len(idx) == 0 {
		close(w.runDone)
	}
	groups := map[*cloop][]*cconn{}
	for _, i := range idx {
		cc := conns[i]
		groups[cc.loop] = append(groups[cc.loop], cc)
		if err := cc.loop.execute(func() { cc.req.start(cc, d) }); err != nil {
			w.requesterDone()
		}
	}
	stopPacer := make(chan struct{})
	var pacer sync.WaitGroup
	if w.plan.Rate > 0 {
		pacer.Add(1)
		go w.pace(groups, stopPacer, &pacer)
	}
	select {
	case <-w.runDone:
	case <-time.After(d + defaultRunGrace):
	}
	close(stopPacer)
	pacer.Wait()
	return event{Ev: "done", Start: start.UnixNano(), End: time.Now().UnixNano()}
}

// pace ticks every open-loop requester, one loop task per loop per tick.
func (w *worker) pace(groups map[*cloop][]*cconn, stop chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	t := time.NewTicker(defaultPacerTick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		for el, cs := range groups {
			_ = el.execute(func() {
				now := time.Now().UnixNano()
				for _, cc := range cs {
					cc.req.tick(cc, now)
				}
			})
		}
	}
}

// requesterDone is called once per started requester, on its loop.
func (w *worker) requesterDone() {
	if w.active.Add(-1) == 0 {
		close(w.runDone)
	}
}

// drain waits until every ready subscriber has seen published messages,
// deliveries stop for defaultDrainQuiet, or timeout passes.
func (w *worker) drain(published uint64, timeout time.Duration) event {
	start := time.Now()
	conns := w.snapshot()
	var subs uint64
	for _, cc := range conns {
		if (cc.role == roleSub || cc.role == roleRawSub) && cc.ready.Load() {
			subs++
		}
	}
	want := subs * published
	last, lastChange := w.counts.get(cDeliveries), time.Now()
	for w.counts.get(cUnique) < want && time.Since(start) < timeout {
		time.Sleep(5 * time.Millisecond)
		if d := w.counts.get(cDeliveries); d != last {
			last, lastChange = d, time.Now()
		} else if time.Since(lastChange) > defaultDrainQuiet {
			break
		}
	}
	return event{Ev: "done", Start: start.UnixNano(), End: w.lastRecv.Load()}
}

// stop closes every connection and returns the worker's result. Idempotent.
func (w *worker) stop() event {
	w.stopOnce.Do(func() {
		close(w.stopProg)
		w.progWG.Wait()
		w.stopping.Store(true)
		w.stopLoops()
		hists := map[string]*perf.Histogram{}
		for i, t := range w.hist {
			if h := t.Snapshot(); h.Count() > 0 {
				hists[histNames[i]] = h
			}
		}
		w.result = event{Ev: "result", Counts: w.counts.snapshot(), Hists: hists}
	})
	return w.result
}

// stopLoops closes every connection and ends the loops.
func (w *worker) stopLoops() {
	conns := w.snapshot()
	for _, l := range w.loops {
		l.stop(conns)
	}
	w.loops = nil
}
