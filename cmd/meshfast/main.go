// Command meshfast runs the meshfast edge server. It maps flags and
// environment variables to server.Config and nothing more: what a value
// means and which combinations conflict is the options' business
// (server.Config.Validate, engine.Options.Validate); this file only parses
// and reports.
//
// Exit status: 0 after a clean shutdown or -h; 1 for a bad flag or
// environment variable, a configuration Validate refuses, a failure to
// start, or a shutdown that did not finish in time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/features/server"
)

// DefaultShutdownTimeout is the default of -shutdown-timeout.
const DefaultShutdownTimeout = 10 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// settings is everything the command line and the environment set.
type settings struct {
	cfg   server.Config
	drain time.Duration // -shutdown-timeout
}

// run is the whole command: parse, validate, serve until SIGINT or SIGTERM,
// shut down. It returns the exit status.
func run(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	log.SetOutput(stderr)
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	s, err := parse(args, lookup, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "meshfast: %v\n(meshfast -h lists the flags)\n", err)
		return 1
	}
	// Start validates too, but checking here keeps the binary's answer to
	// a bad configuration independent of how Start reports one.
	if err := s.cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "meshfast: %v\n", err)
		return 1
	}
	s.cfg.Engine.Logf = log.Printf
	s.cfg.Mesh.Logf = log.Printf

	// Signals are caught before the listener opens, so one that arrives
	// while starting still shuts down cleanly.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	node, err := server.Start(s.cfg)
	if err != nil {
		// gnet's bind error, without SO_REUSEPORT, does not say where.
		if addr := s.cfg.Engine.Addr; !strings.Contains(err.Error(), addr) {
			err = fmt.Errorf("listen on %s: %w", addr, err)
		}
		fmt.Fprintf(stderr, "meshfast: %v\n", err)
		return 1
	}
	path := s.cfg.Mesh.Path
	if path == "" {
		path = mesh.DefaultPath
	}
	log.Printf("meshfast: node %s listening on %s (Mesh protocol on %s, /health, /metrics)", node.Mesh.NodeID(), node.Addr(), path)

	got := <-sig
	// A second signal ends the process at once (the default action) instead
	// of waiting for the clients.
	signal.Stop(sig)
	log.Printf("meshfast: %s, shutting down (1001 to every client, waiting up to %s)", got, s.drain)
	ctx, cancel := context.WithTimeout(context.Background(), s.drain)
	defer cancel()
	if err := node.Shutdown(ctx); err != nil {
		fmt.Fprintf(stderr, "meshfast: shutdown: %v\n", err)
		return 1
	}
	log.Printf("meshfast: stopped")
	return 0
}

const usageHead = `usage: meshfast [flags]

meshfast serves the Mesh protocol (github.com/nvms/prsm, packages/mesh) over
WebSocket on -path, and /health and /metrics over HTTP on the same port.

First contact: connect any WebSocket client to ws://localhost:8080/ and send
one JSON text message per command, for example the built-in echo:

  {"id":1,"command":"echo","payload":"hello"}

The answer carries the same id and command and the payload back:

  {"id":1,"command":"echo","payload":"hello"}

Right after connecting the server pushes {"command":"mesh/assign-id",...}, then
"latency" and "latency:request" every -latency-interval and "ping" every
-ping-interval; a client that never sends {"command":"pong"} is closed after
-max-missed-pongs unanswered pings, as Mesh does. Text that is not a JSON
command with an id gets no answer.

Every flag can also be set by the environment variable named beside it; a
flag on the command line wins.

`

