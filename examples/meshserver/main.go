// Command meshserver is the README's Mesh server in Go: a custom command
// with middleware, a channel with history, a record and a presence-tracked
// room. Pair it with examples/meshclient, or Mesh's JavaScript client.
//
//	go run ./examples/meshserver -addr :8080
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/protocol"
)

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	flag.Parse()

	e := engine.New(engine.Options{Addr: *addr})
	s, err := mesh.New(e, mesh.Options{}) // zero Options: one node, in-memory coordinator
	if err != nil {
		log.Fatal(err)
	}

	// Global middleware runs before every command, built-ins included.
	s.Use(func(c *mesh.Context) error {
		if c.Command == "mesh/join-room" && strings.Contains(string(c.Payload), "admin") {
			return protocol.NewCodeError("admins only", "EFORBIDDEN", "AuthError")
		}
		return nil
	})

	// A command with its own middleware; the result is the reply payload.
	s.Expose("greet", func(c *mesh.Context) (any, error) {
		var name string
		if err := c.Bind(&name); err != nil {
			return nil, err // the client gets {"error":"Invalid payload","code":"EINVALID",…}
		}
		return "hello, " + name, nil
	}, func(c *mesh.Context) error { c.Set("seen", time.Now()); return nil })

	s.ExposeChannel("news", nil)                     // clients may subscribe
	s.ExposeRecord("doc:1", nil)                     // readable record
	s.TrackPresence("lobby", mesh.PresenceOptions{}) // who is online in "lobby"

	// SIGINT or SIGTERM shuts down gracefully, as cmd/meshfast does: every
	// client gets close 1001 (going away) and a few seconds to go, then the
	// coordinator is released. A second signal ends the process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			_ = s.PublishToChannel(ctx, "news", "tick", 10) // keep the last 10
			_ = s.PublishRecordUpdate(ctx, "doc:1", map[string]int{"ticks": i})
		}
	}()

	if err := e.Start(); err != nil {
		log.Fatal(err)
	}
	log.Printf("Mesh server on ws://%s/", e.Addr())
	<-ctx.Done()
	stop()
	log.Printf("shutting down")
	drain, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = e.Shutdown(drain)
	if errors.Is(err, engine.ErrServerClosed) {
		err = nil
	}
	if err := errors.Join(err, s.Close()); err != nil {
		log.Fatal(err)
	}
	log.Printf("stopped")
}
