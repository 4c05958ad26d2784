// Package redis is the streams store on Redis or Redis Cluster, through
// rueidis, on Redis Streams. It gives every guarantee of the store package
// (see its documentation). Redis 7.0 or later.
//
//	s, err := redis.New(ctx, redis.Options{Addrs: []string{"127.0.0.1:6379"}})
//	defer s.Close()
//
// # Keys
//
// Every key of a room starts with Prefix (DefaultPrefix "zps:") and the
// room in braces, a hash tag, so that on a Redis Cluster all of a room's
// keys live in one slot and each operation on a room is one script on one
// node:
//
//	zps:{chat:123}:seq          the head: the last sequence assigned (INCR)
//	zps:{chat:123}:events       the events, a stream whose entry ids are "<seq>-0"
//	zps:{chat:123}:id:<eventId> an idempotency key: the event's sequence
//	zps:{chat:123}:cursors      hash subscriberId → acknowledged sequence
//	zps:{chat:123}:snapshot     hash s → lastSequence, v → state
//
// A stream entry holds the event's fields: i (id), t (type), w (emittedAt,
// ms), x (expiresAt, ms) and, when present, p (payload), m (metadata) and
// c (encrypted). Its id is its sequence, so a replay after a sequence is
// one XRANGE, with no index to keep.
//
// # Scripts
//
// Each operation on a room is one Lua script (lua/, embedded), run with
// EVALSHA and, after a NOSCRIPT, EVAL:
//
//   - append.lua, the publish path: for the room's events of one Append
//     call, the idempotency check (GET of the id key, the entry it names
//     still unexpired), INCR of the head, XADD at "<seq>-0" and SET of
//     the id key (expiring with the event), the trim to MaxLen, and the
//     stream's expiry (the latest of its events'). One script, so a crash
//     never leaves a sequence without its event or an event without its
//     sequence, and the room's events of one call are appended as a unit.
//     It also removes a few expired events from the oldest end.
//   - read.lua: the head and one XRANGE from after+1, filtered by expiry
//     and type on the server, consistent with each other.
//   - ack.lua, snapshot_set.lua: compare with the head, then move forward
//     only.
//   - prune.lua: removal from the oldest end in bounded steps, each
//     idempotency key with its event.
//
// An Append of several rooms is one round trip: one script per room, in
// one pipeline (on a cluster, rueidis sends each master its share).
//
// Retention: an event's id key expires with the event; the stream expires
// with its longest-lived event, so an idle room's events leave Redis with
// no pruner; the head, cursors and snapshot never expire.
//
// # Concurrency
//
// Safe from any goroutine; every method may block on Redis and honours its
// context. Concurrent calls share rueidis' auto-pipeline.
package redis