// parse maps args and the environment onto settings. Environment variables
// are applied first, through the same flag parsers, then args.
func parse(args []string, lookup func(string) (string, bool), help io.Writer) (settings, error) {
	s := settings{drain: DefaultShutdownTimeout}
	o := &s.cfg.Engine
	m := &s.cfg.Mesh
	fs := flag.NewFlagSet("meshfast", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, help is printed below
	o.Addr = engine.DefaultAddr
	fs.StringVar(&o.Addr, "addr", o.Addr, "listen `address`, host:port")
	fs.Var((*count)(&o.Loops), "loops", "`n` event loops, 0 = one per CPU")
	o.ReusePort = true
	fs.BoolVar(&o.ReusePort, "reuseport", o.ReusePort, "one listening socket per loop (SO_REUSEPORT), no acceptor hand-off; -reuseport=false (or the variable set to 0) for one acceptor")
	fs.Var((*count)(&o.MaxConnections), "max-connections", "refuse upgrades past `n` connections, 0 = no limit")
	o.MaxMessageSize = engine.DefaultMaxMessageSize
	fs.Var((*count)(&o.MaxMessageSize), "max-message-size", "largest client message in `bytes`; larger ones close with 1009")
	o.MaxPendingBytes = engine.DefaultMaxPendingBytes
	fs.Var((*count)(&o.MaxPendingBytes), "max-pending-bytes", "outbound `bytes` a connection may owe before it is closed as a slow consumer (1013)")
	o.IdleTimeout = -1
	fs.Var((*offDuration)(&o.IdleTimeout), "idle-timeout", "close connections silent for this `duration` (WebSocket pings are sent first); off (or 0) leaves liveness to Mesh's ping/pong")
	o.HandshakeTimeout = engine.DefaultHandshakeTimeout
	fs.Var((*positiveDuration)(&o.HandshakeTimeout), "handshake-timeout", "`duration` allowed for the HTTP request head")
	m.Path = mesh.DefaultPath
	fs.StringVar(&m.Path, "path", m.Path, "WebSocket `path` of the Mesh protocol, starting with /")
	m.PingInterval = mesh.DefaultPingInterval
	fs.Var((*offDuration)(&m.PingInterval), "ping-interval", "Mesh ping push `period`; off (or 0) sends none")
	m.LatencyInterval = mesh.DefaultLatencyInterval
	fs.Var((*offDuration)(&m.LatencyInterval), "latency-interval", "Mesh latency probe `period`; off (or 0) sends none")
	m.MaxMissedPongs = mesh.DefaultMaxMissedPongs
	fs.IntVar(&m.MaxMissedPongs, "max-missed-pongs", m.MaxMissedPongs, "`n` unanswered pings before a connection is closed (Mesh's default)")
	fs.BoolVar(&s.cfg.Bench, "bench", false, "expose the bench/publish command and the bench channels for meshfast-bench")
	fs.Var((*positiveDuration)(&s.drain), "shutdown-timeout", "on SIGINT or SIGTERM, wait at most this `duration` for clients after sending them 1001")

	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		f.Usage += " ($" + name + ")"
		v, ok := lookup(name)
		if err != nil || !ok || v == "" {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("%s=%q: %w", name, v, e)
		}
	})
	if err != nil {
		return s, err
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(help, usageHead)
			fs.SetOutput(help)
			fs.PrintDefaults()
		}
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("unexpected argument %q: every setting is a flag", fs.Arg(0))
	}
	return s, nil
}

// envName is the environment variable of a flag: -max-message-size is
// MESHFAST_MAX_MESSAGE_SIZE.
func envName(flagName string) string {
	return "MESHFAST_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// count is an int flag that refuses negative numbers, which the options
// would otherwise take silently as their zero meaning (the default, or no
// limit).
type count int

func (c *count) String() string { return strconv.Itoa(int(*c)) }

func (c *count) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not a whole number")
	}
	if n < 0 {
		return errors.New("negative; use 0 or more")
	}
	*c = count(n)
	return nil
}

// offDuration is a duration flag that can be off: "off", 0 or a negative
// duration set it to -1, which the options read as disabled.
type offDuration time.Duration

func (d *offDuration) String() string {
	if *d < 0 {
		return "off"
	}
	return time.Duration(*d).String()
}

func (d *offDuration) Set(s string) error {
	if s == "off" {
		*d = -1
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New(`not a duration (like 30s or 2m) or "off"`)
	}
	if v <= 0 {
		v = -1
	}
	*d = offDuration(v)
	return nil
}

// positiveDuration is a duration flag that refuses zero and negative
// durations, which the options would take silently as the default.
type positiveDuration time.Duration

func (d *positiveDuration) String() string { return time.Duration(*d).String() }

func (d *positiveDuration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration (like 10s or 2m)")
	}
	if v <= 0 {
		return errors.New("must be more than 0")
	}
	*d = positiveDuration(v)
	return nil
}
