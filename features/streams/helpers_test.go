package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord"
	coordmem "github.com/meshfast/meshfast/coord/memory"
	coordredis "github.com/meshfast/meshfast/coord/redis"
	"github.com/meshfast/meshfast/features/streams/store"
	memstore "github.com/meshfast/meshfast/features/streams/store/memory"
	redisstore "github.com/meshfast/meshfast/features/streams/store/redis"
	"github.com/meshfast/meshfast/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

const waitTimeout = 15 * time.Second

// backend makes n nodes over one shared, empty state: a store and a
// coordinator as n nodes of a cluster see them.
type backend struct {
	name  string
	nodes func(t testing.TB, n int, o Options) []*Streams
}

func bg(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func newNode(t testing.TB, o Options) *Streams {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// memoryBackend: one memory store and one memory coordinator shared by
// the nodes (nodes of one process).
func memoryBackend() backend {
	return backend{"memory", func(t testing.TB, n int, o Options) []*Streams {
		st := memstore.New(memstore.Options{})
		co := coordmem.New(coordmem.Options{})
		t.Cleanup(func() { _ = st.Close(); _ = co.Close() })
		out := make([]*Streams, n)
		for i := range out {
			o := o
			o.Store, o.PubSub = st, co
			out[i] = newNode(t, o)
		}
		return out
	}}
}

type flusher interface{ FlushAll() error }

type singleRedis struct{ r *testutil.Redis }

func (s singleRedis) FlushAll() error { _, err := s.r.Do("FLUSHALL"); return err }

// redisBackend: each node has its own Redis store and coordinator clients
// of one Redis (or Redis Cluster), flushed per call.
func redisBackend(name string, f flusher, addrs []string) backend {
	return backend{name, func(t testing.TB, n int, o Options) []*Streams {
		if err := f.FlushAll(); err != nil {
			t.Fatal(err)
		}
		out := make([]*Streams, n)
		for i := range out {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			st, err := redisstore.New(ctx, redisstore.Options{Addrs: addrs})
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			co, err := coordredis.New(ctx, coordredis.Options{Addrs: addrs, ReconnectDelay: 20 * time.Millisecond,
				MaxReconnectDelay: 200 * time.Millisecond, Partitions: 4})
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close(); _ = co.Close() })
			o := o
			o.Store, o.PubSub = st, co
			out[i] = newNode(t, o)
		}
		return out
	}}
}

// backends returns memory, a single Redis and a Redis Cluster (the Redis
// ones started once for the calling test).
func backends(t *testing.T) []backend {
	r := testutil.StartRedis(t)
	rc := testutil.StartRedisCluster(t, 3)
	return []backend{
		memoryBackend(),
		redisBackend("redis", singleRedis{r}, []string{r.Addr}),
		redisBackend("cluster", rc, rc.Addrs()),
	}
}

// collector records what a handler got, per room, in order.
type collector struct {
	mu     sync.Mutex
	seqs   map[string][]uint64
	events []*Event
	snaps  []string
	notify chan struct{}
}

func newCollector() *collector {
	return &collector{seqs: make(map[string][]uint64), notify: make(chan struct{}, 1)}
}

func (c *collector) handle(_ context.Context, ev *Event) error {
	c.mu.Lock()
	c.seqs[ev.Room] = append(c.seqs[ev.Room], ev.Sequence)
	c.events = append(c.events, ev)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return nil
}

func (c *collector) onSnapshot(room string, s *Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s == nil {
		c.snaps = append(c.snaps, room+"@none")
		return
	}
	c.snaps = append(c.snaps, room+"@"+strconv.FormatUint(s.LastSequence, 10)+":"+string(s.State))
	// The snapshot comes before any event of its room.
	if len(c.seqs[room]) > 0 {
		c.snaps = append(c.snaps, "LATE")
	}
}

func (c *collector) got(room string) []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.seqs[room])
}

// waitFor polls until room holds n events.
func (c *collector) waitFor(t testing.TB, room string, n int) []uint64 {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got := c.got(room)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %d events, want %d: %s", room, len(got), n, short(got))
		}
		select {
		case <-c.notify:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// wantRange fails unless got is exactly from..to.
func wantRange(t testing.TB, what string, got []uint64, from, to uint64) {
	t.Helper()
	ok := uint64(len(got)) == to-from+1
	for i := 0; ok && i < len(got); i++ {
		ok = got[i] == from+uint64(i)
	}
	if !ok && !(to < from && len(got) == 0) {
		t.Fatalf("%s: got %d events %s, want exactly %d..%d", what, len(got), short(got), from, to)
	}
}

func short(s []uint64) string {
	if len(s) <= 24 {
		return fmt.Sprint(s)
	}
	return fmt.Sprint(s[:12], "…", s[len(s)-12:])
}

func msg(room, typ string, n int) Message {
	return Message{Room: room, Type: typ, Payload: json.RawMessage(strconv.Itoa(n))}
}

func publishN(t testing.TB, s *Streams, room string, n int) {
	t.Helper()
	for i := 0; i < n; {
		k := min(100, n-i)
		batch := make([]Message, k)
		for j := range batch {
			batch[j] = msg(room, "t", i+j)
		}
		if _, err := s.PublishBatch(bg(t), batch); err != nil {
			t.Fatal(err)
		}
		i += k
	}
}

func subscribe(t testing.TB, s *Streams, o SubscribeOptions, h Handler) *Subscription {
	t.Helper()
	if o.OnError == nil {
		o.OnError = func(err error) { t.Errorf("subscription error: %v", err) }
	}
	sub, err := s.Subscribe(bg(t), o, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

var (
	_ coord.PubSub = (*coordmem.Memory)(nil)
	_ store.Store  = (*memstore.Store)(nil)
)
