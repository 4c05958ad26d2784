// Package store defines where the streams feature keeps durable events:
// the Store interface every backend implements, its request and result
// types, and the guarantees each method must give. Backends:
//
//   - store/memory: in the process, the embedded default of a single node;
//   - store/redis: Redis or Redis Cluster (Redis Streams), for several
//     nodes.
//
// PostgreSQL, MongoDB and hybrid storage implement the same interface
// later; every backend passes the conformance suite in store/storetest.
//
// A store only stores: it assigns sequences, keeps events, cursors and
// snapshots, and answers reads. Live fan-out to subscribers is the
// feature's, over coord.PubSub, so that any store can be paired with any
// coordinator (hybrid mode: PostgreSQL storage, Redis fan-out).
//
// # What every backend guarantees
//
// Sequences. Each room has a head, the last sequence assigned (0 before
// the first event). Append assigns head+1 and stores the event in one
// atomic step: no reader, on any node, ever sees a sequence without its
// event or an event without its sequence, and a crash leaves either both
// or neither. Sequences of a room are therefore 1, 2, 3… without gap or
// duplicate, whatever the number of concurrent appenders, store clients
// and nodes; and every sequence up to the head is stored, unless retention
// removed it. Events of one room in one Append call get ascending
// sequences in the order given.
//
// Idempotency. An AppendRequest with Dedupe whose event id is already
// stored in the same room (and still retained) stores nothing and returns
// the stored event, marked Duplicate; this holds for concurrent duplicates
// too (exactly one of them is stored). Ids are scoped to their room. Once
// the first event has left retention, the id may be used again.
//
// Retention. Every event expires at EmittedAt+TTL: reads stop returning
// it at once; it is removed physically, with its idempotency key, by
// Prune, by later appends to its room and, where the backend can, by the
// backend's own expiry. Removal is from the oldest end, up to the first
// event that has not expired (with one TTL per room, exactly the expired
// ones). A MaxLen keeps only the newest MaxLen events of the room. Heads,
// cursors and snapshots are never removed by retention: a room whose
// events all expired continues at head+1.
//
// Reads. Read returns events in ascending sequence order and says how far
// it looked (Page.Last), so that a reader can page through any backlog
// with bounded memory; it examines at most Limit stored sequences per
// call. A read reflects every Append, Ack and SetSnapshot that returned
// before it started, on any node (read-your-writes; no cache may serve
// older data).
//
// Cursors. Ack moves a (room, subscriber) cursor forward only: a late or
// repeated ack never moves it back. It refuses a sequence beyond the
// room's head.
//
// Snapshots. SetSnapshot replaces a room's snapshot unless the stored one
// is newer (a higher LastSequence); it refuses a LastSequence beyond the
// head.
//
// Failures. A method that returns an error wrapping ErrUnavailable may or
// may not have taken effect; an Append that fails applied each of its
// requests entirely or not at all (which ones is unknown), so a retry with
// Dedupe is safe.
//
// # Concurrency
//
// Every method is safe from any goroutine and may block on the backend,
// honouring its context. Byte slices passed in may be reused by the caller
// once the method returns; byte slices returned (payloads, metadata,
// snapshot state) may be shared with the store and must not be modified.
package store
