// Package client is a Go client for Mesh's wire protocol (@prsm/mesh,
// nvms/prsm 48b41c9), as spoken by Mesh and by meshfast. It covers what
// Mesh's JavaScript MeshClient does — commands, rooms, channels, records,
// presence, metadata, ping/latency answers, reconnection — and goes
// beyond it where Mesh leaves work to the application:
//
//   - an error reply ({"error","code","name"}) is returned as a Go error,
//     a *protocol.CodeError, rather than as a successful result;
//   - after a reconnect the client joins its rooms again and restores its
//     channel, record and presence subscriptions (and presence states)
//     before it reports OnReconnect; record callbacks get the current value
//     in full;
//   - reconnect attempts back off exponentially with jitter;
//   - request ids are never reused, so a late reply cannot be mistaken for
//     the reply to another request;
//   - the connection id the server announces in a mesh/assign-id push is
//     available from ConnectionID;
//   - on a meshfast durable channel (its messages stored with a sequence),
//     a subscription resumes after a reconnect from the last message its
//     callback got: each message is delivered once, in order, none lost
//     while the connection was down (SubscribeChannelMessages shows the
//     sequences). The client asks for sequences with a request member Mesh
//     ignores; elsewhere a channel behaves as in Mesh.
//
// Frames are encoded and decoded by package protocol; the WebSocket is
// github.com/gobwas/ws over a plain net.Conn.
//
// # Usage
//
//	c := client.New("ws://localhost:8080", client.Options{})
//	if err := c.Connect(ctx); err != nil {
//		return err
//	}
//	defer c.Close()
//
//	reply, err := c.Command(ctx, "echo", "hello") // raw JSON reply
//	var ce *protocol.CodeError
//	if errors.As(err, &ce) && ce.Code == protocol.CodeTimeout { … }
//
//	c.On("chat:message", func(payload json.RawMessage) { … })
//	c.JoinRoom(ctx, "lobby", client.WithPresence(func(u client.PresenceUpdate) { … }))
//	c.SubscribeChannel(ctx, "news", func(msg string) { … }, client.WithHistoryLimit(10))
//	c.SubscribeChannelMessages(ctx, "orders:eu", func(m client.ChannelMessage) {
//		// m.Sequence: 1, 2, 3… across reconnects, on a durable channel
//	})
//	c.SubscribeRecord(ctx, "doc:1", client.RecordPatch, func(u client.RecordUpdate) {
//		// u.Value is the whole document, patches already applied
//	})
//
// # Connection lifecycle
//
// A Client is Offline until Connect, which dials once and returns the
// error if that fails. Once connected, the client answers the server's
// ping with pong and latency:request with latency:response, and watches
// for pings: when more than Options.MaxMissedPings windows of
// Options.PingTimeout pass without one, it drops the connection. Whenever
// a connection is lost, the client goes Reconnecting (unless
// Options.NoReconnect) and tries again with backoff until it succeeds,
// Options.MaxReconnectAttempts run out (OnReconnectFailed, Offline), or
// Close is called. A connection the client has replaced is dead to it:
// nothing it still delivers is acted upon. Close is final.
//
// # Concurrency
//
// Every method of Client is safe to call from any goroutine, including
// from inside callbacks.
//
// Callbacks — the On… handlers, channel, record and presence callbacks —
// are called one at a time, in the order of the events on the wire,
// never concurrently with each other, on a goroutine the client owns (it
// exists while there are events to deliver). A callback may call any
// client method, blocking ones included: replies are matched by the
// connection's reader goroutine, not by the callback goroutine. But while
// one callback runs, the events after it wait, and they queue up without
// bound, so callbacks should return promptly and hand long work to
// goroutines of their own. Payloads passed to callbacks are not reused by
// the client, but must not be modified.
//
// Because callbacks run on that goroutine, the first call of a record
// callback, and the replay of channel history, may happen just after
// SubscribeRecord or SubscribeChannel returns; they still come before any
// later update.
//
// Each connection has a reader and a writer goroutine; a reconnect, and a
// record resync, run on goroutines of their own. Close stops and waits for
// all of them, and for the callbacks of the events queued before it; it may
// be called from a callback, and then does not wait for the events queued
// behind that callback (Done reports when they have run).
package client
