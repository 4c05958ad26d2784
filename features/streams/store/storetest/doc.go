// Package storetest is the conformance suite that every streams store
// backend passes (the shape of coord/coordtest). A backend gives it one
// constructor of n clients over one shared, empty state, and runs it once
// per deployment it supports:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, n int) []store.Store {
//			s := memory.New(memory.Options{})
//			return slices.Repeat([]store.Store{s}, n)
//		})
//	}
//
//	// store/redis: a single Redis and a Redis Cluster, each flushed per call
//	// and with n clients of its own, as n nodes see it.
//
// Every call of the factory must return stores over EMPTY state. The suite
// closes what the factory returns, maybe more than once (Close must be
// idempotent). Subtests do not run in parallel, so they may share one
// backend that is emptied per call.
//
// What it proves, test by test, is the store package's contract:
// sequences without gap or duplicate under concurrent appenders on several
// clients, idempotency under concurrent duplicates, retention by age and
// length (and that it frees idempotency keys without touching heads),
// reads that page through any backlog, monotonic cursors, snapshots, and
// read-your-writes across clients.
//
// Timing: TTLs in the suite are tens of milliseconds and every wait polls;
// nothing sleeps for a fixed time to prove that something happened.
package storetest
