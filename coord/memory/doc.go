// Package memory is the embedded, in-process coord.Coordinator: the default
// of a single-node meshfast server. Several nodes in one process (tests,
// embedded clusters) may share one *Memory, which then plays the part Redis
// plays for a cluster.
//
//	c := memory.New(memory.Options{})      // zero Options work
//	defer c.Close()
//	var _ coord.Coordinator = c
//	var _ coord.Admin = c                 // the optional part too
//
// # Concurrency contract
//
// Every method is safe from any goroutine. Each call is atomic on its own,
// beyond what coord requires (RemoveConnection, RemoveFromAllRooms,
// SetRecord and UpdateRoomMetadata included), except the ones that walk
// another connection's or room's state one item at a time: ClearRoom,
// RemoveNode (atomic per connection) and the listings. Methods never block on I/O; Publish blocks only
// while the delivery queue (Options.QueueSize) is full.
//
// Two goroutines are started by New and stopped by Close, which waits for
// them:
//
//   - the dispatcher runs pub/sub handlers, one message at a time, in queue
//     order (so per publisher and topic, in publish order);
//   - the sweeper removes lapsed presence entries and presence states and
//     reports their expiry to the earliest registered ExpiryHandler. It
//     sleeps until the earliest deadline is due (sweeping at most once per
//     Options.SweepInterval), and for good while nothing can expire; arming
//     an earlier deadline wakes it. Reads leave lapsed entries out at once.
//
// Handlers run on those goroutines and must not block, nor call methods of
// the Memory (Publish could wait for the dispatcher itself), nor Close.
// There is no timer per entry: TTLs are deadlines checked lazily and swept;
// a shard with nothing due is skipped.
//
// Stored byte slices are copied on the way in and returned without copying:
// callers must not modify what a read returns.
//
// # Locks
//
// State is split into sharded maps (32 shards each, each shard with its own
// RWMutex): connections (registry entry, metadata, rooms reverse index),
// rooms (members, metadata, presence entries and states), records, channel
// histories and pub/sub topics; plus one mutex for nodes and one for expiry
// handlers. The only nestings, in this order:
//
//	connShard.mu  →  roomShard.mu     (membership changes, RemoveConnection)
//	connShard.mu  →  nodesMu          (registration, RemoveConnection)
//
// At most one connShard and one roomShard are held at a time. Every other
// lock (recordShard, historyShard, topicShard, expMu, nodesMu otherwise) is
// a leaf. No lock is held while a handler runs. Functions named ...Locked
// expect the lock their doc names to be held.
package memory
