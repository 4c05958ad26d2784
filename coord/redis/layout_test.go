package redis_test

import (
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/meshfast/meshfast/internal/testutil"
)

// received collects what a handler got.
type received struct {
	mu   sync.Mutex
	msgs []string
}

func (r *received) handler(topic string, p []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, topic+"="+string(p))
	r.mu.Unlock()
}

func (r *received) has(msg string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Contains(r.msgs, msg) {
		return nil
	}
	return fmt.Errorf("%q not received (got %q)", msg, r.msgs)
}

func (r *received) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

const wait = 5 * time.Second

// On a single Redis the coordinator writes Mesh's keys, so redis-cli and a
// Mesh server read them.
func TestMeshKeyNames(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newCoord(t, testOptions([]string{r.Addr}))
	ctx := t.Context()
	must(t, c.RegisterConnection(ctx, "conn-1", "node-a"))
	must(t, c.SetConnectionMetadata(ctx, "conn-1", []byte(`{"u":1}`)))
	mustV(c.AddToRoom(ctx, "lobby", "conn-1"))(t)
	must(t, c.SetRoomMetadata(ctx, "lobby", []byte(`{"topic":"x"}`)))
	mustV(c.SetRecord(ctx, "rec", []byte(`{"v":1}`)))(t)
	mustV(c.SetRecord(ctx, "rec", []byte(`{"v":2}`)))(t)
	must(t, c.PublishToChannel(ctx, "chat", []byte("hi"), 5))
	mustV(c.JoinPresence(ctx, "lobby", "conn-1", time.Minute))(t)
	must(t, c.SetPresenceState(ctx, "lobby", "conn-1", []byte(`{"s":"typing"}`), 0))
	must(t, c.RegisterNode(ctx, "node-a", time.Minute))

	for _, tc := range []struct {
		args []string
		want any
	}{
		{[]string{"HGET", "mesh:connections", "conn-1"}, "node-a"},
		{[]string{"SMEMBERS", "mesh:connections:node-a"}, []any{"conn-1"}},
		{[]string{"HGET", "mesh:connection-meta", "conn-1"}, `{"u":1}`},
		{[]string{"SMEMBERS", "mesh:room:lobby"}, []any{"conn-1"}},
		{[]string{"SMEMBERS", "mesh:connection:conn-1:rooms"}, []any{"lobby"}},
		{[]string{"HGET", "mesh:roommeta:lobby", "data"}, `{"topic":"x"}`},
		{[]string{"GET", "mesh:record:rec"}, `{"v":2}`},
		{[]string{"GET", "mesh:record-version:rec"}, "2"},
		{[]string{"LRANGE", "history:chat", "0", "-1"}, []any{"hi"}},
		{[]string{"SMEMBERS", "mesh:presence:room:lobby"}, []any{"conn-1"}},
		{[]string{"GET", "mesh:presence:state:lobby:conn:conn-1"}, `{"s":"typing"}`},
		{[]string{"SMEMBERS", "mesh:instances"}, []any{"node-a"}},
		{[]string{"EXISTS", "mesh:instance:node-a:heartbeat"}, int64(1)},
	} {
		got, err := r.Do(tc.args...)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%v = %v (%v), want %v", tc.args, got, err, tc.want)
		}
	}
}

// A message published on a channel's name by redis-cli reaches the
// channel's subscribers on every node: PUBLISH on a single Redis, SPUBLISH
// (redis-cli -c, which follows the slot) on a cluster.
func TestRedisCLIPublish(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed")
	}
	t.Run("single", func(t *testing.T) {
		r := testutil.StartRedis(t)
		cliPublish(t, cli, []string{r.Addr}, []string{"-p", strconv.Itoa(r.Port), "PUBLISH"})
	})
	t.Run("cluster", func(t *testing.T) {
		rc := testutil.StartRedisCluster(t, 3)
		cliPublish(t, cli, rc.Addrs(), []string{"-c", "-p", strconv.Itoa(rc.Nodes[0].Port), "SPUBLISH"})
	})
}

