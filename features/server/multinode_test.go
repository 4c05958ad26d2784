package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshfast/meshfast/client"
	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/coord/memory"
	"github.com/meshfast/meshfast/coord/redis"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/internal/testutil"
	"github.com/meshfast/meshfast/protocol"
)

// Several meshfast nodes on one Redis, and on a Redis Cluster, each a
// features/server node of this process with its own Redis coordinator, as
// separate processes would be: Mesh's own multi-instance test cases
// (mesh-protocol tests.md: C-multi-1/2, C-record-15/16/17,
// C-presence-10/11/12/13), then commands, rooms, presence, channels,
// records and metadata across nodes through the Go client, a redis-cli
// PUBLISH reaching every node, a clean shutdown, and Redis killed and
// restarted under live clients. A node killed with SIGKILL is
// cmd/meshfast's TestKilledNode, with real processes.

// wait bounds every poll here: cross-node delivery takes milliseconds.
const wait = 10 * time.Second

// redisUnderTest is a Redis (or cluster) the nodes share.
type redisUnderTest struct {
	url   string
	flush func() error
	// cli runs redis-cli against it (with -c on a cluster).
	cli     func(args ...string) (string, error)
	cluster bool
}

func singleRedis(t *testing.T) redisUnderTest {
	r := testutil.StartRedis(t)
	return redisUnderTest{
		url:   "redis://" + r.Addr,
		flush: func() error { _, err := r.Do("FLUSHALL"); return err },
		cli: func(args ...string) (string, error) {
			out, err := exec.Command("redis-cli", append([]string{"-p", strconv.Itoa(r.Port)}, args...)...).CombinedOutput()
			return string(out), err
		},
	}
}

func clusterRedis(t *testing.T) redisUnderTest {
	rc := testutil.StartRedisCluster(t, 3)
	return redisUnderTest{
		url:   "redis://" + strings.Join(rc.Addrs(), ",redis://"),
		flush: rc.FlushAll,
		cli: func(args ...string) (string, error) {
			out, err := exec.Command("redis-cli", append([]string{"-c", "-p", strconv.Itoa(rc.Nodes[0].Port)}, args...)...).CombinedOutput()
			return string(out), err
		},
		cluster: true,
	}
}

// fastRedis notices expiries and outages in tens of milliseconds.
func fastRedis() redis.Options {
	return redis.Options{
		SweepInterval:     5 * time.Millisecond,
		IdleSweepInterval: 100 * time.Millisecond,
		ReconnectDelay:    20 * time.Millisecond,
		MaxReconnectDelay: 200 * time.Millisecond,
		Partitions:        8,
	}
}

// room and presence TTL of the multi-node tests.
const (
	tracked     = "test:room:multi-instance"
	presenceTTL = 3 * time.Second
)

// multiConfig is a node of the tests: Redis, Mesh's tracked room, records
// and a channel exposed, quick pings so that presence is refreshed.
func multiConfig(url string) Config {
	return Config{
		Redis: RedisConfig{URL: url, Options: fastRedis()},
		Mesh:  mesh.Options{PingInterval: 500 * time.Millisecond, NodeTTL: time.Second},
		Expose: Exposures{
			Channels:        []ChannelExposure{{Exposure: Exposure{Pattern: regexp.MustCompile(`^chat:`)}, History: 10}},
			Records:         []Exposure{{Pattern: regexp.MustCompile(`^test:record:`)}},
			WritableRecords: []Exposure{{Pattern: regexp.MustCompile(`^writable:record:`)}},
			Presence:        []PresenceExposure{{Exposure: Exposure{Name: tracked}, TTL: presenceTTL}},
		},
	}
}

// startNodes starts n nodes on the Redis at url, each with setup applied.
func startNodes(t *testing.T, url string, n int, setup func(i int, nd *Node)) []*Node {
	t.Helper()
	nodes := make([]*Node, n)
	for i := range nodes {
		nodes[i] = startNode(t, multiConfig(url))
		if setup != nil {
			setup(i, nodes[i])
		}
	}
	return nodes
}

