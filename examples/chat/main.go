// Command chat is the smallest custom protocol on meshfast's engine: every
// text message a client sends is broadcast to every client in the lobby.
//
//	go run ./examples/chat -addr :8080
//	websocat ws://localhost:8080/chat   # in two terminals
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/meshfast/meshfast/engine"
)

type chat struct{ e *engine.Engine }

func (h *chat) OnOpen(c *engine.Conn, _ *engine.Request) { h.e.Subscribe(c, "lobby") }

func (h *chat) OnClose(*engine.Conn, engine.CloseInfo) {}

func (h *chat) OnMessage(_ *engine.Conn, op engine.OpCode, p []byte) {
	if op != engine.OpText {
		return
	}
	f := engine.NewTextFrame(p) // encoded once for everyone
	h.e.Publish("lobby", f, nil)
	f.Release()
}

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	flag.Parse()
	e := engine.New(engine.Options{Addr: *addr, Logger: slog.Default()})
	e.Handle("/chat", &chat{e: e})
	e.HandleHTTP("/health", e.HealthHandler(nil))

	// SIGINT or SIGTERM shuts down gracefully: every client gets close 1001
	// (going away) and a few seconds to go. A second signal ends the
	// process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := e.Start(); err != nil {
		log.Fatal(err)
	}
	log.Printf("chat on ws://%s/chat", e.Addr())
	<-ctx.Done()
	stop()
	log.Printf("shutting down")
	drain, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Shutdown(drain); err != nil && !errors.Is(err, engine.ErrServerClosed) {
		log.Fatal(err)
	}
	log.Printf("stopped")
}
