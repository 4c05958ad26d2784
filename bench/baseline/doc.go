// Package baseline is the server meshfast is measured against: the
// mainstream Go design, one goroutine reading each connection (net/http +
// github.com/coder/websocket) and one goroutine writing it from a buffered
// channel, speaking the subset of the Mesh protocol the load generator uses:
//
//   - {"id":n,"command":"echo","payload":p} is answered with the same id,
//     command and payload;
//   - mesh/subscribe-channel and mesh/unsubscribe-channel manage channel
//     membership and answer {"success":true,"history":[]};
//   - bench/publish {"channel","message"} answers {"success":true} and sends
//     every subscriber {"command":"mesh/subscription-message",...}, encoded
//     once and queued on each subscriber's channel;
//   - any other command with an id gets Mesh's command-not-found error.
//
// A subscriber whose queue is full is closed as a slow consumer (1013), as
// gorilla/websocket's chat hub does. /health answers {"connections":n}.
//
//	s := baseline.New(baseline.Options{Addr: "127.0.0.1:9400"})
//	if err := s.Start(); err != nil { ... }
//	defer s.Shutdown(ctx)
//
// # Concurrency contract
//
// Server's methods are safe from any goroutine. Each connection is served
// by its reader goroutine (the HTTP handler) and its writer goroutine; the
// channel table is a map behind one sync.RWMutex, taken for writing on
// subscribe and unsubscribe and for reading on every publish, never while
// writing to a socket.
package baseline
