package redis_test

import (
	"context"
	"fmt"
	"slices"
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

// Commands:
//
//	go test -run '^$' -bench JoinStorm -benchtime 10000x ./coord/redis/
//	go test -run '^$' -bench 'Publish|CrossNode' ./coord/redis/

// servers is what a benchmark reads Redis's own counters from.
type servers []*testutil.Redis

// counters sums, over the servers, the commands Redis executed (INFO
// commandstats) and the reads it processed (INFO stats
// total_reads_processed: one per batch of commands a client wrote and
// Redis read at once, so Redis's side of a round trip).
func (s servers) counters(b *testing.B) (cmds, reads int64) {
	for _, r := range s {
		v, err := r.Do("INFO", "commandstats")
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(v.(string), "\n") {
			_, rest, ok := strings.Cut(line, ":calls=")
			if !ok || strings.HasPrefix(line, "cmdstat_info") {
				continue
			}
			n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
			cmds += n
		}
		v, err = r.Do("INFO", "stats")
		if err != nil {
			b.Fatal(err)
		}
		n, _ := strconv.ParseInt(testutil.InfoFields(v.(string))["total_reads_processed"], 10, 64)
		reads += n
	}
	return cmds, reads
}

// stormConcurrency is how many connections join at once in the storm.
const stormConcurrency = 10000

// BenchmarkJoinStorm: b.N connections of one node join tracked rooms at
// once. Two ways: "calls" does what Mesh's mesh/join-room does, against the
// coordinator, one awaited call per Redis step: AddToRoom, JoinPresence,
// Publish of the "join" event and PresentConnections for the reply (Mesh: 5
// awaited commands per join, each its own round trip); "joinroom" makes
// the one JoinRoom call that does all of it (coord.Joins), which the
// coordinator batches with the joins of other connections. Reported per
// join: the client's write syscalls (each a flush of the auto-pipeline: a
// round trip shared by every command in it), Redis's reads (one per batch
// of commands it read at once: its side of a round trip), the commands
// Redis ran (scripts count their inner commands), and the coordinator's
// awaited calls.
func BenchmarkJoinStorm(b *testing.B) {
	r := testutil.StartRedis(b)
	for _, how := range []struct {
		name string
		join joinFunc
	}{{"calls", joinByCalls}, {"joinroom", joinRoom}} {
		// MaxFlushDelay: off, rueidis' suggestion, centrifuge's and the
		// default, and a long one.
		for _, flush := range []time.Duration{-1, 20 * time.Microsecond, 100 * time.Microsecond, 500 * time.Microsecond} {
			name := how.name + "/single/flush=" + flush.String()
			if flush < 0 {
				name = how.name + "/single/flush=0"
			}
			b.Run(name, func(b *testing.B) {
				o := benchOptions([]string{r.Addr})
				o.MaxFlushDelay = flush
				joinStorm(b, o, servers{r}, func() error { _, err := r.Do("FLUSHALL"); return err }, how.join)
			})
		}
		b.Run(how.name+"/cluster", func(b *testing.B) {
			rc := testutil.StartRedisCluster(b, 3)
			joinStorm(b, benchOptions(rc.Addrs()), rc.Nodes, rc.FlushAll, how.join)
		})
	}
}

func benchOptions(addrs []string) redis.Options {
	return redis.Options{Addrs: addrs}
}

type joinFunc func(ctx context.Context, c *redis.Coordinator, room, id string, event []byte) error

func joinStorm(b *testing.B, o redis.Options, srv servers, flush func() error, join joinFunc) {
	if err := flush(); err != nil {
		b.Fatal(err)
	}
	c := newCoord(b, o)
	ctx := context.Background()
	const rooms = 100
	event := []byte(`{"type":"join","connectionId":"conn-x","roomName":"room","timestamp":1}`)
	b.ReportAllocs()
	st0 := c.Stats()
	cmds0, reads0 := srv.counters(b)
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	for range min(b.N, stormConcurrency) {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				id := "conn-" + strconv.FormatInt(i, 10)
				room := "room-" + strconv.FormatInt(i%rooms, 10)
				start := time.Now()
				if err := join(ctx, c, room, id, event); err != nil {
					failed.Store(err)
					return
				}
				lat[i] = time.Since(start)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	st := c.Stats()
	cmds, reads := srv.counters(b)
	n := float64(b.N)
	b.ReportMetric(float64(st.Writes-st0.Writes)/n, "writes/join")
	b.ReportMetric(float64(reads-reads0)/n, "redis-reads/join")
	b.ReportMetric(float64(cmds-cmds0)/n, "redis-cmds/join")
	b.ReportMetric(float64(st.RoundTrips-st0.RoundTrips)/n, "calls/join")
	b.ReportMetric(float64(st.Commands-st0.Commands)/float64(st.Writes-st0.Writes), "cmds/write")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// joinByCalls is Mesh's join-room, one coordinator call per Redis step.
func joinByCalls(ctx context.Context, c *redis.Coordinator, room, id string, event []byte) error {
	if _, err := c.AddToRoom(ctx, room, id); err != nil {
		return err
	}
	fresh, err := c.JoinPresence(ctx, room, id, time.Minute)
	if err != nil {
		return err
	}
	if fresh {
		if err := c.Publish(ctx, coord.PresenceTopic(room), event); err != nil {
			return err
		}
	}
	_, err = c.PresentConnections(ctx, room)
	return err
}

// joinRoom is the same join as one JoinRoom call.
func joinRoom(ctx context.Context, c *redis.Coordinator, room, id string, event []byte) error {
	_, err := c.JoinRoom(ctx, room, id, time.Minute, event)
	return err
}

// BenchmarkPublish: concurrent publishers on one node (a Redis without
// subscribers: the cost of getting the message to Redis).
func BenchmarkPublish(b *testing.B) {
	r := testutil.StartRedis(b)
	c := newCoord(b, benchOptions([]string{r.Addr}))
	payload := []byte(`{"command":"chat","payload":{"text":"hello, world"}}`)
	b.ReportAllocs()
	st0 := c.Stats()
	b.SetParallelism(16) // 16 × GOMAXPROCS publishing goroutines
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := c.Publish(ctx, "chat", payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
	st := c.Stats()
	b.ReportMetric(float64(st.Commands-st0.Commands)/float64(st.Writes-st0.Writes), "cmds/write")
}

// BenchmarkCrossNodeLatency: node A publishes, node B's handler receives;
// one message in flight at a time, so ns/op is the publish-to-receive
// latency through one Redis (p50 and p99 reported too).
func BenchmarkCrossNodeLatency(b *testing.B) {
	r := testutil.StartRedis(b)
	a := newCoord(b, benchOptions([]string{r.Addr}))
	bn := newCoord(b, benchOptions([]string{r.Addr}))
	got := make(chan struct{}, 1)
	if _, err := bn.Subscribe(context.Background(), "lat", func(string, []byte) { got <- struct{}{} }); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	payload := []byte("ping")
	// Warm up: the subscription is live once a message arrives.
	testutil.Eventually(b, 5*time.Second, func() error {
		if err := a.Publish(ctx, "lat", payload); err != nil {
			return err
		}
		select {
		case <-got:
			return nil
		case <-time.After(100 * time.Millisecond):
			return fmt.Errorf("not delivered")
		}
	})
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := a.Publish(ctx, "lat", payload); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			b.Fatal("message lost")
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
