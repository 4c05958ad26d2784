package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireRedisEnv names the environment variable that turns a missing
// redis-server or redis-cli from a skip into a failure (CI sets it to 1).
const RequireRedisEnv = "MESHFAST_REQUIRE_REDIS"

// redisStartTimeout bounds how long a starting server may take to answer.
const redisStartTimeout = 10 * time.Second

// lookRedis finds a Redis binary, skipping the test without it unless
// MESHFAST_REQUIRE_REDIS=1.
func lookRedis(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv(RequireRedisEnv) == "1" {
			t.Fatalf("%s not found and %s=1: %v", name, RequireRedisEnv, err)
		}
		t.Skipf("%s not installed", name)
	}
	return bin
}

// Redis is a redis-server started for one test, in its own temporary
// directory, on a loopback port it keeps across Kill and Restart.
type Redis struct {
	// Addr is "127.0.0.1:<port>".
	Addr string
	Port int

	bin  string
	dir  string
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd // nil while stopped
}

// StartRedis starts a private redis-server on a free loopback port and
// stops it when the test ends. Nothing is persisted: a restarted server is
// empty. Expired-key notifications are on ("Ex"). Without redis-server on
// PATH the test is skipped, unless MESHFAST_REQUIRE_REDIS=1, when it fails.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	return startRedis(t, lookRedis(t, "redis-server"), nil)
}

// StartRedisArgs is StartRedis with extra redis-server arguments, which
// override the defaults: "--appendonly", "yes", "--appendfsync",
// "always" makes a server that Kill and Restart leave with its data, for
// tests of what a crash leaves behind.
func StartRedisArgs(t testing.TB, args ...string) *Redis {
	t.Helper()
	return startRedis(t, lookRedis(t, "redis-server"), func(int) []string { return args })
}

func startRedis(t testing.TB, bin string, extra func(port int) []string) *Redis {
	t.Helper()
	dir := t.TempDir()
	var lastErr error
	// A free port can be taken by someone else before the server binds
	// it: try a few.
	for range 5 {
		port := FreePort(t)
		r := &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, bin: bin, dir: dir}
		r.args = []string{
			"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--save", "", "--appendonly", "no", "--dir", dir,
			"--notify-keyspace-events", "Ex", "--loglevel", "warning",
			"--logfile", filepath.Join(dir, "redis.log"),
		}
		if extra != nil {
			r.args = append(r.args, extra(port)...)
		}
		if lastErr = r.start(); lastErr == nil {
			t.Cleanup(r.Kill)
			return r
		}
	}
	t.Fatalf("redis-server did not start: %v", lastErr)
	return nil
}

// start runs the server and waits until it answers PING.
func (r *Redis) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return nil
	}
	cmd := exec.Command(r.bin, r.args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", r.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(redisStartTimeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			return fmt.Errorf("redis-server on %s exited (%v): %s", r.Addr, err, log)
		default:
		}
		if _, err := Do(r.Addr, "PING"); err == nil {
			r.cmd = cmd
			go func() { <-exited }() // reap later exits; Kill waits on cmd.Process
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("redis-server on %s did not answer within %v", r.Addr, redisStartTimeout)
}

// Kill stops the server with SIGKILL, as a crash would, and waits until its
// port no longer answers. Killing a stopped server does nothing. The test's
// cleanup kills it too.
func (r *Redis) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill() // SIGKILL ends a paused process too
	// The reaper goroutine started by start owns Wait; poll the port.
	_ = poll(redisStartTimeout, func() error {
		if _, err := Do(r.Addr, "PING"); err == nil {
			return errors.New("still answering")
		}
		return nil
	})
	r.cmd = nil
}

// Pause stops the server with SIGSTOP: it keeps its port and its
// connections but answers nothing, as a hung or unreachable Redis would.
// Resume continues it. Pausing a stopped server does nothing.
func (r *Redis) Pause() { r.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

func (r *Redis) signal(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(sig)
	}
}

// Stop is Kill (kept for older callers).
func (r *Redis) Stop() { r.Kill() }

// Restart starts a killed server again on the same port, in the same
// directory, with the same options (a cluster node finds its nodes.conf
// there and rejoins). Data is not persisted, so a single server comes back
// empty; a cluster node comes back empty but owning its slots.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	if err := poll(redisStartTimeout, r.start); err != nil {
		t.Fatalf("restart redis-server: %v", err)
	}
}

// Running reports whether the server was started and not killed.
func (r *Redis) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd != nil
}

// Do sends one command to the server; see the package function Do.
func (r *Redis) Do(args ...string) (any, error) { return Do(r.Addr, args...) }

// RedisCluster is a Redis Cluster of masters only, each a redis-server
// started for one test with cluster mode on.
type RedisCluster struct {
	Nodes []*Redis
}

// clusterNodeTimeout is the cluster's node timeout: short, so that a killed
// master is noticed fast; the test cluster has no replicas to fail over to.
const clusterNodeTimeout = 2000 * time.Millisecond

