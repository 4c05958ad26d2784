package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// The helper starts a private redis-server that answers, kills it, and
// restarts it on the same port, empty.
func TestStartRedis(t *testing.T) {
	r := StartRedis(t)
	if _, err := r.Do("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if v, err := r.Do("GET", "k"); err != nil || v != "v" {
		t.Fatalf("GET k = %v, %v", v, err)
	}
	if v, err := r.Do("CONFIG", "GET", "notify-keyspace-events"); err != nil || !strings.Contains(fmt.Sprint(v), "x") {
		t.Fatalf("notify-keyspace-events = %v, %v", v, err)
	}
	if _, err := r.Do("NOSUCHCOMMAND"); !errors.As(err, new(RedisError)) {
		t.Fatalf("unknown command error = %v, want a RedisError", err)
	}
	r.Pause()
	if _, err := DoTimeout(r.Addr, 200*time.Millisecond, "PING"); err == nil {
		t.Fatal("paused redis answered")
	}
	r.Resume()
	Eventually(t, 5*time.Second, func() error { _, err := r.Do("PING"); return err })
	r.Kill()
	if r.Running() {
		t.Fatal("Running after Kill")
	}
	if _, err := r.Do("PING"); err == nil {
		t.Fatal("redis still answering after Kill")
	}
	r.Kill() // idempotent
	r.Restart(t)
	if v, err := r.Do("GET", "k"); err != nil || v != nil {
		t.Fatalf("GET k after restart = %v, %v; want nil (nothing persisted)", v, err)
	}
}

// A 3-master cluster forms, spreads the slots, routes by slot, and a
// killed master rejoins on restart with its slots.
func TestStartRedisCluster(t *testing.T) {
	c := StartRedisCluster(t, 3)
	if len(c.Nodes) != 3 {
		t.Fatalf("%d nodes", len(c.Nodes))
	}
	owners := map[string]bool{}
	for i := range 30 {
		key := fmt.Sprintf("key-%d", i)
		n, err := c.SlotOwner(key)
		if err != nil {
			t.Fatal(err)
		}
		owners[n.Addr] = true
		if _, err := n.Do("SET", key, "v"); err != nil {
			t.Fatalf("SET %s on its owner: %v", key, err)
		}
	}
	if len(owners) != 3 {
		t.Fatalf("30 keys landed on %d masters, want 3", len(owners))
	}
	// A key sent to a node that does not own it is redirected.
	n, _ := c.SlotOwner("key-0")
	for _, m := range c.Nodes {
		if m != n {
			if _, err := m.Do("GET", "key-0"); err == nil || !strings.HasPrefix(err.Error(), "MOVED") {
				t.Fatalf("GET on a non-owner = %v, want MOVED", err)
			}
			break
		}
	}
	if err := c.FlushAll(); err != nil {
		t.Fatal(err)
	}
	if v, _ := n.Do("DBSIZE"); v != int64(0) {
		t.Fatalf("DBSIZE after FlushAll = %v", v)
	}

	n.Kill()
	if err := c.ok(); err == nil {
		t.Fatal("cluster ok with a master killed")
	}
	n.Restart(t)
	c.WaitOK(t)
	if m, err := c.SlotOwner("key-0"); err != nil || m != n {
		t.Fatalf("after restart key-0 is on %v (%v), want %s", m, err, n.Addr)
	}
}

// Without redis-server the helpers skip, or fail under
// MESHFAST_REQUIRE_REDIS=1.
func TestLookRedisMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Run("skip", func(t *testing.T) {
		t.Setenv(RequireRedisEnv, "")
		ft := &fakeTB{TB: t}
		runTB(ft, func() { StartRedis(ft) })
		if !ft.skipped || ft.failed {
			t.Fatalf("skipped=%v failed=%v, want a skip", ft.skipped, ft.failed)
		}
	})
	t.Run("require", func(t *testing.T) {
		t.Setenv(RequireRedisEnv, "1")
		ft := &fakeTB{TB: t}
		runTB(ft, func() { StartRedisCluster(ft, 3) })
		if !ft.failed {
			t.Fatalf("failed=%v, want a failure", ft.failed)
		}
	})
}

// fakeTB records Skip and Fatal instead of ending the real test.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

type stopTB struct{}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(string, ...any) {
	f.skipped = true
	panic(stopTB{})
}
func (f *fakeTB) Fatalf(string, ...any) {
	f.failed = true
	panic(stopTB{})
}

func runTB(f *fakeTB, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(stopTB); !ok {
				panic(r)
			}
		}
	}()
	fn()
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, time.Second, func() error {
		n++
		if n < 3 {
			return fmt.Errorf("n=%d", n)
		}
		return nil
	})
}

// A proxy forwards to its target; after Retarget new connections reach the
// new target while open ones stay on the old.
func TestProxy(t *testing.T) {
	a, b := StartRedis(t), StartRedis(t)
	if _, err := a.Do("SET", "who", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Do("SET", "who", "b"); err != nil {
		t.Fatal(err)
	}
	p := StartProxy(t, a.Addr)
	old, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	get := func(c net.Conn) string {
		t.Helper()
		if _, err := c.Write([]byte("*2\r\n$3\r\nGET\r\n$3\r\nwho\r\n")); err != nil {
			t.Fatal(err)
		}
		v, err := readRESP(bufio.NewReader(c))
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(v)
	}
	if v := get(old); v != "a" {
		t.Fatalf("through the proxy: %q, want a", v)
	}
	p.Retarget(b.Addr)
	if v, err := Do(p.Addr, "GET", "who"); err != nil || v != "b" {
		t.Fatalf("new connection after Retarget: %v, %v; want b", v, err)
	}
	if v := get(old); v != "a" {
		t.Fatalf("open connection after Retarget: %q, want a", v)
	}
	p.Close()
	if _, err := Do(p.Addr, "PING"); err == nil {
		t.Fatal("proxy answers after Close")
	}
}
