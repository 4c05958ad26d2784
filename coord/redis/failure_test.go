package redis_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/coord/redis"
	"github.com/meshfast/meshfast/internal/testutil"
)

// failFast is how long a call may take to fail while Redis is down (it is
// refused at once; the bound leaves room for a loaded machine).
const failFast = time.Second

// publishUntil publishes numbered messages on topic until one reaches r:
// messages published while a subscription is being re-established are lost
// (pub/sub is at most once), so the test waits for a later one.
func publishUntil(t *testing.T, c *redis.Coordinator, topic string, r *received) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		msg := fmt.Sprintf("m%d", msgSeq.Add(1))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := c.Publish(ctx, topic, []byte(msg)); err != nil {
			return err
		}
		return poll(200*time.Millisecond, func() error { return r.has(topic + "=" + msg) })
	})
}

// msgSeq numbers test messages so that no two publishes look alike.
var msgSeq atomic.Uint64

func poll(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantUnavailable(t *testing.T, what string, err error, took time.Duration) {
	t.Helper()
	if !errors.Is(err, coord.ErrUnavailable) {
		t.Fatalf("%s with Redis down: %v, want ErrUnavailable", what, err)
	}
	if took > failFast {
		t.Fatalf("%s took %v to fail, want under %v", what, took, failFast)
	}
}

// Redis killed and restarted: calls fail fast with ErrUnavailable meanwhile,
// new subscriptions are refused until the connection is back, and the
// existing ones are resubscribed by themselves.
func TestRedisRestart(t *testing.T) {
	r := testutil.StartRedis(t)
	a := newCoord(t, testOptions([]string{r.Addr}))
	b := newCoord(t, testOptions([]string{r.Addr}))
	ctx := t.Context()
	var reconnected atomic.Int32
	defer b.OnReconnect(func() { reconnected.Add(1) })()
	var got received
	mustV(b.Subscribe(ctx, "topic", got.handler))(t)
	publishUntil(t, a, "topic", &got)

	must(t, b.Health(ctx))
	if n := reconnected.Load(); n != 0 {
		t.Fatalf("OnReconnect fired %d times before any loss", n)
	}
	r.Kill()
	if err := a.Health(ctx); !errors.Is(err, coord.ErrUnavailable) {
		t.Fatalf("Health with Redis down = %v", err)
	}
	start := time.Now()
	err := a.Publish(ctx, "topic", []byte("lost"))
	wantUnavailable(t, "Publish", err, time.Since(start))
	start = time.Now()
	_, err = a.AddToRoom(ctx, "room", "conn-1")
	wantUnavailable(t, "AddToRoom", err, time.Since(start))
	start = time.Now()
	_, err = a.JoinPresence(ctx, "room", "conn-1", time.Minute)
	wantUnavailable(t, "JoinPresence", err, time.Since(start))
	// Once b noticed, a new subscription fails fast instead of pretending.
	testutil.Eventually(t, wait, func() error {
		start := time.Now()
		_, err := b.Subscribe(ctx, "other", func(string, []byte) {})
		if err == nil {
			return errors.New("Subscribe succeeded with Redis down")
		}
		wantUnavailable(t, "Subscribe", err, time.Since(start))
		return nil
	})

	r.Restart(t)
	publishUntil(t, a, "topic", &got) // resubscribed by itself
	// The node is told, once its subscriptions are back, to write its state
	// again: the restarted Redis is empty.
	testutil.Eventually(t, wait, func() error {
		if reconnected.Load() == 0 {
			return errors.New("OnReconnect not called after Redis came back")
		}
		return nil
	})
	testutil.Eventually(t, wait, func() error { return b.Health(ctx) })
	var other received
	testutil.Eventually(t, wait, func() error { _, err := b.Subscribe(ctx, "other", other.handler); return err })
	publishUntil(t, a, "other", &other)
	// The restarted Redis lost its scripts: the first script call, of
	// either node (their sweepers make some), reloads them.
	if _, err := a.AddToRoom(ctx, "room", "conn-1"); err != nil {
		t.Fatalf("AddToRoom after restart: %v", err)
	}
	testutil.Eventually(t, wait, func() error {
		if a.Stats().ScriptLoads+b.Stats().ScriptLoads == 0 {
			return errors.New("scripts not reloaded after a NOSCRIPT")
		}
		return nil
	})
	if in, err := a.IsInRoom(ctx, "room", "conn-1"); err != nil || !in {
		t.Fatalf("IsInRoom after restart = %v, %v", in, err)
	}
	st := b.Stats()
	if st.PubSubConnects < 2 || st.Resubscribed < 1 || st.Subscribed != 2 || st.Reconnects != uint64(reconnected.Load()) {
		t.Fatalf("Stats = %+v: want a reconnect that resubscribed", st)
	}
	if a.Stats().Errors < 3 {
		t.Fatalf("errors not counted: %+v", a.Stats())
	}
}

// A hung Redis (SIGSTOP: connections stay open, nothing is answered): a
// call never outlives its context, and after the Redis resumes the pub/sub
// connection, which its keepalive closed, comes back with its topics.
func TestRedisHung(t *testing.T) {
	r := testutil.StartRedis(t)
	o := testOptions([]string{r.Addr})
	o.WriteTimeout = 300 * time.Millisecond
	o.KeepAlive = 100 * time.Millisecond
	o.DialTimeout = 300 * time.Millisecond
	a, b := newCoord(t, o), newCoord(t, o)
	var got received
	mustV(b.Subscribe(t.Context(), "topic", got.handler))(t)
	publishUntil(t, a, "topic", &got)
	connects := b.Stats().PubSubConnects

	r.Pause()
	for _, timeout := range []time.Duration{50 * time.Millisecond, 200 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		start := time.Now()
		_, err := a.RoomMembers(ctx, "room")
		took := time.Since(start)
		cancel()
		if err == nil {
			t.Fatal("RoomMembers answered by a stopped Redis")
		}
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, coord.ErrUnavailable) {
			t.Fatalf("RoomMembers on a hung Redis: %v", err)
		}
		if took > timeout+500*time.Millisecond {
			t.Fatalf("RoomMembers with a %v context took %v", timeout, took)
		}
	}
	// The pub/sub connection notices (its PING times out) and retries.
	testutil.Eventually(t, wait, func() error {
		start := time.Now()
		_, err := b.Subscribe(t.Context(), "probe", func(string, []byte) {})
		if err == nil {
			return errors.New("Subscribe succeeded on a hung Redis")
		}
		if took := time.Since(start); took > o.WriteTimeout+failFast {
			t.Fatalf("Subscribe on a hung Redis took %v", took)
		}
		return nil
	})
	r.Resume()
	publishUntil(t, a, "topic", &got)
	if b.Stats().PubSubConnects <= connects {
		t.Fatalf("pub/sub connection was not re-established: %+v", b.Stats())
	}
}

