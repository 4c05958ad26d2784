// Package realtime is meshfast's helper API for pushing live updates, after
// the realtime module of full-stack web frameworks: two drivers behind one
// small API.
//
//	rt, _ := realtime.New(e, realtime.Options{})          // Mesh on "/", SSE on "/events"
//	rt.Channel("orders", realtime.ChannelOptions{
//		History: 100,
//		OnJoin:  func(m realtime.Member) { m.Send(realtime.Event{Event: "welcome"}) },
//	})
//	rt.ToChannel("orders").Broadcast(ctx, realtime.Event{Event: "new-order", Data: order})
//	rt.Broadcast(ctx, realtime.Event{Event: "update", Data: latest})
//	rt.SendTo(ctx, userID, realtime.Event{Event: "order-update", Data: order})
//
// The Server-Sent Events driver: a GET on SSEOptions.Path with "Accept:
// text/event-stream" (EventSource's) opens a stream held by the event loop
// like a WebSocket (engine.SSE), which asks for its channels in its query
// string: new EventSource("/events?channel=orders&channel=news"). A stream
// is let in as a WebSocket client is: Options.Mesh.Authenticate names its
// user, and each channel it asks for must be exposed to it (the Mesh
// channel exposures and guards: Channel, or mesh.Server.ExposeChannel).
// An HTTP handler of the application's own can open one too: rt.SSE(w, r)
// returns the Stream, to which Send sends.
//
// The WebSocket driver is the Mesh server (Mesh): Mesh clients connect,
// subscribe to channels and join rooms as they do with Mesh; a client's
// "message" commands reach WebSocketOptions.OnMessage.
//
// # One fan-out for every transport
//
// A channel's members of both drivers are subscribed to the same engine
// topic on their loops. A channel message reaches each node once (the
// coordinator's pub/sub); on a node with streams in the channel it is given
// its stream variant there (DeliverChannel, the mesh.ChannelTap), once, and
// one engine publish then reaches both kinds of members with one task per
// loop: the Mesh frame for WebSocket connections, the SSE event for
// streams. Broadcast and SendTo are Mesh's (mesh.Server.Broadcast and
// SendToUser, which the HTTP API uses too): streams join their user's
// topic beside the user's Mesh connections and are reached by Mesh's
// broadcasts to every connection (engine.SSEOptions.PublishAllOf), and
// each node turns such a push into its stream event once (StreamPush, the
// mesh.PushTap): "event: <command>", the payload as data.
//
// # A stream's events
//
// A stream's first event is "ready", data {"id", "channels", "resumed",
// "replayed", "missed"}. A channel message follows as an event whose id is
// "<channel>:<digest>" (event.go says how the digest is made): a message
// published with ToChannel as its Event (event name and data), any other
// message as a "message" event whose data is the message. An EventSource
// that reconnects sends the last id it saw as Last-Event-ID, and the
// stream resumes that channel: it is sent the channel's history after that
// message, and then what is published, each message once, in order. The
// ready event says how many were replayed; "missed" is true when the
// client may have missed events: its Last-Event-ID was not found in the
// history (too old, another channel's, not a channel message's), or the
// stream has other channels, whose messages in the meantime are not
// replayed.
//
// # Concurrency
//
// Realtime's methods are safe from any goroutine; so are Stream's and
// Socket's. SSE runs on the event loop, in an HTTP handler, and so do
// Options.Mesh.Authenticate and the channel guards it runs for a stream;
// they must not block. A stream's join (its channels' coordinator
// subscriptions, its identity's Verify, its resume) runs on a goroutine of
// its own that ends when the stream has joined: no goroutine is held per
// stream. OnJoin hooks run on that goroutine for a stream, on the command's
// for a WebSocket connection. DeliverChannel runs on the coordinator's
// delivery goroutine; a resuming join makes the deliveries of its channel
// wait for one round trip to the stream's loop.
package realtime
