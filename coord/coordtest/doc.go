// Package coordtest is the conformance suite that every coord.Coordinator
// backend passes (centrifuge's testMapBroker…(t, factory) pattern):
//
//	func TestConformance(t *testing.T) {
//		coordtest.Run(t, func(t *testing.T) coord.Coordinator {
//			return memory.New(memory.Options{SweepInterval: 5 * time.Millisecond})
//		})
//	}
//
// Run covers one coordinator; RunCluster covers several coordinators over
// one shared state (several Redis clients of one database, or one *Memory
// handed out n times), which is how nodes of a cluster see each other.
//
// Requirements on the factory: every call returns a coordinator over EMPTY
// state (a Redis factory flushes its database), whose expiries are detected
// within tens of milliseconds (short sweep interval; Redis keyspace
// notifications enabled). The suite closes what the factory returns, maybe
// more than once (Close must be idempotent). Subtests are not run in
// parallel, so they may share one backend that is emptied per call.
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
