package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/meshfast/meshfast/perf"
)

// runMultiNode runs fanout, then rpc, against the nodes (Targets, or the
// nodes it starts on MultiNode.Redis), then both against the single node
// of the same shape, and returns one result per topology: its fanout
// figures prefixed "fanout ", its rpc figures "rpc ", so that the report's
// ratios set each multi-node figure over its single-node one.
func runMultiNode(ctx context.Context, o Options) ([]*RunResult, error) {
	targets, single := o.Targets, o.MultiNode.Single
	if o.MultiNode.Redis != "" {
		nodes, err := startNodes(ctx, o)
		if err != nil {
			return nil, err
		}
		defer nodes.stop()
		targets, single = nodes.targets, nodes.single
		o.sidePIDs = nodes.redisPIDs
		fmt.Fprintf(o.Stdout, "started %d meshfast nodes on %s (%s) and one alone (%s)\n",
			len(targets), o.MultiNode.Redis, strings.Join(targets, " "), single[0])
	}
	var runs []*RunResult
	for _, topo := range []struct {
		label   string
		targets []string
		pid     int
		side    []int
	}{
		{fmt.Sprintf("%d nodes", len(targets)), targets, o.ServerPID, o.sidePIDs},
		{"1 node", single, o.MultiNode.SinglePID, nil},
	} {
		fo := o
		fo.sidePIDs = topo.side
		fan, err := runFanout(ctx, fo, topo.label+" fanout", topo.targets, topo.pid)
		if err != nil {
			return runs, err
		}
		rpc, err := runRPC(ctx, o, topo.label+" rpc", topo.targets, topo.pid)
		if err != nil {
			return runs, err
		}
		runs = append(runs, combineRuns(topo.label, topo.targets, map[string]*RunResult{"fanout": fan, "rpc": rpc}))
	}
	return runs, nil
}

// combineRuns folds the runs of one topology into one result, each run's
// metrics, counts and histograms named after it ("fanout delivered"), and
// adds the work per server core-second.
func combineRuns(label string, targets []string, parts map[string]*RunResult) *RunResult {
	r := &RunResult{Label: label, Targets: targets, Counts: map[string]uint64{}, Latency: map[string]*perf.Histogram{}}
	for _, name := range []string{"fanout", "rpc"} {
		p := parts[name]
		r.Workers = max(r.Workers, p.Workers)
		for _, m := range p.Metrics {
			r.add(name+" "+m.Name, m.Value, m.Unit)
		}
		for k, v := range p.Counts {
			r.Counts[name+" "+k] = v
		}
		for k, h := range p.Latency {
			r.Latency[name+" "+k] = h
		}
	}
	// The figure the multi-node target is stated in: deliveries per second
	// of server CPU, and with Redis's CPU counted too.
	if ns, ok := r.Metric("fanout server cpu per delivery"); ok && ns > 0 {
		r.add("fanout deliveries per server core-second", 1e9/ns, "1/s")
		if rns, ok := r.Metric("fanout redis cpu per delivery"); ok {
			r.add("fanout deliveries per server+redis core-second", 1e9/(ns+rns), "1/s")
		}
	}
	if us, ok := r.Metric("rpc server cpu per request"); ok && us > 0 {
		r.add("rpc requests per server core-second", 1e6/us, "1/s")
	}
	return r
}

// startedNodes are the meshfast processes Run started for a multi-node run.
type startedNodes struct {
	procs     []*nodeProc
	targets   []string // the nodes on Redis
	single    []string // the node alone
	redisPIDs []int    // Redis's process, when it runs on this host
}

type nodeProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	tail []string // its last log lines, for errors
}

// listening finds the bound address in meshfast's "listening" log line.
var listening = regexp.MustCompile(`msg=listening .*?addr=([^\s"]+)`)

// startNodes starts MultiNode.Nodes meshfast processes with -redis and one
// without, each with -bench on a loopback port it picks, and waits until
// each says where it listens.
func startNodes(ctx context.Context, o Options) (*startedNodes, error) {
	m := o.MultiNode
	bin, err := findMeshfast(m.Meshfast)
	if err != nil {
		return nil, err
	}
	s := &startedNodes{}
	for i := 0; i <= m.Nodes; i++ {
		args := []string{"-addr", "127.0.0.1:0", "-bench", "-log-format", "text", "-log-level", "info"}
		if i < m.Nodes {
			args = append(args, "-redis", m.Redis)
		}
		if m.NodeLoops > 0 {
			args = append(args, "-loops", strconv.Itoa(m.NodeLoops))
		}
		p, addr, err := startNodeProc(ctx, bin, args, o.Timeout)
		if p != nil {
			s.procs = append(s.procs, p)
		}
		if err != nil {
			s.stop()
			return nil, err
		}
		if i < m.Nodes {
			s.targets = append(s.targets, addr)
		} else {
			s.single = []string{addr}
		}
	}
	if port, ok := redisPort(m.Redis); ok {
		if pid, err := findListenerPID(port); err == nil {
			s.redisPIDs = []int{pid}
		}
	}
	return s, nil
}

// findMeshfast resolves the meshfast binary: a path as given, else a name
// next to this program, else on PATH.
func findMeshfast(name string) (string, error) {
	if strings.ContainsRune(name, os.PathSeparator) {
		return name, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: the meshfast binary %q is neither next to this program nor on PATH (go build ./cmd/meshfast, or -meshfast PATH)", ErrInvalidOptions, name)
	}
	return p, nil
}

// startNodeProc starts one meshfast and returns it with its address.
func startNodeProc(ctx context.Context, bin string, args []string, timeout time.Duration) (*nodeProc, string, error) {
	cmd := exec.Command(bin, args...)
	// The node's configuration is its flags: a MESHFAST_ variable of this
	// environment (a Redis URL, a config file) must not reach the node
	// started alone, nor the bench's own worker marker any of them.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MESHFAST_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start %s: %w", bin, err)
	}
	p := &nodeProc{cmd: cmd, done: make(chan struct{})}
	addrs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.tail = append(p.tail, line)
			if len(p.tail) > 20 {
				p.tail = p.tail[1:]
			}
			p.mu.Unlock()
			if mm := listening.FindStringSubmatch(line); mm != nil {
				select {
				case addrs <- mm[1]:
				default:
				}
			}
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case addr := <-addrs:
		if err := checkLoopback(addr); err != nil {
			return p, "", err
		}
		return p, addr, nil
	case <-p.done:
		return p, "", fmt.Errorf("%s %s exited before listening:\n%s", bin, strings.Join(args, " "), p.log())
	case <-t.C:
		return p, "", fmt.Errorf("%s not listening after %v:\n%s", bin, timeout, p.log())
	case <-ctx.Done():
		return p, "", ctx.Err()
	}
}

func (p *nodeProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// stop shuts every node down cleanly (SIGTERM: it closes its clients and
// removes its state from Redis), killing one that takes longer than 10 s.
func (s *startedNodes) stop() {
	for _, p := range s.procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range s.procs {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// redisPort is the port of a Redis URL's first address, when it is on
// this host.
func redisPort(url string) (int, bool) {
	u := strings.TrimPrefix(url, "redis://")
	u, _, _ = strings.Cut(u, ",")
	u, _, _ = strings.Cut(u, "/")
	if i := strings.LastIndexByte(u, '@'); i >= 0 {
		u = u[i+1:]
	}
	host, port, err := net.SplitHostPort(u)
	if err != nil {
		host, port = u, "6379"
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return 0, false
	}
	n, err := strconv.Atoi(port)
	return n, err == nil
}
