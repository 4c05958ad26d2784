// Command meshfast runs the meshfast edge server. It maps a configuration
// file, environment variables and flags to server.Settings and nothing
// more: the keys, their parsing and the order of precedence are
// server.Loader's (features/server/keys.go lists the keys); what a value
// means and which combinations conflict is the options' business
// (server.Config.Validate, engine.Options.Validate); this file only
// sequences them and reports.
//
// Exit status: 0 after a clean shutdown, -h or -print-config; 1 for a bad
// file, flag or environment variable, a configuration Validate refuses, a
// failure to start, or a shutdown that did not finish in time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/meshfast/meshfast/features/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run is the whole command: load the configuration, validate, serve until
// SIGINT or SIGTERM, shut down. env is the environment, "KEY=value" each.
// It returns the exit status.
func run(args, env []string, stdout, stderr io.Writer) int {
	vars := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	c, err := parse(args, lookup, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "meshfast: %v\n(meshfast -h lists the flags, the README's Configuration section every key)\n", err)
		return 1
	}
	s := c.settings
	logger := s.Log.NewLogger(stderr)
	warnUnknown(logger, vars)
	if c.printConfig {
		b, err := s.Redacted().Marshal() // secrets shown as <redacted>
		if err != nil {
			fmt.Fprintf(stderr, "meshfast: -print-config: %v\n", err)
			return 1
		}
		_, _ = stdout.Write(b)
		return 0
	}
	s.Node.Logger = logger

	// Signals are caught before the listener opens, so one that arrives
	// while starting still shuts down cleanly.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	node, err := server.Start(s.Node)
	if err != nil {
		// gnet's bind error, without SO_REUSEPORT, does not say where.
		if addr := s.Node.Engine.Addr; !strings.Contains(err.Error(), addr) {
			err = fmt.Errorf("listen on %s: %w", addr, err)
		}
		logger.Error("cannot start", "err", err)
		return 1
	}
	attrs := []any{"addr", node.Addr().String(), "path", s.Node.Mesh.Path, "gateway", node.Gateway.Options().Path, "node", node.Mesh.NodeID()}
	if node.Admin != nil {
		attrs = append(attrs, "api_addr", node.Admin.Addr().String())
	}
	if c.file != "" {
		attrs = append(attrs, "config", c.file)
	}
	logger.Info("listening", attrs...)

	got := <-sig
	// A second signal ends the process at once (the default action) instead
	// of waiting for the clients.
	signal.Stop(sig)
	logger.Info("shutting down: 1001 to every client", "signal", got.String(), "wait", s.ShutdownTimeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
	defer cancel()
	if err := node.Shutdown(ctx); err != nil {
		logger.Error("shutdown", "err", err)
		return 1
	}
	logger.Info("stopped")
	return 0
}

const usageHead = `usage: meshfast [-config FILE] [flags]

meshfast serves the Mesh protocol (github.com/nvms/prsm, packages/mesh) over
WebSocket on -path, and /health and /metrics over HTTP on the same port.

First contact: connect any WebSocket client to ws://localhost:8080/ and send
one JSON text message per command, for example the built-in echo:

  {"id":1,"command":"echo","payload":"hello"}

The answer carries the same id and command and the payload back:

  {"id":1,"command":"echo","payload":"hello"}

A client that connects to /?mesh-assign-id=1 is first told its connection id
({"command":"mesh/assign-id",...}; Mesh's own client never asks). The server
pushes "latency" and "latency:request" every -latency-interval and "ping" every
-ping-interval; a client that never sends {"command":"pong"} is closed after
-max-missed-pongs unanswered pings, as Mesh does. Text that is not a JSON
command with an id gets no answer.

Configuration: a YAML file (-config FILE or $MESHFAST_CONFIG; the example is
examples/edge/meshfast.yaml), then environment variables, then flags, each
overriding the one before. Every key of the file has a variable, MESHFAST_
and its path in capitals with _ for . (max_connections: MESHFAST_MAX_CONNECTIONS,
log.format: MESHFAST_LOG_FORMAT); the common ones have the flags below.
Channels, records and presence rooms are exposed only from the file (or
their variables, MESHFAST_EXPOSE_CHANNELS and so on). -print-config prints
the configuration in effect and exits.

`

// command is what the command line and the environment ask for.
type command struct {
	settings    server.Settings
	file        string // the configuration file, "" for none
	printConfig bool
}

// parse builds the settings: defaults, then the file, then the
// environment, then the flags. The flags are parsed twice: first alone, to
// find -config and to report a bad flag before any file is read, then
// over the file and the environment, so that they win.
func parse(args []string, lookup func(string) (string, bool), help io.Writer) (command, error) {
	var c command
	l := server.NewLoader()
	first := flags(l, &c)
	if err := l.ParseFlags(first, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(help, usageHead)
			first.SetOutput(help)
			first.PrintDefaults()
		}
		return c, err
	}
	if first.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q: every setting is a flag", first.Arg(0))
	}
	if c.file == "" {
		c.file, _ = lookup(configEnv)
	}
	l = server.NewLoader()
	if c.file != "" {
		data, err := os.ReadFile(c.file)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		if err := l.LoadFile(c.file, data); err != nil {
			return c, err
		}
	}
	if err := l.LoadEnv(lookup); err != nil {
		return c, err
	}
	if err := l.ParseFlags(flags(l, &c), args); err != nil {
		return c, err // the first parse took the same arguments
	}
	if err := l.Validate(); err != nil {
		return c, err
	}
	c.settings = l.Settings
	return c, nil
}

// configEnv names the configuration file when -config does not.
const configEnv = "MESHFAST_CONFIG"

// warnUnknown logs each MESHFAST_ variable that is no key's, which is most
// likely a misspelt one. It is not refused, as an unknown key is: other
// programs of the project read their own MESHFAST_ variables
// (MESHFAST_REQUIRE_REDIS in tests), which the same environment passes
// to meshfast.
func warnUnknown(logger *slog.Logger, vars map[string]string) {
	known := map[string]bool{configEnv: true}
	for _, k := range server.Keys() {
		known[k.Env] = true
	}
	var unknown []string
	for k := range vars {
		if strings.HasPrefix(k, "MESHFAST_") && !known[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		logger.Warn("not a configuration variable; ignored", "var", k)
	}
}

// flags returns the flag set writing l's settings and c's own flags.
func flags(l *server.Loader, c *command) *flag.FlagSet {
	fs := flag.NewFlagSet("meshfast", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, help is printed by parse
	fs.StringVar(&c.file, "config", "", "YAML configuration `file` (examples/edge/meshfast.yaml shows every key) ($"+configEnv+")")
	fs.BoolVar(&c.printConfig, "print-config", false, "print the configuration in effect (file, environment and flags applied) as YAML and exit")
	l.Flags(fs)
	return fs
}
