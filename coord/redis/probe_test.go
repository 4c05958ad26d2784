package redis_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord/redis"
	"github.com/meshfast/meshfast/internal/testutil"
)

// A pub/sub connection that stays up but silently stops receiving, as
// after a failover that moved publishers to a new master while the
// subscriber stayed attached to the old one (centrifugo issue 1189): the
// node reaches Redis through a proxy, which is pointed at a second Redis,
// and the command connections are killed, so that they re-dial the second
// one while the pub/sub connection, still answering its keepalive PINGs,
// stays on the first. With probes, deliveries resume within two probe
// intervals; without, they never do.
func TestStaleSubscriberProbe(t *testing.T) {
	const interval = 300 * time.Millisecond
	t.Run("probes", func(t *testing.T) {
		c, a, second, stale := staleSubscriber(t, interval)
		var reconnected atomic.Int32
		defer c.OnReconnect(func() { reconnected.Add(1) })()
		start := stale()
		publishUntil(t, c, "topic", a)
		// Detection within two intervals of the last message (1.9 by
		// design), then a reconnect (ReconnectDelay) and a resubscribe.
		if took := time.Since(start); took > 2*interval+time.Second {
			t.Fatalf("deliveries resumed %v after the connection went stale, want within two probe intervals (%v) and a reconnect", took, 2*interval)
		}
		st := c.Stats()
		if st.ProbeRestarts != 1 || st.Probes == 0 || reconnected.Load() != 1 {
			t.Fatalf("Stats = %+v, OnReconnect called %d times: want one probe restart, reported", st, reconnected.Load())
		}
		// A pub/sub connection the server closes (CLIENT KILL TYPE pubsub)
		// is noticed at once, without a probe.
		if _, err := second.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
			t.Fatal(err)
		}
		publishUntil(t, c, "topic", a)
		if st := c.Stats(); st.ProbeRestarts != 1 || reconnected.Load() != 2 {
			t.Fatalf("after CLIENT KILL TYPE pubsub: Stats = %+v, OnReconnect called %d times", st, reconnected.Load())
		}
	})
	t.Run("off", func(t *testing.T) {
		c, got, _, stale := staleSubscriber(t, -1)
		stale()
		n := got.count()
		deadline := time.Now().Add(3 * interval)
		for i := 0; time.Now().Before(deadline); i++ {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = c.Publish(ctx, "topic", fmt.Appendf(nil, "lost-%d", i))
			cancel()
			time.Sleep(20 * time.Millisecond)
		}
		if got.count() != n {
			t.Fatal("a stale connection received: the test does not make it stale")
		}
	})
}

// staleSubscriber returns a coordinator subscribed to "topic" through a
// proxy, its received messages, the Redis it will be moved to, and a
// function that makes its pub/sub connection stale and returns when that
// started.
func staleSubscriber(t *testing.T, probe time.Duration) (*redis.Coordinator, *received, *testutil.Redis, func() time.Time) {
	t.Helper()
	first, second := testutil.StartRedis(t), testutil.StartRedis(t)
	p := testutil.StartProxy(t, first.Addr)
	o := testOptions([]string{p.Addr})
	o.ProbeInterval = probe
	c := newCoord(t, o)
	var got received
	mustV(c.Subscribe(t.Context(), "topic", got.handler))(t)
	publishUntil(t, c, "topic", &got)
	if probe > 0 {
		// Idle for more than an interval: a healthy idle connection probes
		// and stays.
		testutil.Eventually(t, wait, func() error {
			if c.Stats().Probes < 2 {
				return errors.New("no probes on an idle connection")
			}
			return nil
		})
		if st := c.Stats(); st.ProbeRestarts != 0 {
			t.Fatalf("a healthy idle connection was replaced: %+v", st)
		}
	}
	return c, &got, second, func() time.Time {
		start := time.Now()
		p.Retarget(second.Addr)
		if _, err := first.Do("CLIENT", "KILL", "TYPE", "normal"); err != nil {
			t.Fatal(err)
		}
		// The command client re-dials through the proxy: publishes now go
		// to the second Redis, which the pub/sub connection never hears.
		testutil.Eventually(t, wait, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := c.Publish(ctx, "topic", []byte("moved")); err != nil {
				return err
			}
			if n := calls(t, []*testutil.Redis{second}, "publish"); n == 0 {
				return errors.New("publishes do not reach the second Redis yet")
			}
			return nil
		})
		return start
	}
}

// On a cluster each master's pub/sub connection probes through a channel
// in one of that master's slots: an idle, healthy cluster node probes and
// replaces nothing, and still delivers.
func TestProbesOnCluster(t *testing.T) {
	rc := testutil.StartRedisCluster(t, 3)
	o := testOptions(rc.Addrs())
	o.ProbeInterval = 200 * time.Millisecond
	c := newCoord(t, o)
	var got received
	mustV(c.Subscribe(t.Context(), "topic", got.handler))(t)
	testutil.Eventually(t, wait, func() error {
		if n := c.Stats().Probes; n < 6 {
			return fmt.Errorf("%d probes, want two per master", n)
		}
		return nil
	})
	if st := c.Stats(); st.ProbeRestarts != 0 {
		t.Fatalf("healthy connections replaced: %+v", st)
	}
	publishUntil(t, c, "topic", &got)
}