func cliPublish(t *testing.T, cli string, addrs, args []string) {
	nodes := []*received{{}, {}}
	for _, n := range nodes {
		c := newCoord(t, testOptions(addrs))
		// Channels whose slots are spread over the masters.
		for _, ch := range []string{"chat", "news", "game:1"} {
			mustV(c.Subscribe(t.Context(), ch, n.handler))(t)
		}
	}
	for _, ch := range []string{"chat", "news", "game:1"} {
		out, err := exec.Command(cli, append(args, ch, "from redis-cli")...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli: %v: %s", err, out)
		}
		for _, n := range nodes {
			testutil.Eventually(t, wait, func() error { return n.has(ch + "=from redis-cli") })
		}
	}
}

// On a cluster every multi-key script's keys share a slot (rueidis would
// refuse the command otherwise), and sharded pub/sub is used.
func TestClusterLayout(t *testing.T) {
	rc := testutil.StartRedisCluster(t, 3)
	c := newCoord(t, testOptions(rc.Addrs()))
	if !c.Cluster() {
		t.Fatal("a Redis Cluster was not detected")
	}
	ctx := t.Context()
	var got received
	mustV(c.Subscribe(ctx, "a{b}", got.handler))(t) // braces: hashes on "b"
	must(t, c.PublishToChannel(ctx, "a{b}", []byte("m"), 2))
	testutil.Eventually(t, wait, func() error { return got.has("a{b}=m") })
	hist := mustV(c.ChannelHistory(ctx, "a{b}", 5))(t)
	if len(hist) != 1 || string(hist[0]) != "m" {
		t.Fatalf("history = %q", hist)
	}
	// Classic PUBLISH does not reach sharded subscribers: the cluster
	// coordinator is on SSUBSCRIBE.
	n, err := rc.SlotOwner("chat")
	if err != nil {
		t.Fatal(err)
	}
	var chat received
	mustV(c.Subscribe(ctx, "chat", chat.handler))(t)
	if v, err := n.Do("PUBSUB", "SHARDNUMSUB", "chat"); err != nil || fmt.Sprint(v) != "[chat 1]" {
		t.Fatalf("PUBSUB SHARDNUMSUB chat = %v, %v; want one sharded subscriber", v, err)
	}
	st := c.Stats()
	if st.Subscribed != 2 || st.PubSubConnects < 3 {
		t.Fatalf("Stats = %+v: want 2 topics and a connection per master", st)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustV[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// The pub/sub reader never waits for a slow handler: past a worker's queue
// messages are dropped and counted, and delivery goes on once it drains.
func TestPubSubDropsWhenFull(t *testing.T) {
	r := testutil.StartRedis(t)
	o := testOptions([]string{r.Addr})
	o.PubSubWorkers, o.PubSubQueue = 1, 4
	c := newCoord(t, o)
	ctx := t.Context()
	release := make(chan struct{})
	var got received
	mustV(c.Subscribe(ctx, "slow", func(topic string, p []byte) {
		<-release // a handler that breaks the contract and blocks
		got.handler(topic, p)
	}))(t)
	const n = 50
	for i := range n {
		must(t, c.Publish(ctx, "slow", []byte(strconv.Itoa(i))))
	}
	testutil.Eventually(t, wait, func() error {
		if st := c.Stats(); st.PubSubReceived < n {
			return fmt.Errorf("received %d of %d", st.PubSubReceived, n)
		}
		return nil
	})
	close(release)
	st := c.Stats()
	if st.PubSubDropped == 0 || st.PubSubDropped > n-4 {
		t.Fatalf("dropped %d of %d with a queue of 4 behind a blocked handler", st.PubSubDropped, n)
	}
	testutil.Eventually(t, wait, func() error {
		if got.count() != n-int(st.PubSubDropped) {
			return fmt.Errorf("delivered %d, want %d", got.count(), n-int(st.PubSubDropped))
		}
		return nil
	})
	must(t, c.Publish(ctx, "slow", []byte("after")))
	testutil.Eventually(t, wait, func() error { return got.has("slow=after") })
}
