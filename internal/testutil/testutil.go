// Package testutil is meshfast's one shared test helper package: a real
// redis-server on a free loopback port, and polling instead of sleeping.
// Helpers are safe from any goroutine; each registers its own cleanup.
package testutil

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Eventually polls cond until it returns nil, failing the test with the
// last error once total has passed.
func Eventually(t testing.TB, total time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	step := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", total, err)
		}
		time.Sleep(step)
		step = min(step*2, 50*time.Millisecond)
	}
}

// FreePort returns a loopback port that was free a moment ago, for
// programs (like redis-server) that cannot bind port 0 and report it.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Redis is a redis-server started for one test.
type Redis struct {
	Addr string
	cmd  *exec.Cmd
}

// StartRedis starts a private redis-server on a free loopback port and
// stops it when the test ends. Without redis-server on PATH the test is
// skipped, unless MESHFAST_REQUIRE_REDIS=1, when it fails.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("MESHFAST_REQUIRE_REDIS") == "1" {
			t.Fatalf("redis-server not found and MESHFAST_REQUIRE_REDIS=1: %v", err)
		}
		t.Skip("redis-server not installed")
	}
	dir := t.TempDir()
	for attempt := 0; attempt < 5; attempt++ {
		port := FreePort(t)
		cmd := exec.Command(bin,
			"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--save", "", "--appendonly", "no", "--dir", dir,
			"--notify-keyspace-events", "Ex", "--loglevel", "warning",
			"--logfile", filepath.Join(dir, "redis.log"))
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		r := &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd}
		if r.waitReady(5 * time.Second) {
			t.Cleanup(r.stop)
			return r
		}
		r.stop()
	}
	log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
	t.Fatalf("redis-server did not start: %s", log)
	return nil
}

func (r *Redis) waitReady(total time.Duration) bool {
	deadline := time.Now().Add(total)
	for time.Now().Before(deadline) {
		if r.ping() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func (r *Redis) ping() bool {
	c, err := net.DialTimeout("tcp", r.Addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprint(c, "PING\r\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// Stop kills the server now (to test a dead Redis); cleanup is then a no-op.
func (r *Redis) Stop() { r.stop() }

func (r *Redis) stop() {
	if r.cmd.Process == nil || r.cmd.ProcessState != nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}

// VerifyNoLeaks runs a package's tests and fails if goroutines outlive
// them. gnet's shared worker pool and the poller of sockets the runtime
// is still closing are not leaks of ours.
func VerifyNoLeaks(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}
