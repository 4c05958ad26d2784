// Package engine is meshfast's transport: a gnet epoll reactor that accepts TCP
// connections, answers plain HTTP requests, upgrades WebSocket handshakes with
// gobwas/ws, reads RFC 6455 frames straight out of gnet's inbound buffer and
// writes outbound frames with one writev per connection per loop pass.
//
// The engine knows no application protocol. A protocol plugs in as a [Handler]
// registered on a request path; several protocols share one port:
//
//	e := engine.New(engine.Options{Addr: "127.0.0.1:8080"})
//	e.Handle("/ws", myHandler)                  // WebSocket protocol
//	e.HandleHTTP("/health", healthFunc)         // plain HTTP
//	go e.Serve()
//	defer e.Shutdown(ctx)
//
// A plain HTTP handler can answer with a Server-Sent Events stream instead
// (NewSSE, Response.OpenSSE: sse.go), held by the loop like a WebSocket and
// reached by the same write path; a published Frame carries its stream
// variant beside the WebSocket frame (Frame.SetStream).
//
// # Concurrency contract
//
// Every connection is owned by exactly one event loop. Handler callbacks
// (OnOpen, OnMessage, OnClose, OnTimer) and HTTP handlers run on that loop and
// must not block: a handler that needs I/O hands the work to another goroutine
// and answers later with [Conn.Send]. Methods documented "loop only" (for
// example [Conn.WriteText], [Engine.Subscribe]) may be called only from a
// callback running on the connection's own loop; methods documented "safe from
// any goroutine" (for example [Conn.Send], [Conn.CloseAsync], [Engine.Publish],
// [Engine.Broadcast]) post a task to the owning loop instead of touching the
// connection.
//
// An HTTP handler that must wait on I/O answers later: [Response.Defer]
// keeps the connection on its loop, reading nothing, and the returned
// [Deferred]'s Respond, from any goroutine, posts the answer to the loop.
//
// A broadcast is encoded once into a [Frame]. Publishing it posts one task per
// event loop that has subscribers (never one per connection); each loop queues
// the same bytes for its own connections without locks and flushes every
// connection once at the end of the pass, so frames that arrive together leave
// together in one writev.
//
// A loop is a goroutine that makes its system calls while holding a P. An
// idle loop parks in Go's netpoller instead of blocking in epoll_wait (the
// patch in third_party/gnet), so it holds no P while it waits; a busy loop
// passes through the scheduler every couple of milliseconds so that Go's
// sysmon does not take its P away mid-write. Both spare the runtime's 20 µs
// polling that retaking Ps starts.
//
// Payload bytes handed to OnMessage are valid only until OnMessage returns:
// they usually point into gnet's read buffer, unmasked in place.
package engine
