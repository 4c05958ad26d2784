// Package gateway serves zero-pub-sub's WebSocket gateway protocol (its
// README is the reference; protocol/zps holds the messages) on meshfast's
// engine, over a node's durable streams (features/streams): browsers and
// mobile apps subscribe to rooms, get each room's events exactly once and
// in sequence order, replay what they missed, acknowledge what they
// processed, and, if allowed, publish. It is a second protocol on the
// engine beside Mesh, on a path of its own.
//
//	st, _ := streams.New(streams.Options{Store: redisStore, PubSub: coordinator})
//	gw, err := gateway.New(e, st, gateway.Options{                // before e serves
//		Path: "/zps",
//		Auth: gateway.Auth{Scopes: []string{"chat", "order"},
//			JWT:       func(ctx context.Context, tok string) (map[string]any, error) { return verify(tok) },
//			Authorize: func(ctx context.Context, a gateway.Access) (bool, error) { return canAccess(a), nil }},
//	})
//	…
//	e.Shutdown(ctx); gw.Close(); st.Close()
//
// # Protocol
//
// A client sends init first ({"type":"init","subscriberId":…,"token":…});
// anything else before it is answered CodeInitRequired, and a connection
// without init after Limits.InitTimeout is closed. Every message is
// answered, in the order sent, by exactly one reply (ready, subscribed,
// unsubscribed, an ack, a replay) or one error, so a client can match
// replies to requests by order; events of its subscriptions arrive between
// them. A subscribe to a room starts after fromSequence or, without one,
// after the subscriber's acknowledged cursor (0 without either), as the
// document's backend subscribe does: it is answered subscribed, then the
// room's events after that start, from the store, then live, each once, in
// order, each as {"type":"event","data":…}. A scope:* subscribe is live
// only. With eventTypes a subscription gets only those types (its
// sequences then have holes by design). A replay_request is answered with
// one page; ack records the subscriber's cursor and is confirmed with the
// same ack; a publish (off unless Limits.AllowClientPublish) is answered
// with an ack carrying the stored event's sequence and id. Ephemeral
// events (typing, cursors), which the document's client uses but its wire
// protocol does not list, travel as subscribe_ephemeral,
// unsubscribe_ephemeral, publish_ephemeral and the ephemeral message
// (ephemeral.go; protocol/zps shows them), at most once.
//
// # Limits and auth
//
// Limits are the document's: connections, subscriptions per connection,
// message size, messages per window, init timeout, heartbeat (WebSocket
// pings), the bytes a connection may owe (Engine.LimitPendingBytes on the
// route), client publishing. Auth is its: a token verified on init
// (Auth.JWT), the scopes rooms may have, and Auth.Authorize for each
// action on each room; the streams middleware sees every client action
// too (subscribe, publish, replay, ack, ephemeral publish). It does not see
// a deliver per socket: an event goes to a room's sockets as one frame
// encoded once per node, and a middleware call per socket per event would
// undo that; what a subscriber may receive is decided when it subscribes.
// Each
// refusal is an error message with the code protocol/zps names (the
// document's 4408 for access denied).
//
// # Fan-out
//
// A node follows each room once whatever its number of subscribers: one
// streams Listen, each event encoded once, published to the room's engine
// topic, written by every event loop to its own connections. rooms.go
// says how a subscriber that joins mid-stream gets the backlog and then
// the live events with nothing missed or repeated.
//
// # Concurrency
//
// New, Close, Health, Connections and Options are safe from any
// goroutine. The engine handler's callbacks run on the event loops and
// never block; each connection's messages run on a worker goroutine of
// its own, present only while it has messages; a room's fan-out state
// belongs to one shard goroutine. Auth.JWT and Auth.Authorize run on
// workers and may block, bounded by Options.RequestTimeout.
package gateway