// helperEnv runs this test binary as a separate meshfast node that joins
// presence and then waits to be killed.
const helperEnv = "MESHFAST_REDIS_TEST_NODE"

func TestHelperNode(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("only run as a subprocess")
	}
	// spec: addrs|room|conns|ttl
	f := strings.Split(spec, "|")
	n, _ := strconv.Atoi(f[2])
	ttl, _ := time.ParseDuration(f[3])
	c, err := redis.New(context.Background(), testOptions(strings.Split(f[0], ",")))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	ctx := context.Background()
	if err := c.RegisterNode(ctx, "doomed", time.Minute); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	entries := make([]coord.PresenceEntry, n)
	for i := range n {
		id := fmt.Sprintf("conn-%d", i)
		if _, err := c.JoinPresence(ctx, f[1], id, ttl); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		entries[i] = coord.PresenceEntry{Room: f[1], ConnID: id, TTL: ttl}
	}
	fmt.Println("ready")
	// Keep refreshing, as a live node does, until killed.
	for {
		time.Sleep(ttl / 3)
		_ = c.RefreshPresence(ctx, entries)
	}
}

// A node killed with SIGKILL: its presence entries lapse within the TTL and
// each is reported exactly once across the surviving nodes.
func TestKilledNodePresence(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		r := testutil.StartRedis(t)
		killedNodePresence(t, []string{r.Addr})
	})
	t.Run("cluster", func(t *testing.T) {
		rc := testutil.StartRedisCluster(t, 3)
		killedNodePresence(t, rc.Addrs())
	})
}

