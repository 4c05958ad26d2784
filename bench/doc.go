// Package bench is meshfast's load generator. It opens client WebSocket
// connections on loopback, drives one of several scenarios against one or
// more servers, and reports throughput, latency percentiles (HDR
// histograms, see package perf), loss and server memory, side by side for
// the server under test, a baseline server (package bench/baseline) and a
// kernel ceiling, all measured in the same invocation so ratios hold on a
// noisy machine.
//
//	rep, err := bench.Run(ctx, bench.Options{
//		Scenario: bench.ScenarioConnect,
//		Targets:  []string{"127.0.0.1:8080"},
//		Conns:    19000,
//		Workers:  2,
//	})
//
// Scenarios: connect (handshakes/s, also as a share of plain TCP
// connects/s), idle (server RSS per extra held connection, as a slope between
// two counts), rpc (echo round trips), fanout (one channel, many subscribers,
// publish-to-receive latency and loss by sequence number), ceiling (bare
// write(2) of one pre-encoded frame to every socket), sim (a million
// subscribers on engine.Simulator's fake sockets: CPU ns per subscriber per
// broadcast) and multi-node (fanout and rpc across several meshfast nodes
// on one Redis, subscribers spread over them, then the same against one
// node alone, each figure beside its single-node one, deliveries per
// server core-second above all; given a Redis URL it starts and stops the
// nodes itself, never Redis).
//
// # Figures
//
// Rates and latencies depend on the client as much as on the server when
// both share a small machine, so every scenario also reports CPU time per
// unit of work: the server's, read from /proc/<pid>/stat (the pid is
// Options.ServerPID or the process listening on the target port), and the
// workers' own. On loopback the sender's CPU time includes the receiver's
// TCP receive processing, so compare a CPU row only across the runs of one
// report. Idle memory is the slope of the server's VmRSS between two
// connection counts; a server that already held connections reuses freed
// memory, so measure it freshly started.
//
// CheckTargets reads reports (ReadReport, or `meshfast-bench targets
// FILE...`) and grades each figure against meshfast's published targets,
// each as a ratio within one report where there is one: fanout capacity
// against the write(2) ceiling and the baseline, p99 against the ceiling's,
// handshakes/s against plain TCP connects/s.
//
// ReportPlot draws a report's latency histograms as percentile curves (the
// server under test beside the baseline and the ceiling of the same run) and
// Plot.WriteSVG writes them as a standalone SVG, with no dependency:
// Options.SVG, `meshfast-bench fanout -svg FILE` or `meshfast-bench plot`.
//
// # Processes
//
// A process here may hold 20,000 open files, so Run (the coordinator)
// re-executes its own binary as worker processes (WorkerEnv set), each with
// its share of the connections and its own block of source addresses
// (127.0.0.2 upward, bound with IP_BIND_ADDRESS_NO_PORT), and talks to them
// in JSON lines over their stdin and stdout. Workers stream progress counts
// once per interval and return their HDR histograms in mergeable form; the
// coordinator merges them and prints the table. A binary embedding Run must
// call IsWorker and ServeWorker first thing in main (and in TestMain).
//
// # Client
//
// Each worker is an event-loop client (eloop.go: edge-triggered epoll, one
// loop by default). A small pool of dialer goroutines opens raw non-blocking
// sockets (TCP keepalive off, SO_LINGER 0, TCP_NODELAY), connects, writes
// the upgrade request and only then adds the socket to a loop, which parses
// the 101, writes masked frames and parses server frames incrementally. A
// connection costs no goroutine, and a handshake costs the client one
// system call more than a plain connect (the write) plus the loop's read:
// on a host the client shares with the server, what the client spends per
// handshake is taken from the server. The plain-TCP probe and the floor
// responder (floor.go, the handshake ceiling) use the same socket code.
//
// # Concurrency contract
//
// Run and the Options and Report methods are for one goroutine; several Runs
// may proceed at once (in tests) but share the process's file limit.
// Inside a worker, a connection's state (parser, requester, sequence
// tracker) belongs to the loop that owns the socket and is touched only in
// that loop's event handling or in tasks posted to it with cloop.execute;
// a dialer goroutine sets a connection's fields before it publishes the
// connection in the descriptor table and registers the socket, and never
// touches it again. Counters are atomics; latency trackers are
// perf.Trackers (safe from any goroutine). Every load loop is bounded by a
// count and by a time limit and stops by itself.
package bench
