package redis_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/coord/coordtest"
	"github.com/meshfast/meshfast/coord/redis"
	"github.com/meshfast/meshfast/internal/testutil"
)

// rueidis closes the connections a cluster topology refresh replaced
// 5 s later, and delays a lazy refresh, on goroutines that outlive the
// client.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*clusterClient)._refresh.func2"),
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*call).DelayDo.func1"))
}

// testOptions are fast to notice expiries and failures.
func testOptions(addrs []string) redis.Options {
	return redis.Options{
		Addrs:             addrs,
		SweepInterval:     5 * time.Millisecond,
		IdleSweepInterval: 50 * time.Millisecond,
		ReconnectDelay:    20 * time.Millisecond,
		MaxReconnectDelay: 200 * time.Millisecond,
		Partitions:        8,
	}
}

func newCoord(t testing.TB, o redis.Options) *redis.Coordinator {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := redis.New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// flusher empties a single Redis or every master of a cluster.
type flusher interface{ FlushAll() error }

type single struct{ r *testutil.Redis }

func (s single) FlushAll() error { _, err := s.r.Do("FLUSHALL"); return err }

func clusterFactory(f flusher, addrs []string) coordtest.ClusterFactory {
	return func(t *testing.T, n int) []coord.Coordinator {
		if err := f.FlushAll(); err != nil {
			t.Fatal(err)
		}
		cs := make([]coord.Coordinator, n)
		for i := range cs {
			cs[i] = newCoord(t, testOptions(addrs))
		}
		return cs
	}
}

func TestConformanceSingle(t *testing.T) {
	r := testutil.StartRedis(t)
	f := single{r}
	coordtest.RunAll(t, clusterFactory(f, []string{r.Addr}))
}

func TestConformanceRedisCluster(t *testing.T) {
	rc := testutil.StartRedisCluster(t, 3)
	coordtest.RunAll(t, clusterFactory(rc, rc.Addrs()))
}
