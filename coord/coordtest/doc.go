// Package coordtest is the conformance suite that every coord.Coordinator
// backend passes (centrifuge's testMapBroker…(t, factory) pattern). A
// backend gives it one constructor and runs it once per deployment it
// supports:
//
//	func TestConformance(t *testing.T) {
//		coordtest.RunAll(t, func(t *testing.T, n int) []coord.Coordinator {
//			m := memory.New(memory.Options{SweepInterval: 5 * time.Millisecond})
//			t.Cleanup(func() { m.Close() })
//			return slices.Repeat([]coord.Coordinator{m}, n)
//		})
//	}
//
//	// coord/redis, for instance:
//	func TestRedis(t *testing.T)        { coordtest.RunAll(t, clients(testutil.Redis(t))) }
//	func TestRedisCluster(t *testing.T) { coordtest.RunAll(t, clients(testutil.RedisCluster(t))) }
//
// where the factory flushes the (cluster's) data and returns n clients of
// it, as n nodes see it. RunAll runs Run on one coordinator, then
// RunCluster on several; they can also be run on their own.
//
// Run covers the Coordinator's methods, then coord.Admin's if the
// coordinator implements it; the Admin tests are skipped otherwise, and no
// other test needs Admin (memory's tests run the suite both ways).
// RunCluster covers several coordinators over one shared state (several
// Redis clients of one database, or one *Memory handed out n times), which
// is how nodes of a cluster see each other.
//
// Requirements on the factory: every call returns coordinators over EMPTY
// state (a Redis factory flushes its database, on every primary of a
// cluster), whose expiries are detected within tens of milliseconds (a
// short sweep interval: memory's SweepInterval, coord/redis'
// SweepInterval and IdleSweepInterval; no keyspace notifications are
// needed).
// The suite closes what the factory returns, maybe more than once (Close
// must be idempotent). Subtests are not run in parallel, so they may share
// one backend that is emptied per call.
//
// Values: coordinators return values as given, so the suite compares them
// byte for byte, and fails on an expected value that is not valid JSON
// (see wantJSON); only a value whose spelling it cannot know (concurrent
// merges) is compared with jsonx.Equal, still type-strict.
//
// Timing: TTLs in the suite are 30–300 ms and every wait polls (eventually)
// with a generous deadline; nothing sleeps for a fixed time to prove that
// something happened. To prove that something did NOT happen (no delivery
// after Unsubscribe, one expiry report only), the suite waits for a later
// sentinel event that the backend must deliver after it.
//
// Concurrency: the suite calls the coordinator from several goroutines and
// is meant to be run with -race.
package coordtest
