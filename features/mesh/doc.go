// Package mesh serves Mesh's protocol (the Node.js framework @prsm/mesh) on
// meshfast's engine: RPC-style commands with middleware, rooms, channels
// with history, connection and room metadata, application-level ping/pong
// with latency reports, and broadcasts. It joins the engine (sockets), the
// protocol package (wire format) and a coord.Coordinator (shared state), so
// an application written against Mesh's JavaScript client works unchanged.
//
//	e := engine.New(engine.Options{Addr: ":8080"})
//	s, _ := mesh.New(e, mesh.Options{})          // in-memory coordinator
//	s.Expose("echo", func(c *mesh.Context) (any, error) { return c.Payload, nil })
//	s.ExposeChannel("chat:lobby", nil)
//	e.Serve()
//
// # Concurrency contract
//
// Frames are decoded on the connection's event loop; pong and
// latency:response are consumed there. Commands (built-in or application)
// never run on the loop, so handlers may block on I/O. The commands of one
// connection run one after another in arrival order, each after the
// previous one finished, on a goroutine that exists only while the
// connection has commands queued, and their replies leave in that order;
// different connections run in parallel (queue.go). A command registered
// with ExposeConcurrent starts at once on its own goroutine instead, and its
// reply may overtake. A connection with Options.MaxQueuedCommands commands
// queued or running is not read (engine.Conn.PauseReading) until half of
// them are done: it is slowed down, not answered with errors. Commands
// still queued when the connection closes are dropped.
//
// Server methods are safe from any goroutine. A Connection's exported
// methods are safe from any goroutine. Guards and middleware run on the
// command's goroutine.
//
// Options.Authenticate and the Origin allow-list run on the event loop,
// before the upgrade, so they must not block: the loop's other connections
// wait while they run. An Identity's Verify, for a check that does I/O,
// runs on a goroutine of its own after the upgrade, and the connection's
// commands wait until it has answered. Either way a connection's metadata
// from authentication is stored before its first command runs (auth.go). Registration with the coordinator, cleanup after a
// close, and the hooks that follow them (OnConnection, OnDisconnection) run
// on a pool of at most Options.Workers goroutines that exit when idle: a
// hook may block, but it occupies a worker while it does, and when every
// worker is blocked, registrations wait. One exception: with a coordinator
// whose registry is in-process map work (coord.LocalRegistry, the embedded
// memory coordinator) and no OnConnection hook installed, a registration
// runs on the loop in OnOpen, since handing it to a worker would cost more
// than the map updates.
//
// # Subscriptions
//
// What a connection receives (a channel, a room's broadcasts, a record in
// full or patch mode, a room's presence updates) is a subscription, and one
// type owns every subscription on all three layers it lives on: the
// connection's own set, the node's reference-counted coordinator
// subscription, and the engine topic on the connection's loop
// (subscriptions.go). Each kind is declared once, as a source with one
// route per way of receiving it (routes.go). Adding a kind, say a durable
// stream, is one declaration and its delivery:
//
//	streamSource = newSource("stream", func(name string) string { return "mesh:stream:" + name },
//		(*Server).deliverStream, nil, "s:")
//	streamRoute  = streamSource.routes[0]
//
// where deliverStream turns a message on the coordinator topic into frames
// for the route's engine topic. Its commands call s.subs.take(ctx, c,
// streamRoute, name) and s.subs.drop(ctx, c, streamSource, name); the
// coordinator subscription, its sharing between connections, the engine
// topic, the wait until the loop has it and the cleanup at close follow.
// (A tally function instead of nil, and a field in TopicCounts, would
// count it in LocalTopics.)
//
// A durable channel (ExposeDurableChannel) is such a source whose node
// side is a listener on a features/streams room instead of a coordinator
// topic, with two routes: Mesh's frames, and the frames with sequences
// that a client asks for with "sequenced" (protocol's "Durable channels").
// Its messages are stored with a sequence before they are delivered, its
// history is the stream's, and a subscription that resumes "after" a
// sequence is sent what followed, then the live messages, each once and in
// order (durable.go says how the seam is kept).
//
// A local connection is found by its Mesh id through the engine's
// registry: the id carries the engine connection's id (connid.go), and the
// server keeps no connection table of its own.
//
// Records are versioned JSON values (ExposeRecord, ExposeWritableRecord,
// PublishRecordUpdate): each real change bumps the version by exactly one,
// the RFC 6902 patch is computed once on the writing node, and each node
// encodes the full and the patch push once for its subscribers.
//
// Presence (TrackPresence) marks connections present in tracked rooms with
// a TTL that pongs refresh in batches; joins, leaves, expiries and presence
// states are pushed to every presence subscriber on every node.
//
// Per-connection limits (limits.go): Options.MaxRoomsPerConnection and
// MaxSubscriptionsPerConnection are checked by the join and subscribe
// commands on the command's goroutine; Options.CommandRate's token bucket
// lives in connActive and is touched only by the loop, in dispatch. Each
// refusal is an error reply with code ELIMIT, counted.
//
// ExposeFallback's handler runs for commands no handler is registered for,
// as any command runs: on the connection's command goroutine, in order.
// SendToUser reaches a user's connections through a per-user coordinator
// topic each node subscribes to while it has one of them (users.go);
// Disconnect closes a connection on whichever node has it.
//
// Options.Logger gets each line at its level: debug for what a client
// caused, info for refused connections, warn for failures the server
// survived, error for bugs; lines a lasting fault repeats are rate-limited
// (internal/ratelog).
// Several nodes on one coordinator (coord/redis) serve as one. A join is
// one coordinator call (coord.Joins), batched with other connections'
// joins. A command whose coordinator cannot reach its backend fails at
// once with EUNAVAILABLE (protocol.CodeUnavailable), the connection stays
// up, and when the coordinator reconnects (coord.Recovery) the node writes
// back its connections, their metadata, rooms and presence (recover.go).
// Every node's janitor removes, about every half NodeTTL, what nodes that
// died without cleaning up left behind (janitor.go); a node that shuts
// down cleanly removes its own state at once.
//
// Broadcasts are encoded once per node: a channel message, room broadcast or
// broadcast to all travels through the coordinator's pub/sub as the encoded
// frame, and each node hands it to the engine, which posts one task per
// event loop.
package mesh
