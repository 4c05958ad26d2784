// Package zps is a Go client of zero-pub-sub's WebSocket gateway protocol
// (protocol/zps), as meshfast serves it on /zps: durable rooms whose
// events come exactly once, in sequence order, across disconnects. It does
// what the document's frontend client does:
//
//   - queues publishes until the connection is open, and sends again a
//     publish the connection lost (with its id, so never twice);
//   - reconnects by itself, with exponential backoff and jitter;
//   - tracks the last sequence of each room, holds events that arrive
//     out of order, and asks for a replay (replay_request) when it sees a
//     gap, at most once per ReplayThrottle per room;
//   - acknowledges each event once its handler has returned (each room's
//     highest, at most every 100ms);
//   - after a reconnect subscribes again to every room from the last
//     sequence it received, so nothing is missed and nothing repeated.
//
// It imports only protocol/ (the messages) and gobwas/ws.
//
//	c := zps.New("ws://localhost:8080/zps", zps.Options{SubscriberID: "device-1", Token: jwt})
//	if err := c.Connect(ctx); err != nil { … }
//	defer c.Close()
//	sub, err := c.Subscribe("chat:123", func(ctx context.Context, ev *zps.Event) error {
//		fmt.Println(ev.Sequence, string(ev.Payload))
//		return nil // acknowledged
//	})
//	p, err := c.Publish(ctx, zps.PublishEvent{Room: "chat:123", Type: "message.created", Payload: []byte(`{"text":"hi"}`)})
//
// The gateway answers every message with one reply or one error, in
// order; the client matches them to what it sent by order (conn.go).
//
// # Concurrency
//
// Every method of Client and Subscription is safe from any goroutine.
// Handlers run one at a time, in order, on a goroutine of the client; a
// handler may call the client (Publish, Unsubscribe). While handlers are
// behind by MaxPendingEvents events the client stops reading the
// connection. Each connection has a reader and a writer goroutine; the run
// loop reconnects. Close waits for them all, and for a handler running,
// unless it is called while one runs.
package zps
