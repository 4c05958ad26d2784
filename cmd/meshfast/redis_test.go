package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshfast/meshfast/client"
	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/coord/redis"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/features/server"
	"github.com/meshfast/meshfast/internal/testutil"
)

// TestKilledNode: a meshfast process on Redis killed with SIGKILL, beside a
// node that stays. The survivor's client sees each of the dead node's
// clients leave, once, within the presence TTL and a sweep; the survivor's
// janitor then removes them from the room and the registry within about
// 1.6 node TTLs. Then two meshfast processes on one Redis, each with
// a client, see each other's joins (the binary's -redis flag end to end).
func TestKilledNode(t *testing.T) {
	const ttl, nodeTTL = time.Second, time.Second
	bin := buildMeshfast(t)
	r := testutil.StartRedis(t)
	url := "redis://" + r.Addr
	env := []string{
		"MESHFAST_REDIS_NODE_TTL=" + nodeTTL.String(),
		"MESHFAST_EXPOSE_PRESENCE=[{name: lobby, ttl: " + ttl.String() + "}]",
	}
	args := []string{"-redis", url, "-addr", "127.0.0.1:0", "-ping-interval", "300ms"}

	ro := redis.Options{IdleSweepInterval: 100 * time.Millisecond, SweepInterval: 5 * time.Millisecond}
	survivor, err := server.Start(server.Config{
		Engine: engine.Options{Addr: "127.0.0.1:0"},
		Redis:  server.RedisConfig{URL: url, Options: ro},
		Mesh:   mesh.Options{NodeTTL: nodeTTL, PingInterval: 300 * time.Millisecond},
		Expose: server.Exposures{Presence: []server.PresenceExposure{{Exposure: server.Exposure{Name: "lobby"}, TTL: ttl}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = survivor.Shutdown(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	a := dialMesh(t, survivor.Addr().String())
	var mu sync.Mutex
	var seen []string
	if _, err := a.JoinRoom(ctx, "lobby", client.WithPresence(func(u client.PresenceUpdate) {
		mu.Lock()
		seen = append(seen, u.Type+" "+u.ConnectionID)
		mu.Unlock()
	})); err != nil {
		t.Fatal(err)
	}
	count := func(ev string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, s := range seen {
			if s == ev {
				n++
			}
		}
		return n
	}
	waitFor := func(ev string, within time.Duration) {
		t.Helper()
		testutil.Eventually(t, within, func() error {
			if count(ev) == 0 {
				mu.Lock()
				defer mu.Unlock()
				return fmt.Errorf("%q not seen; seen %q", ev, seen)
			}
			return nil
		})
	}

	doomed := startMeshfast(t, bin, args, env)
	var ids []string
	for range 2 {
		b := dialMesh(t, doomed.addr)
		if _, err := b.JoinRoom(ctx, "lobby"); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ConnectionID())
		waitFor("join "+b.ConnectionID(), 10*time.Second)
	}
	// Outlive the TTL: the doomed node's pongs keep its clients present.
	time.Sleep(ttl + ttl/2)
	present, err := survivor.Mesh.PresentConnections(ctx, "lobby")
	if err != nil || len(present) != 3 {
		t.Fatalf("present while alive: %q, %v", present, err)
	}

	if err := doomed.cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup at all
		t.Fatal(err)
	}
	killed := time.Now()
	for _, id := range ids {
		waitFor("leave "+id, 10*time.Second)
	}
	// The last refresh was at most a ping interval before the kill; the
	// survivor's sweeper runs every IdleSweepInterval.
	if took := time.Since(killed); took > ttl+time.Second {
		t.Fatalf("leaves seen %v after the kill, want within the TTL (%v) and a sweep", took, ttl)
	}
	present, err = survivor.Mesh.PresentConnections(ctx, "lobby")
	if err != nil || !slices.Equal(present, []string{a.ConnectionID()}) {
		t.Fatalf("present after the kill: %q, %v", present, err)
	}
	// The janitor: membership and registry, within about 1.6 node TTLs.
	testutil.Eventually(t, 4*nodeTTL+2*time.Second, func() error {
		members, err := survivor.Mesh.RoomMembers(ctx, "lobby")
		if err != nil {
			return err
		}
		if !slices.Equal(members, []string{a.ConnectionID()}) {
			return fmt.Errorf("members %q", members)
		}
		for _, id := range ids {
			if _, err := survivor.Mesh.Coordinator().ConnectionNode(ctx, id); !errors.Is(err, coord.ErrNotFound) {
				return fmt.Errorf("%s still registered (%v)", id, err)
			}
		}
		return nil
	})
	if took := time.Since(killed); took > 2*nodeTTL+2*time.Second {
		t.Fatalf("the dead node's clients left the room %v after the kill", took)
	}
	// A sentinel after them: each leave was reported once.
	c := dialMesh(t, survivor.Addr().String())
	if _, err := c.JoinRoom(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	waitFor("join "+c.ConnectionID(), 10*time.Second)
	for _, id := range ids {
		if n := count("leave " + id); n != 1 {
			t.Fatalf("leave of %s seen %d times, want once", id, n)
		}
	}

	// Two meshfast processes on the same Redis serve as one.
	p1, p2 := startMeshfast(t, bin, args, env), startMeshfast(t, bin, args, env)
	x, y := dialMesh(t, p1.addr), dialMesh(t, p2.addr)
	var joins []string
	var jmu sync.Mutex
	if _, err := x.JoinRoom(ctx, "lobby", client.WithPresence(func(u client.PresenceUpdate) {
		jmu.Lock()
		joins = append(joins, u.Type+" "+u.ConnectionID)
		jmu.Unlock()
	})); err != nil {
		t.Fatal(err)
	}
	res, err := y.JoinRoom(ctx, "lobby")
	if err != nil || !slices.Contains(res.Present, x.ConnectionID()) {
		t.Fatalf("join on the second process: %+v, %v (want %s present)", res, err, x.ConnectionID())
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		jmu.Lock()
		defer jmu.Unlock()
		if !slices.Contains(joins, "join "+y.ConnectionID()) {
			return fmt.Errorf("the first process's client saw %q", joins)
		}
		return nil
	})
	resp, err := http.Get("http://" + p1.addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"coordinator":{"ok":true`) {
		t.Fatalf("/health of a meshfast on Redis: %d %s", resp.StatusCode, body)
	}
}

// dialMesh connects a Go client to addr and waits for its id.
func dialMesh(t *testing.T, addr string) *client.Client {
	t.Helper()
	c := client.New("ws://"+addr+"/", client.Options{NoReconnect: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	testutil.Eventually(t, 10*time.Second, func() error {
		if c.ConnectionID() == "" {
			return errors.New("no id")
		}
		return nil
	})
	return c
}
