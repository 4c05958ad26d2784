// Package redis is the coord.Coordinator (and coord.Admin) on Redis and on
// Redis Cluster, through rueidis: several meshfast nodes on one Redis share
// rooms, presence, metadata, channels, records and routing, and a client on
// node A sees what it would see if everyone were on node A.
//
//	c, err := redis.New(ctx, redis.Options{Addrs: []string{"127.0.0.1:6379"}})
//	if err != nil { ... } // coord.ErrUnavailable: Redis could not be reached
//	defer c.Close()
//
// A Redis Cluster is detected from the addresses (any of its nodes will do);
// everything below that differs on a cluster says so.
//
// # Routing scales with nodes, not members
//
// A node subscribes to what its local connections need, once per topic
// whatever the number of its connections, and drops the subscription
// UnsubscribeDelay after the last of them left, unless one came back
// (features/mesh keeps the count): a user channel's own
// name, "mesh:broadcast:room:<room>" for each room with local members,
// "mesh:presence:updates:<room>" for each room with local presence
// subscribers, "mesh:record-updates:<id>" for each record with local
// subscribers, plus "mesh:broadcast:all" and its own "mesh:pubsub:<node>"
// for sends to given connections. A broadcast to a room of 100k connections
// is one PUBLISH that Redis hands once to each node with members in the
// room, which encodes the frame once and fans it out through the engine's
// per-loop tables; nothing fetches member ids. The per-node topic is used
// only where the sender names connections (Mesh's broadcast to ids, a room
// change for a connection of another node): one message per owning node,
// routed with one HMGET of the registry. Per-topic subscriptions rather
// than Mesh's per-node inbox for everything, because an inbox needs the
// member list to route a room broadcast (Mesh's HMGET of every member and
// one PUBLISH per instance), which grows with members.
//
// # Batching
//
// Every call goes through one auto-pipelined rueidis client: calls made at
// the same time by different connections (pongs, handshakes) share writes.
// MaxFlushDelay (DefaultMaxFlushDelay, 100 µs as centrifuge runs) lets the
// writer wait that long for more after each flush when several callers are
// waiting; a lone caller is never delayed. Where the server has many items
// at hand the call is one round trip however many items: ConnectionNodes
// (one HMGET per partition), RefreshPresence (one script per room, the
// server's batch of pongs per flush: never a timer per connection),
// PublishBatch, RoomMembers on a cluster; rueidis' DoMulti sends a
// cluster's share of each node in parallel.
//
// Joins are batched by the coordinator itself (join.go): JoinRoom is Mesh's
// whole join-room in one call, and concurrent calls are a group commit,
// the joins that arrive while JoinBatches batches are in flight leaving
// together as one script per partition (membership and presence), in one
// round trip. Auto-pipelining alone shared a write between ~6 joins of a
// storm (4 calls each, ~22 commands per write at 100 µs); the group commit
// sends 10,000 concurrent joins in a handful of round trips, with fewer
// commands and far less CPU per join on both sides, and a lone join still
// leaves at once. BenchmarkJoinStorm measures both (Stats.Writes and
// Redis's INFO); perf/results.md has the figures.
//
// # Atomicity: Lua scripts
//
// What must not be seen half done is one Lua script (lua/*.lua, embedded,
// run as EVALSHA so it can share a pipeline; a NOSCRIPT after a Redis
// restart falls back to EVAL once), over keys that live together:
//
//   - membership: a room's member set and the connection's room set change
//     together (join, leave, leave-all, clear, the connection's removal);
//   - records: the value, its version and a canonical hash of its JSON, so
//     that "unchanged" (jsonx.Equal: key order, 1 vs 1.0) is decided in the
//     script and a change is stored and bumped in the same round trip; a
//     value without a hash (written by Mesh) is compared in Go and stored
//     with a compare-and-set on its version;
//   - history: push, trim to exactly N and PUBLISH (SPUBLISH) in one step;
//   - presence: join, refresh, leave, state set/clear, reads (filtered by
//     deadline), and the sweep;
//   - registry: owner entry and node set; room metadata's merge is a
//     compare-and-set (the merge is jsonx.MergeObjects, in Go).
//
// Publishing a record update stays the server's separate Publish: its
// payload carries a patch computed from the old value the script returns.
//
// # Presence expiry, reported exactly once
//
// Mesh gives each presence entry a key with a TTL and learns of expiries
// through keyspace notifications, which every instance receives (N
// duplicate "leave" events), which are lost while a subscriber is
// disconnected (a member then stays forever), and which a cluster does not
// broadcast. Here, as in centrifuge's presence, each room has a sorted set
// of deadlines in Redis time ("p"+id for an entry, "s"+id for a state with
// an expiry); reads leave out what has passed, so a lapsed entry is gone at
// once. Every node runs a sweeper: one script per partition removes what has
// lapsed in the rooms its due-index says are due and returns it; the
// removal and the report are one atomic step, so with any number of nodes
// sweeping each lapse is reported by exactly one, to that node's earliest
// ExpiryHandler. A node sweeps when something it armed is due (at most once
// per SweepInterval) and at least every IdleSweepInterval, which bounds how
// late the entries of a node killed with SIGKILL are reported. Every node
// of a cluster should register a handler: a node without one still sweeps,
// and an expiry it wins is not reported.
//
// # Keys
//
// On a single Redis the keys are Mesh's (mesh-protocol state.md §3), so
// redis-cli and a Mesh server read them: mesh:connections,
// mesh:connections:<node>, mesh:connection-meta (Mesh's successor),
// mesh:room:<room>, mesh:connection:<id>:rooms, mesh:roommeta:<room> (field
// data), mesh:record:<id>, mesh:record-version:<id>, history:<channel>,
// mesh:presence:room:<room> (the present ids, kept for Mesh's readers),
// mesh:presence:state:<room>:conn:<id>, mesh:instances,
// mesh:instance:<node>:heartbeat. Meshfast adds mesh:record-hash:<id>,
// mesh:presence:deadlines:<room> and mesh:presence:due. On a cluster, keys
// that a script takes together carry a hash tag (see layout in keys.go):
// {<id>} for a record, {<channel>} for a history list (the SPUBLISH in its
// script is on the channel's untagged name, which hashes the same), and a
// partition tag {mfN} (Options.Partitions, spread evenly over the slots) for
// a connection's registry entry, metadata, room set and its share of each
// room's members, and for a room's presence with its partition's
// due-index. Room metadata and node liveness keep Mesh's names.
//
// # Pub/sub
//
// Topics are Redis channels of the same name: a message PUBLISHed on a
// channel's name by any client (redis-cli, a backend in another language)
// reaches that channel's subscribers on every node. On a cluster pub/sub is
// sharded (SSUBSCRIBE/SPUBLISH, so a message goes only to the master that
// owns its slot and the nodes subscribed there, not over the whole cluster
// bus): redis-cli -c SPUBLISH <channel> <message>.
//
// Each pub/sub connection is a rueidis dedicated connection with
// SetPubSubHooks, in the shape of centrifuge's Redis broker: one on a
// single Redis; on a cluster one per master, carrying the topics of the
// slots it serves (rueidis binds a cluster dedicated connection to one
// slot, and SSUBSCRIBE is answered only by the slot's owner). A runner
// goroutine per connection (re)establishes it, resubscribes every topic it
// carries in batches of ResubscribeBatch (one slot per SSUBSCRIBE) in one
// pipeline, and only then publishes the connection: until then Subscribe
// fails fast with coord.ErrUnavailable instead of returning a subscription
// that misses messages. The hooks never block: a message goes to one of
// PubSubWorkers goroutines chosen by topic (which keeps a topic's order),
// and is dropped and counted (Stats.PubSubDropped) when that queue is full,
// because a blocked reader can deadlock rueidis. A slot migration or a
// failover is followed: a master that loses a slot drops its subscribers
// with a SUNSUBSCRIBE, which makes the node re-read the slot map (it also
// does every TopologyRefreshInterval) and subscribe the topic on the new
// owner; a new master gets a connection of its own.
//
// A connection can also stay up and stop receiving: attached to a master
// that failed over while publishers moved to the new one, Redis neither
// closes it nor says anything (centrifugo issue 1189). So a connection that
// received nothing for ProbeInterval publishes a probe to a channel of its
// own (mesh:probe:<random>, on a cluster tagged into one of its master's
// slots) through the command client, the way every publisher reaches
// Redis; if the probe is not back half an interval later the connection is
// replaced, within two intervals of its last message (Stats.Probes,
// ProbeRestarts).
//
// Messages published while a connection is down are lost: Redis pub/sub is
// at most once. Records heal on their next update (clients detect the
// version gap); the server should re-send what it must after
// Stats.PubSubConnects grows.
//
// # Failures
//
// A call that cannot reach Redis fails fast with an error wrapping
// coord.ErrUnavailable (connection refused at once; a silent Redis within
// WriteTimeout); a call never outlives its context (context.Canceled or
// DeadlineExceeded, wrapped); after Close, coord.ErrClosed. Nothing is
// retried behind the caller's back (rueidis' retries are off): the caller
// decides. Pub/sub connections come back by themselves, with backoff from
// ReconnectDelay to MaxReconnectDelay, and resubscribe. State a restarted
// Redis lost is not re-created here: the server owns its live connections
// and registers them again when OnReconnect tells it that a pub/sub
// connection came back (coord.Recovery; any reconnect, since a Redis out
// of reach long enough lost this node's presence to the sweep and its
// registry to another node's janitor, even without a restart).
//
// # Client-side caching: nowhere
//
// Every value the server reads often is written often (records, presence),
// or must be exact right after a write on any node (routing, membership,
// presence), or is read rarely (room metadata: once per get-room-metadata
// command). rueidis' cache can serve a node its own stale value right after
// its own write (invalidations arrive after replies, rueidis issue 534),
// which coord forbids, and it has no way to drop an entry on a local write.
// So rueidis' cache is disabled.
//
// # Sharing a Redis with Mesh (Node) servers
//
// Partly. Data keys are shared on a single Redis: a Mesh server reads and
// writes the same rooms, room metadata, records (a record Mesh wrote is
// compared in Go), channel histories, connection registry and present
// sets. User channel messages interoperate both ways (PUBLISH on the
// channel's name, raw payload). Nothing else does: meshfast nodes exchange
// broadcasts, targeted sends, record updates and presence events on topics
// and in payloads of their own (coord/topics.go), Mesh's per-entry presence
// keys with TTLs are not written (so a Mesh server's keyspace handler never
// fires for meshfast's entries), and on a cluster meshfast's keys are
// hash-tagged. Run one kind of server per Redis, or share only channels.
//
// # Concurrency contract
//
// Every method is safe from any goroutine and may block on Redis, honouring
// its context; call them off the event loop. Handlers (pub/sub, expiry) run
// on the coordinator's goroutines (the pub/sub workers, the sweeper) and
// must not block nor call the coordinator; so must OnReconnect handlers,
// which run on a pub/sub connection's runner. A pub/sub payload is a string
// rueidis allocated, shared by a message's handlers, which must not modify
// it. Goroutines: per pub/sub connection a runner (which also probes it),
// PubSubWorkers workers, a sweeper, the dissolver of lingering topics,
// JoinBatches join senders, and on a cluster a topology refresher; Close
// stops and waits for them all. Locks, in this order: a topic's stripe lock (held across its
// SUBSCRIBE or UNSUBSCRIBE round trip; the dissolver alone takes several,
// in ascending order), the cell table's mutex, the topic table's RWMutex,
// the moved-topics mutex; each cell's mutex, the dissolver's queue mutex,
// the joiner's mutex and the handler lists' mutexes are leaves. No lock is held while a handler runs. Stats returns the counters (round trips, pipeline sizes, errors,
// pub/sub drops) for /metrics.
package redis
