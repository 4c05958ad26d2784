// Package coord defines how meshfast nodes share state and exchange messages:
// the connection registry, connection and room metadata, rooms, channel
// history, versioned records, presence with TTLs and presence state,
// cross-node pub/sub and node liveness. It knows nothing of sockets or of the
// WebSocket wire: values (metadata, messages, record values, presence states)
// are raw JSON bytes that it stores and returns as given, interpreting them
// only where Mesh's semantics require it (record change detection, room
// metadata merge), always with protocol/jsonx (jsonx.Equal,
// jsonx.MergeObjects) so that every backend decides the same way.
//
// Backends:
//
//   - coord/memory: embedded, in-process; the default of a single-node server.
//   - coord/redis: Redis or Redis Cluster, Mesh's keys and channels where
//     Mesh has them, for several nodes.
//
// Every backend implements Coordinator, what the server calls, and may
// implement Admin, inspection and the janitor of dead nodes, and Observed,
// its backend's health and figures for /health and /metrics; it passes the
// conformance suite in coord/coordtest. Each interface names the Redis keys
// Mesh keeps its part of the state in.
//
// # Usage
//
//	c := memory.New(memory.Options{})
//	defer c.Close()
//	sub, _ := c.Subscribe(ctx, coord.PresenceTopic("lobby"), func(topic string, p []byte) {
//		loop.Post(p) // hand off; never block here
//	})
//	if joined, _ := c.JoinPresence(ctx, "lobby", connID, 30*time.Second); joined {
//		_ = c.Publish(ctx, coord.PresenceTopic("lobby"), joinEvent)
//	}
//	defer c.Unsubscribe(ctx, sub)
//
// # Concurrency contract
//
// Every method of a Coordinator is safe to call from any goroutine. What a
// backend must make atomic, and what it may split or batch, is said per
// method (see Coordinator); a backend may always do more (memory makes
// nearly every call atomic). Methods may block on the backend and honour
// their context, so an event loop must call them off-loop (Event +
// Callback, STYLE §4), never inline.
//
// Handlers (pub/sub Handler, ExpiryHandler) are called from a goroutine owned
// by the coordinator and MUST NOT block: they must not call Coordinator
// methods or Close, only hand the message off. Payloads passed to handlers
// and byte slices returned by reads may be shared with the backend's storage
// and must not be modified; byte slices passed in may be reused by the caller
// once the method returns.
//
// Names (rooms, channels, connection, node and record ids) must be non-empty;
// Redis-backed names should not contain ':' where Mesh parses keys (connection
// ids, see mesh-protocol state.md §3.17).
package coord
