package redis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/coord/redis"
	"github.com/meshfast/meshfast/internal/testutil"
)

// calls returns how many times the servers ran cmd (INFO commandstats).
func calls(t testing.TB, srv []*testutil.Redis, cmd string) int64 {
	t.Helper()
	var n int64
	for _, r := range srv {
		v, err := r.Do("INFO", "commandstats")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(v.(string), "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls="); ok {
				k, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
				n += k
			}
		}
	}
	return n
}

// numsub is the number of subscribers of a (shard) channel on r.
func numsub(t testing.TB, r *testutil.Redis, sharded bool, topic string) int64 {
	t.Helper()
	sub := "NUMSUB"
	if sharded {
		sub = "SHARDNUMSUB"
	}
	v, err := r.Do("PUBSUB", sub, topic)
	if err != nil {
		t.Fatal(err)
	}
	return v.([]any)[1].(int64)
}

// The last Unsubscribe of a topic keeps the node subscribed in Redis for
// UnsubscribeDelay: a handler that comes back meanwhile costs no SUBSCRIBE,
// a removed handler gets nothing, and the topic is dropped no sooner than
// the delay after its last handler left, many topics in few UNSUBSCRIBEs.
func TestUnsubscribeDelay(t *testing.T) {
	const delay = 300 * time.Millisecond
	t.Run("single", func(t *testing.T) {
		r := testutil.StartRedis(t)
		unsubscribeDelay(t, []string{r.Addr}, []*testutil.Redis{r}, func(string) *testutil.Redis { return r }, false, delay)
	})
	t.Run("cluster", func(t *testing.T) {
		rc := testutil.StartRedisCluster(t, 3)
		owner := func(topic string) *testutil.Redis {
			n, err := rc.SlotOwner(topic)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		unsubscribeDelay(t, rc.Addrs(), rc.Nodes, owner, true, delay)
	})
}

func unsubscribeDelay(t *testing.T, addrs []string, srv []*testutil.Redis, owner func(string) *testutil.Redis, sharded bool, delay time.Duration) {
	o := testOptions(addrs)
	o.UnsubscribeDelay = delay
	c := newCoord(t, o)
	ctx := t.Context()
	subCmd, unsubCmd := "subscribe", "unsubscribe"
	if sharded {
		subCmd, unsubCmd = "ssubscribe", "sunsubscribe"
	}
	const topic = "churn"
	var first received
	sub := mustV(c.Subscribe(ctx, topic, first.handler))(t)
	publishUntil(t, c, topic, &first)
	n0 := first.count()
	subs0 := calls(t, srv, subCmd)
	must(t, c.Unsubscribe(ctx, sub))
	if n := numsub(t, owner(topic), sharded, topic); n != 1 {
		t.Fatalf("NUMSUB right after the last Unsubscribe = %d, want 1 (lingering)", n)
	}
	must(t, c.Publish(ctx, topic, []byte("while-idle")))
	// A handler comes back: no SUBSCRIBE, and it receives at once.
	var second received
	sub = mustV(c.Subscribe(ctx, topic, second.handler))(t)
	must(t, c.Publish(ctx, topic, []byte("back")))
	testutil.Eventually(t, wait, func() error { return second.has(topic + "=back") })
	if n := calls(t, srv, subCmd) - subs0; n != 0 {
		t.Fatalf("%d %s for a topic taken back while lingering, want 0", n, subCmd)
	}
	if n := first.count(); n != n0 {
		t.Fatalf("a removed handler got %d messages after Unsubscribe", n-n0)
	}
	// Leave again: dropped in Redis no sooner than the delay after this
	// leave (the first leave's turn must not count).
	left := time.Now()
	must(t, c.Unsubscribe(ctx, sub))
	testutil.Eventually(t, wait, func() error {
		if n := numsub(t, owner(topic), sharded, topic); n != 0 {
			return fmt.Errorf("NUMSUB %d", n)
		}
		return nil
	})
	if took := time.Since(left); took < delay {
		t.Fatalf("unsubscribed %v after the last handler left, want no sooner than %v", took, delay)
	}
	if st := c.Stats(); st.Dissolved != 1 || st.Subscribed != 0 {
		t.Fatalf("Stats = %+v, want one dissolved topic and none subscribed", st)
	}

	// A mass leave: many topics, few UNSUBSCRIBEs on a single Redis (one
	// per ResubscribeBatch); a cluster needs one SUNSUBSCRIBE per slot,
	// sent in one pipeline per master.
	const many = 600
	unsubs0 := calls(t, srv, unsubCmd)
	var subsMany []coord.Subscription
	owners := make(map[string]*testutil.Redis, many)
	for i := range many {
		topic := fmt.Sprintf("room-%d", i)
		owners[topic] = owner(topic)
		subsMany = append(subsMany, mustV(c.Subscribe(ctx, topic, func(string, []byte) {}))(t))
	}
	for _, s := range subsMany {
		must(t, c.Unsubscribe(ctx, s))
	}
	testutil.Eventually(t, wait, func() error {
		if st := c.Stats(); st.Subscribed != 0 {
			return fmt.Errorf("%d topics still subscribed", st.Subscribed)
		}
		for i := range many {
			topic := fmt.Sprintf("room-%d", i)
			if numsub(t, owners[topic], sharded, topic) != 0 {
				return fmt.Errorf("%s still subscribed in Redis", topic)
			}
		}
		return nil
	})
	n := calls(t, srv, unsubCmd) - unsubs0
	// Those left in one half-delay window go together: unless the loop
	// above took longer than the delay, two windows at most, so at most
	// three batches of up to 512 topics.
	if limit := int64(4); !sharded && n > limit {
		t.Fatalf("%d topics dropped with %d %s, want at most %d", many, n, unsubCmd, limit)
	}
}

// BenchmarkSubscribeChurn: one topic taken and left over and over, as a
// room whose only local member leaves and joins again (or a client that
// reconnects): with the delay, neither costs a round trip.
func BenchmarkSubscribeChurn(b *testing.B) {
	r := testutil.StartRedis(b)
	for _, delay := range []time.Duration{-1, redis.DefaultUnsubscribeDelay} {
		b.Run("delay="+max(delay, 0).String(), func(b *testing.B) {
			o := benchOptions([]string{r.Addr})
			o.UnsubscribeDelay = delay
			c := newCoord(b, o)
			ctx := context.Background()
			srv := []*testutil.Redis{r}
			s0, u0 := calls(b, srv, "subscribe"), calls(b, srv, "unsubscribe")
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				sub, err := c.Subscribe(ctx, "churn", func(string, []byte) {})
				if err == nil {
					err = c.Unsubscribe(ctx, sub)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			n := calls(b, srv, "subscribe") - s0 + calls(b, srv, "unsubscribe") - u0
			b.ReportMetric(float64(n)/float64(b.N), "redis-cmds/op")
		})
	}
}