// StartRedisCluster starts masters redis-server processes with
// --cluster-enabled yes, each in its own temporary directory on free
// loopback ports (client and bus port), joins them with redis-cli --cluster
// create, and waits until every node reports cluster_state:ok. The slots are
// split evenly; there are no replicas. Without redis-server or redis-cli on
// PATH the test is skipped, unless MESHFAST_REQUIRE_REDIS=1.
func StartRedisCluster(t testing.TB, masters int) *RedisCluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("StartRedisCluster: redis-cli --cluster create needs at least 3 masters, got %d", masters)
	}
	server := lookRedis(t, "redis-server")
	cli := lookRedis(t, "redis-cli")
	c := &RedisCluster{}
	for range masters {
		c.Nodes = append(c.Nodes, startRedis(t, server, func(int) []string {
			return []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", strconv.Itoa(int(clusterNodeTimeout / time.Millisecond)),
				"--cluster-port", strconv.Itoa(FreePort(t)),
				// Keep serving the slots it has when another master is
				// down, so that failure tests see a partial outage.
				"--cluster-require-full-coverage", "no",
			}
		}))
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitOK(t)
	return c
}

// Addrs returns the nodes' addresses.
func (c *RedisCluster) Addrs() []string {
	a := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		a[i] = n.Addr
	}
	return a
}

// WaitOK polls until every running node reports cluster_state:ok, knows
// every node and sees all 16384 slots served.
func (c *RedisCluster) WaitOK(t testing.TB) {
	t.Helper()
	Eventually(t, 30*time.Second, c.ok)
}

func (c *RedisCluster) ok() error {
	for _, n := range c.Nodes {
		if !n.Running() {
			return fmt.Errorf("%s is not running", n.Addr)
		}
		v, err := n.Do("CLUSTER", "INFO")
		if err != nil {
			return err
		}
		info := InfoFields(fmt.Sprint(v))
		if info["cluster_state"] != "ok" || info["cluster_slots_ok"] != "16384" ||
			info["cluster_known_nodes"] != strconv.Itoa(len(c.Nodes)) {
			return fmt.Errorf("%s: cluster_state:%s slots_ok:%s known_nodes:%s", n.Addr,
				info["cluster_state"], info["cluster_slots_ok"], info["cluster_known_nodes"])
		}
	}
	return nil
}

// FlushAll empties every node.
func (c *RedisCluster) FlushAll() error {
	for _, n := range c.Nodes {
		if _, err := n.Do("FLUSHALL"); err != nil {
			return fmt.Errorf("FLUSHALL on %s: %w", n.Addr, err)
		}
	}
	return nil
}

// SlotOwner returns the node that serves key's slot, as the cluster says.
func (c *RedisCluster) SlotOwner(key string) (*Redis, error) {
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		v, err := n.Do("CLUSTER", "KEYSLOT", key)
		if err != nil {
			return nil, err
		}
		slot := v.(int64)
		nodes, err := n.Do("CLUSTER", "SLOTS")
		if err != nil {
			return nil, err
		}
		for _, r := range nodes.([]any) {
			rng := r.([]any)
			lo, hi := rng[0].(int64), rng[1].(int64)
			if slot < lo || slot > hi {
				continue
			}
			master := rng[2].([]any)
			addr := net.JoinHostPort(master[0].(string), strconv.FormatInt(master[1].(int64), 10))
			for _, m := range c.Nodes {
				if m.Addr == addr {
					return m, nil
				}
			}
			return nil, fmt.Errorf("slot %d served by unknown %s", slot, addr)
		}
		return nil, fmt.Errorf("slot %d not served", slot)
	}
	return nil, errors.New("no running node")
}

// InfoFields parses the "key:value" lines of an INFO or CLUSTER INFO reply.
func InfoFields(info string) map[string]string {
	m := make(map[string]string)
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok {
			m[k] = v
		}
	}
	return m
}

// RedisError is an error reply ("-ERR ...") from Redis.
type RedisError string

func (e RedisError) Error() string { return string(e) }

// Do sends one command to the Redis server at addr on a new connection and
// returns its reply: string (simple and bulk strings), int64, []any, nil
// (null) or a RedisError. It is for tests and helpers that must not depend
// on the client under test.
func Do(addr string, args ...string) (any, error) {
	return DoTimeout(addr, 5*time.Second, args...)
}

// DoTimeout is Do with a deadline for the whole exchange.
func DoTimeout(addr string, timeout time.Duration, args ...string) (any, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	v, err := readRESP(bufio.NewReader(c))
	if err != nil {
		return nil, err
	}
	if e, ok := v.(RedisError); ok {
		return nil, e
	}
	return v, nil
}

func readRESP(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty RESP line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return RedisError(line[1:]), nil
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readRESP(r); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected RESP line %q", line)
}