func killedNodePresence(t *testing.T, addrs []string) {
	const room, conns, ttl = "lobby", 20, 400 * time.Millisecond
	var mu sync.Mutex
	reports := map[string]int{}
	survivors := make([]*redis.Coordinator, 2)
	for i := range survivors {
		survivors[i] = newCoord(t, testOptions(addrs))
		defer survivors[i].OnPresenceExpiry(func(e coord.Expiry) {
			mu.Lock()
			reports[e.Kind.String()+"/"+e.Room+"/"+e.ConnID]++
			mu.Unlock()
		})()
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperNode$")
	cmd.Env = append(os.Environ(), helperEnv+"="+strings.Join(addrs, ",")+"|"+room+"|"+strconv.Itoa(conns)+"|"+ttl.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("helper node: %q", line)
	}
	ctx := t.Context()
	if p := mustV(survivors[0].PresentConnections(ctx, room))(t); len(p) != conns {
		t.Fatalf("present before the kill: %d, want %d", len(p), conns)
	}
	// Outlive a TTL while the helper refreshes: the entries stay.
	time.Sleep(ttl + ttl/2)
	if p := mustV(survivors[1].PresentConnections(ctx, room))(t); len(p) != conns {
		t.Fatalf("present while refreshed: %d, want %d", len(p), conns)
	}
	_ = cmd.Process.Kill() // SIGKILL: no cleanup of any kind
	killed := time.Now()
	testutil.Eventually(t, wait, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(reports) < conns {
			return fmt.Errorf("%d of %d expiries reported", len(reports), conns)
		}
		return nil
	})
	// The last refresh was at most ttl/3 before the kill; the sweep of a
	// node that did not arm the deadline runs within IdleSweepInterval.
	if took := time.Since(killed); took > ttl+time.Second {
		t.Fatalf("expiries reported %v after the kill, want within the TTL (%v) and a sweep", took, ttl)
	}
	if p := mustV(survivors[0].PresentConnections(ctx, room))(t); len(p) != 0 {
		t.Fatalf("present after expiry: %q", p)
	}
	// A sentinel expiry after them all, then count: once each.
	mustV(survivors[1].JoinPresence(ctx, room, "sentinel", 20*time.Millisecond))(t)
	testutil.Eventually(t, wait, func() error {
		mu.Lock()
		defer mu.Unlock()
		if reports["presence/"+room+"/sentinel"] == 0 {
			return errors.New("sentinel not reported")
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	for i := range conns {
		if n := reports[fmt.Sprintf("presence/%s/conn-%d", room, i)]; n != 1 {
			t.Fatalf("conn-%d expiry reported %d times, want once: %v", i, n, reports)
		}
	}
	// The janitor side: the dead node is found once its heartbeat lapses
	// (a minute here), not before.
	if dead := mustV(survivors[0].DeadNodes(ctx))(t); len(dead) != 0 {
		t.Fatalf("DeadNodes = %q while the heartbeat lives", dead)
	}
}

// A cluster master killed and restarted: the other masters' slots keep
// working, calls on its slots fail fast, and its topics are resubscribed
// when it is back.
func TestClusterMasterRestart(t *testing.T) {
	rc := testutil.StartRedisCluster(t, 3)
	a := newCoord(t, testOptions(rc.Addrs()))
	b := newCoord(t, testOptions(rc.Addrs()))
	ctx := t.Context()
	victim := rc.Nodes[1]
	var onVictim, elsewhere string
	for i := 0; onVictim == "" || elsewhere == ""; i++ {
		topic := "topic-" + strconv.Itoa(i)
		n, err := rc.SlotOwner(topic)
		if err != nil {
			t.Fatal(err)
		}
		if n == victim && onVictim == "" {
			onVictim = topic
		} else if n != victim && elsewhere == "" {
			elsewhere = topic
		}
	}
	var got received
	mustV(b.Subscribe(ctx, onVictim, got.handler))(t)
	mustV(b.Subscribe(ctx, elsewhere, got.handler))(t)
	publishUntil(t, a, onVictim, &got)
	var reconnected atomic.Int32
	defer b.OnReconnect(func() { reconnected.Add(1) })()

	victim.Kill()
	publishUntil(t, a, elsewhere, &got) // the rest of the cluster works
	start := time.Now()
	err := a.Publish(ctx, onVictim, []byte("lost"))
	wantUnavailable(t, "Publish to a dead master's slot", err, time.Since(start))

	victim.Restart(t)
	rc.WaitOK(t)
	publishUntil(t, a, onVictim, &got)
	publishUntil(t, a, elsewhere, &got)
	testutil.Eventually(t, wait, func() error {
		if reconnected.Load() == 0 {
			return errors.New("OnReconnect not called after the master came back")
		}
		return nil
	})
}

// A slot migration: the master that loses a subscribed topic's slot drops
// the subscription (a server-side SUNSUBSCRIBE); the coordinator re-reads
// the slots and subscribes on the new owner.
func TestClusterSlotMigration(t *testing.T) {
	rc := testutil.StartRedisCluster(t, 3)
	a := newCoord(t, testOptions(rc.Addrs()))
	b := newCoord(t, testOptions(rc.Addrs()))
	const topic = "chat"
	var got received
	mustV(b.Subscribe(t.Context(), topic, got.handler))(t)
	publishUntil(t, a, topic, &got)

	src, err := rc.SlotOwner(topic)
	if err != nil {
		t.Fatal(err)
	}
	dst := rc.Nodes[0]
	if dst == src {
		dst = rc.Nodes[1]
	}
	slotV, _ := src.Do("CLUSTER", "KEYSLOT", topic)
	s := strconv.FormatInt(slotV.(int64), 10)
	srcID, _ := src.Do("CLUSTER", "MYID")
	dstID, _ := dst.Do("CLUSTER", "MYID")
	for _, step := range []struct {
		n    *testutil.Redis
		args []string
	}{
		{dst, []string{"CLUSTER", "SETSLOT", s, "IMPORTING", srcID.(string)}},
		{src, []string{"CLUSTER", "SETSLOT", s, "MIGRATING", dstID.(string)}},
		{dst, []string{"CLUSTER", "SETSLOT", s, "NODE", dstID.(string)}},
		{src, []string{"CLUSTER", "SETSLOT", s, "NODE", dstID.(string)}},
	} {
		if _, err := step.n.Do(step.args...); err != nil {
			t.Fatalf("%v on %s: %v", step.args, step.n.Addr, err)
		}
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		n, err := rc.SlotOwner(topic)
		if err != nil || n != dst {
			return fmt.Errorf("slot owner %v (%v), want %s", n, err, dst.Addr)
		}
		return nil
	})
	publishUntil(t, a, topic, &got)
	if v, err := dst.Do("PUBSUB", "SHARDNUMSUB", topic); err != nil || fmt.Sprint(v) != "[chat 1]" {
		t.Fatalf("new owner PUBSUB SHARDNUMSUB = %v, %v", v, err)
	}
}