// clientOn opens a Go client on nd (connect) and waits for its
// connection id.
func clientOn(t *testing.T, nd *Node) *client.Client {
	t.Helper()
	c := connect(t, nd)
	testutil.Eventually(t, wait, func() error {
		if c.ConnectionID() == "" {
			return errors.New("no connection id yet")
		}
		return nil
	})
	return c
}

// events collects what a callback receives, as strings.
type events struct {
	mu  sync.Mutex
	got []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.got = append(e.got, s)
	e.mu.Unlock()
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.got)
}

func (e *events) want(t *testing.T, s string) {
	t.Helper()
	testutil.Eventually(t, wait, func() error {
		if !slices.Contains(e.list(), s) {
			return fmt.Errorf("%q not received; got %q", s, e.list())
		}
		return nil
	})
}

func presenceEvent(u client.PresenceUpdate) string {
	s := u.Type + " " + u.ConnectionID
	if u.Type == protocol.PresenceState {
		s += " " + string(u.State)
	}
	return s
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestMultiNode(t *testing.T) {
	for _, topo := range []struct {
		name string
		open func(*testing.T) redisUnderTest
	}{{"single", singleRedis}, {"cluster", clusterRedis}} {
		t.Run(topo.name, func(t *testing.T) {
			r := topo.open(t) // one Redis (or cluster) for the whole group, flushed per case
			for _, tc := range multiNodeCases {
				t.Run(tc.name, func(t *testing.T) {
					must(t, r.flush())
					tc.run(t, r)
				})
			}
		})
	}
}

var multiNodeCases = []struct {
	name string
	run  func(t *testing.T, r redisUnderTest)
}{
	// C-multi-1: broadcast reaches every connection on every node.
	{"Broadcast", func(t *testing.T, r redisUnderTest) {
		nodes := startNodes(t, r.url, 3, nil)
		nodes[0].Mesh.Expose("broadcast", func(c *mesh.Context) (any, error) {
			return nil, c.Server.Broadcast(c, "hello", "Hello!")
		})
		var got [3]events
		clients := make([]*client.Client, 3)
		for i, nd := range nodes {
			clients[i] = clientOn(t, nd)
			clients[i].On("hello", func(p json.RawMessage) { got[i].add(string(p)) })
		}
		if _, err := clients[0].Command(tctx(t), "broadcast", map[string]any{}); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			got[i].want(t, `"Hello!"`)
		}
	}},
	// C-multi-2: a room joined on each node, broadcast from one.
	{"BroadcastRoom", func(t *testing.T, r redisUnderTest) {
		nodes := startNodes(t, r.url, 3, func(_ int, nd *Node) {
			nd.Mesh.Expose("join-room", func(c *mesh.Context) (any, error) {
				var req struct {
					Room string `json:"room"`
				}
				if err := c.Bind(&req); err != nil {
					return nil, err
				}
				return map[string]bool{"joined": true}, c.Server.AddToRoom(c, req.Room, c.Conn.ID())
			})
		})
		nodes[0].Mesh.Expose("broadcast-room", func(c *mesh.Context) (any, error) {
			var req struct {
				Room    string `json:"room"`
				Message string `json:"message"`
			}
			if err := c.Bind(&req); err != nil {
				return nil, err
			}
			return map[string]bool{"sent": true}, c.Server.BroadcastRoom(c, req.Room, "room-message", req.Message)
		})
		var got [3]events
		clients := make([]*client.Client, 3)
		for i, nd := range nodes {
			clients[i] = clientOn(t, nd)
			clients[i].On("room-message", func(p json.RawMessage) { got[i].add(string(p)) })
			if _, err := clients[i].Command(tctx(t), "join-room", map[string]string{"room": "test-room"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := clients[0].Command(tctx(t), "broadcast-room", map[string]string{"room": "test-room", "message": "hello"}); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			got[i].want(t, `"hello"`)
		}
	}},
	// C-record-15/16/17: record updates, server- and client-published,
	// full and patch, reach subscribers on every node, the writer's too.
	{"Records", func(t *testing.T, r redisUnderTest) {
		nodes := startNodes(t, r.url, 3, nil)
		clients := []*client.Client{clientOn(t, nodes[0]), clientOn(t, nodes[1]), clientOn(t, nodes[2])}
		recordEvent := func(u client.RecordUpdate) string {
			if u.Patch != nil {
				return fmt.Sprintf("v%d patch %s", u.Version, u.Patch)
			}
			return fmt.Sprintf("v%d full %s", u.Version, u.Value)
		}
		// Server-published, full mode (C-record-15).
		var full [3]events
		for i, c := range clients {
			res, err := c.SubscribeRecord(tctx(t), "test:record:multi-instance", client.RecordFull, func(u client.RecordUpdate) { full[i].add(recordEvent(u)) })
			if err != nil || !res.Success {
				t.Fatalf("subscribe: %+v, %v", res, err)
			}
		}
		must(t, nodes[0].Mesh.PublishRecordUpdate(tctx(t), "test:record:multi-instance", map[string]string{"value": "update1"}))
		for i := range full {
			full[i].want(t, `v1 full {"value":"update1"}`)
		}
		// Client-published, full and patch (C-record-16, 17).
		var patch [3]events
		for i, c := range clients {
			mode := client.RecordPatch
			if i == 1 {
				mode = client.RecordFull
			}
			if _, err := c.SubscribeRecord(tctx(t), "writable:record:multi-instance", mode, func(u client.RecordUpdate) { patch[i].add(recordEvent(u)) }); err != nil {
				t.Fatal(err)
			}
		}
		if ok, err := clients[0].PublishRecordUpdate(tctx(t), "writable:record:multi-instance", map[string]int{"count": 1}); err != nil || !ok {
			t.Fatalf("publish: %v, %v", ok, err)
		}
		if ok, err := clients[2].PublishRecordUpdate(tctx(t), "writable:record:multi-instance", map[string]any{"count": 1, "name": "added"}); err != nil || !ok {
			t.Fatalf("publish: %v, %v", ok, err)
		}
		for _, i := range []int{0, 2} {
			patch[i].want(t, `v1 patch [{"op":"add","path":"/count","value":1}]`)
			patch[i].want(t, `v2 patch [{"op":"add","path":"/name","value":"added"}]`)
		}
		patch[1].want(t, `v2 full {"count":1,"name":"added"}`)
	}},
	// C-presence-10/11/12/13 across three nodes: join, leave and a
	// disconnect reach a subscriber on another node; the initial present
	// list holds other nodes' connections and fires no callback.
	{"Presence", func(t *testing.T, r redisUnderTest) {
		nodes := startNodes(t, r.url, 3, nil)
		a, b, c := clientOn(t, nodes[0]), clientOn(t, nodes[1]), clientOn(t, nodes[2])
		var onA events
		res, err := a.SubscribePresence(tctx(t), tracked, func(u client.PresenceUpdate) { onA.add(presenceEvent(u)) })
		if err != nil || !res.Success || len(res.Present) != 0 {
			t.Fatalf("subscribe: %+v, %v", res, err)
		}
		jr, err := b.JoinRoom(tctx(t), tracked)
		if err != nil || !jr.Success || !slices.Contains(jr.Present, b.ConnectionID()) {
			t.Fatalf("join: %+v, %v", jr, err)
		}
		onA.want(t, "join "+b.ConnectionID())
		if ok, err := b.LeaveRoom(tctx(t), tracked); err != nil || !ok {
			t.Fatalf("leave: %v, %v", ok, err)
		}
		onA.want(t, "leave "+b.ConnectionID())
		if _, err := c.JoinRoom(tctx(t), tracked); err != nil {
			t.Fatal(err)
		}
		onA.want(t, "join "+c.ConnectionID())
		if ok, err := c.PublishPresenceState(tctx(t), tracked, map[string]string{"status": "typing"}, 0); err != nil || !ok {
			t.Fatalf("state: %v, %v", ok, err)
		}
		onA.want(t, `state `+c.ConnectionID()+` {"status":"typing"}`)
		cid := c.ConnectionID()
		_ = c.Close() // a disconnect is a leave (C-presence-12)
		onA.want(t, "leave "+cid)
		// C-presence-13: the initial list holds both other nodes' members.
		d, e := clientOn(t, nodes[1]), clientOn(t, nodes[2])
		for _, x := range []*client.Client{d, e} {
			if _, err := x.JoinRoom(tctx(t), tracked); err != nil {
				t.Fatal(err)
			}
		}
		f := clientOn(t, nodes[0])
		var onF events
		res, err = f.SubscribePresence(tctx(t), tracked, func(u client.PresenceUpdate) { onF.add(presenceEvent(u)) })
		if err != nil || !res.Success {
			t.Fatalf("subscribe: %+v, %v", res, err)
		}
		if got, want := setOf(res.Present), setOf([]string{d.ConnectionID(), e.ConnectionID()}); got != want {
			t.Fatalf("initial present %s, want %s", got, want)
		}
		// A sentinel: a later join, then nothing but it.
		if _, err := f.JoinRoom(tctx(t), tracked); err != nil {
			t.Fatal(err)
		}
		onF.want(t, "join "+f.ConnectionID())
		if got := onF.list(); len(got) != 1 {
			t.Fatalf("subscribing fired callbacks: %q", got)
		}
	}},
	// Rooms and commands across nodes: a node adds and removes another
	// node's connection (routed to its owner), members and metadata are
	// seen from every node.
	{"RoomsAndMetadata", func(t *testing.T, r redisUnderTest) {
		nodes := startNodes(t, r.url, 3, nil)
		a, b := clientOn(t, nodes[0]), clientOn(t, nodes[1])
		var gotB events
		b.On("news", func(p json.RawMessage) { gotB.add(string(p)) })
		// Node 2 puts b (on node 1) in a room; node 0 broadcasts to it. The
		// change reaches b's node as a message of its own, so it takes
		// effect there a moment later (roomsOn).
		must(t, nodes[2].Mesh.AddToRoom(tctx(t), "lobby", b.ConnectionID()))
		roomsOn(t, nodes[1], 1)
		if _, err := a.JoinRoom(tctx(t), "lobby"); err != nil {
			t.Fatal(err)
		}
		for _, nd := range nodes {
			members, err := nd.Mesh.RoomMembers(tctx(t), "lobby")
			must(t, err)
			if got, want := setOf(members), setOf([]string{a.ConnectionID(), b.ConnectionID()}); got != want {
				t.Fatalf("members seen by %s: %s, want %s", nd.Mesh.NodeID(), got, want)
			}
		}
		must(t, nodes[0].Mesh.BroadcastRoom(tctx(t), "lobby", "news", "one"))
		gotB.want(t, `"one"`)
		// Node 0 sends to b by id (routed to node 1).
		must(t, nodes[0].Mesh.Broadcast(tctx(t), "news", "direct", b.ConnectionID()))
		gotB.want(t, `"direct"`)
		// Removed from another node: it stops receiving the room.
		must(t, nodes[2].Mesh.RemoveFromRoom(tctx(t), "lobby", b.ConnectionID()))
		roomsOn(t, nodes[1], 0)
		must(t, nodes[0].Mesh.BroadcastRoom(tctx(t), "lobby", "news", "two"))
		must(t, nodes[0].Mesh.Broadcast(tctx(t), "news", "sentinel", b.ConnectionID()))
		gotB.want(t, `"sentinel"`)
		if slices.Contains(gotB.list(), `"two"`) {
			t.Fatal("a connection removed from a room by another node still got its broadcast")
		}
		// Metadata set on one node, read through a client of another.
		must(t, nodes[0].Mesh.SetConnectionMetadata(tctx(t), b.ConnectionID(), map[string]string{"user": "bob"}))
		meta, err := a.GetConnectionMetadata(tctx(t), b.ConnectionID())
		if err != nil || string(meta) != `{"user":"bob"}` {
			t.Fatalf("connection metadata through node 0: %s, %v", meta, err)
		}
		must(t, nodes[1].Mesh.SetRoomMetadata(tctx(t), "lobby", map[string]string{"topic": "hi"}))
		meta, err = a.GetRoomMetadata(tctx(t), "lobby")
		if err != nil || string(meta) != `{"topic":"hi"}` {
			t.Fatalf("room metadata through node 0: %s, %v", meta, err)
		}
	}},
	// Channels: a publish on one node, and one by redis-cli on the
	// channel's own name, reach subscribers on every node; history is
	// shared.
	{"Channels", func(t *testing.T, r redisUnderTest) {
		nodes := startNodes(t, r.url, 3, nil)
		var got [3]events
		for i, nd := range nodes {
			c := clientOn(t, nd)
			res, err := c.SubscribeChannel(tctx(t), "chat:lobby", func(m string) { got[i].add(m) })
			if err != nil || !res.Success {
				t.Fatalf("subscribe: %+v, %v", res, err)
			}
		}
		must(t, nodes[1].PublishToChannel(tctx(t), "chat:lobby", "from node 1"))
		for i := range got {
			got[i].want(t, "from node 1")
		}
		publish := "PUBLISH"
		if r.cluster {
			publish = "SPUBLISH" // a cluster's subscribers are sharded
		}
		if out, err := r.cli(publish, "chat:lobby", "from redis-cli"); err != nil {
			t.Fatalf("redis-cli %s: %v: %s", publish, err, out)
		}
		for i := range got {
			got[i].want(t, "from redis-cli")
		}
		late := clientOn(t, nodes[2])
		res, err := late.SubscribeChannel(tctx(t), "chat:lobby", func(string) {}, client.WithHistoryLimit(5))
		if err != nil || !slices.Equal(res.History, []string{"from node 1"}) {
			t.Fatalf("history through node 2: %+v, %v", res, err)
		}
	}},
	// A node that shuts down cleanly removes its clients at once: the
	// others see them leave rooms and presence without waiting for a TTL.
	{"CleanShutdown", func(t *testing.T, r redisUnderTest) {
		nodes := startNodes(t, r.url, 2, nil)
		a := clientOn(t, nodes[0])
		var onA events
		if _, err := a.SubscribePresence(tctx(t), tracked, func(u client.PresenceUpdate) { onA.add(presenceEvent(u)) }); err != nil {
			t.Fatal(err)
		}
		var leaving []string
		for range 3 {
			c := clientOn(t, nodes[1])
			if _, err := c.JoinRoom(tctx(t), tracked); err != nil {
				t.Fatal(err)
			}
			leaving = append(leaving, c.ConnectionID())
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		must(t, nodes[1].Shutdown(ctx))
		for _, id := range leaving {
			onA.want(t, "leave "+id)
		}
		members, err := nodes[0].Mesh.RoomMembers(tctx(t), tracked)
		must(t, err)
		present, err := nodes[0].Mesh.PresentConnections(tctx(t), tracked)
		must(t, err)
		if len(members) != 0 || len(present) != 0 {
			t.Fatalf("after the shutdown: members %q, present %q", members, present)
		}
		if took := time.Since(start); took > presenceTTL {
			t.Fatalf("cleanup took %v, no sooner than the presence TTL", took)
		}
	}},
}

// roomsOn waits until nd's connections are in n rooms.
func roomsOn(t *testing.T, nd *Node, n int) {
	t.Helper()
	testutil.Eventually(t, wait, func() error {
		if got := nd.Mesh.LocalTopics().Rooms; got != n {
			return fmt.Errorf("%s: connections in %d rooms, want %d", nd.Mesh.NodeID(), got, n)
		}
		return nil
	})
}

func setOf(s []string) string {
	c := slices.Clone(s)
	slices.Sort(c)
	return strings.Join(c, ",")
}

// status returns the HTTP status and body of GET path on nd.
func status(t *testing.T, nd *Node, path string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: wait}
	resp, err := c.Get("http://" + nd.Addr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Redis killed and restarted under three nodes and their clients (a
// single Redis, and every master of a cluster): while it is down, commands
// that need it fail at once with EUNAVAILABLE, /health says 503 and names
// it, and no client is disconnected; once it is back (empty), every node
// writes its connections, rooms and presence back, and everything works as
// before: presence lists everyone, channels and room broadcasts reach
// every node, new joins succeed.
func TestRedisRestartUnderClients(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		r := testutil.StartRedis(t)
		redisRestartUnderClients(t, "redis://"+r.Addr, r.Kill, func() { r.Restart(t) })
	})
	t.Run("cluster", func(t *testing.T) {
		rc := testutil.StartRedisCluster(t, 3)
		redisRestartUnderClients(t, "redis://"+strings.Join(rc.Addrs(), ",redis://"),
			func() {
				for _, n := range rc.Nodes {
					n.Kill()
				}
			},
			func() {
				for _, n := range rc.Nodes {
					n.Restart(t)
				}
				rc.WaitOK(t)
			})
	})
}

func redisRestartUnderClients(t *testing.T, url string, kill, restart func()) {
	nodes := startNodes(t, url, 3, nil)
	clients := make([]*client.Client, 3)
	var chat [3]events
	var ids []string
	for i, nd := range nodes {
		clients[i] = clientOn(t, nd)
		if _, err := clients[i].JoinRoom(tctx(t), tracked); err != nil {
			t.Fatal(err)
		}
		if _, err := clients[i].SubscribeChannel(tctx(t), "chat:lobby", func(m string) { chat[i].add(m) }); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, clients[i].ConnectionID())
	}
	var onA events
	if _, err := clients[0].SubscribePresence(tctx(t), tracked, func(u client.PresenceUpdate) { onA.add(presenceEvent(u)) }); err != nil {
		t.Fatal(err)
	}
	var disconnected events
	for i, c := range clients {
		c.OnDisconnect(func() { disconnected.add(strconv.Itoa(i)) })
	}
	if code, body := status(t, nodes[0], "/health"); code != 200 || !strings.Contains(body, `"coordinator":{"ok":true`) {
		t.Fatalf("/health before: %d %s", code, body)
	}
	if _, body := status(t, nodes[0], "/metrics"); !strings.Contains(body, "meshfast_redis_round_trips_total") ||
		!strings.Contains(body, "meshfast_redis_pubsub_dropped_total") {
		t.Fatalf("/metrics has no Redis figures:\n%s", body)
	}

	kill()
	start := time.Now()
	_, err := clients[1].JoinRoom(tctx(t), "another")
	var ce *protocol.CodeError
	if !errors.As(err, &ce) || ce.Code != protocol.CodeUnavailable {
		t.Fatalf("join with Redis down: %v, want %s", err, protocol.CodeUnavailable)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the join took %v to fail with Redis down, want it at once", took)
	}
	testutil.Eventually(t, wait, func() error {
		code, body := status(t, nodes[2], "/health")
		if code != 503 || !strings.Contains(body, `"coordinator":{"ok":false,"error":`) {
			return fmt.Errorf("/health with Redis down: %d %s", code, body)
		}
		return nil
	})
	if d := disconnected.list(); len(d) != 0 {
		t.Fatalf("clients disconnected while Redis was down: %q", d)
	}

	restart() // empty: everything the nodes wrote is gone
	testutil.Eventually(t, wait, func() error {
		present, err := nodes[1].Mesh.PresentConnections(tctx(t), tracked)
		if err != nil {
			return err
		}
		members, err := nodes[2].Mesh.RoomMembers(tctx(t), tracked)
		if err != nil {
			return err
		}
		if setOf(present) != setOf(ids) || setOf(members) != setOf(ids) {
			return fmt.Errorf("present %q, members %q, want %q", present, members, ids)
		}
		return nil
	})
	for _, nd := range nodes {
		testutil.Eventually(t, wait, func() error {
			if code, body := status(t, nd, "/health"); code != 200 {
				return fmt.Errorf("/health after the restart: %d %s", code, body)
			}
			return nil
		})
		_, body := status(t, nd, "/metrics")
		m := regexp.MustCompile(`(?m)^mesh_recoveries_total (\d+)$`).FindStringSubmatch(body)
		if m == nil || m[1] == "0" {
			t.Fatalf("%s did not recover:\n%s", nd.Mesh.NodeID(), body)
		}
	}
	// Channel messages reach every node's clients again (published until
	// one arrives: the pub/sub connections came back on their own time).
	testutil.Eventually(t, wait, func() error {
		msg := "after-" + strconv.FormatInt(time.Now().UnixNano(), 10)
		if err := nodes[1].PublishToChannel(tctx(t), "chat:lobby", msg); err != nil {
			return err
		}
		for i := range chat {
			if err := poll(time.Second, func() error {
				if !slices.Contains(chat[i].list(), msg) {
					return fmt.Errorf("client %d did not get %s", i, msg)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	// The clients work as before, on every node.
	for i, c := range clients {
		res, err := c.JoinRoom(tctx(t), "another")
		if err != nil || !res.Success {
			t.Fatalf("client %d joins after the restart: %+v, %v", i, res, err)
		}
	}
	must(t, nodes[0].Mesh.BroadcastRoom(tctx(t), tracked, "news", "back"))
	var news events
	clients[2].On("news", func(p json.RawMessage) { news.add(string(p)) })
	must(t, nodes[1].Mesh.BroadcastRoom(tctx(t), tracked, "news", "back again"))
	news.want(t, `"back again"`)
	if d := disconnected.list(); len(d) != 0 {
		t.Fatalf("clients disconnected: %q", d)
	}
}

// poll is testutil.Eventually returning the last error instead of failing.
func poll(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A Redis URL is checked with the rest of the configuration, and a Redis
// that is not there stops Start at once, saying so.
func TestRedisConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Redis: RedisConfig{URL: "http://127.0.0.1:6379"}},
		{Redis: RedisConfig{URL: "redis://127.0.0.1:6379", Options: redis.Options{Partitions: 5000}}},
		{Redis: RedisConfig{URL: "redis://127.0.0.1:6379"}, Mesh: mesh.Options{Coordinator: memoryCoordinator(t)}},
	} {
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidConfig", cfg.Redis, err)
		}
	}
	start := time.Now()
	_, err := Start(Config{Engine: engine.Options{Addr: "127.0.0.1:0"}, Redis: RedisConfig{URL: "redis://127.0.0.1:1"}})
	if !errors.Is(err, coord.ErrUnavailable) || !strings.Contains(err.Error(), "redis://127.0.0.1:1") {
		t.Fatalf("Start with no Redis there: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Start took %v to give up", took)
	}
}

func memoryCoordinator(t *testing.T) coord.Coordinator {
	m := memory.New(memory.Options{})
	t.Cleanup(func() { _ = m.Close() })
	return m
}
