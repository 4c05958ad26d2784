package redis_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshfast/meshfast/features/streams/store"
	"github.com/meshfast/meshfast/features/streams/store/redis"
	"github.com/meshfast/meshfast/features/streams/store/storetest"
	"github.com/meshfast/meshfast/internal/testutil"
)

// rueidis closes the connections a cluster topology refresh replaced
// later, on goroutines that outlive the client.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*clusterClient)._refresh.func2"),
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*call).DelayDo.func1"))
}

func newStore(t testing.TB, o redis.Options) *redis.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := redis.New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

type flusher interface{ FlushAll() error }

type single struct{ r *testutil.Redis }

func (s single) FlushAll() error { _, err := s.r.Do("FLUSHALL"); return err }

func factory(f flusher, addrs []string) storetest.Factory {
	return func(t *testing.T, n int) []store.Store {
		if err := f.FlushAll(); err != nil {
			t.Fatal(err)
		}
		ss := make([]store.Store, n)
		for i := range ss {
			ss[i] = newStore(t, redis.Options{Addrs: addrs})
		}
		return ss
	}
}

func TestConformanceSingle(t *testing.T) {
	r := testutil.StartRedis(t)
	storetest.Run(t, factory(single{r}, []string{r.Addr}))
}

func TestConformanceCluster(t *testing.T) {
	rc := testutil.StartRedisCluster(t, 3)
	storetest.Run(t, factory(rc, rc.Addrs()))
}
