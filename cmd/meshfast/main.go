// Command meshfast runs the meshfast edge server. It maps flags and
// environment variables to options and nothing more.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/meshfast/meshfast/engine"
)

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	var o engine.Options
	flag.StringVar(&o.Addr, "addr", env("MESHFAST_ADDR", engine.DefaultAddr), "listen address (MESHFAST_ADDR)")
	flag.IntVar(&o.Loops, "loops", envInt("MESHFAST_LOOPS", 0), "event loops, 0 = one per CPU (MESHFAST_LOOPS)")
	flag.IntVar(&o.MaxConnections, "max-connections", envInt("MESHFAST_MAX_CONNECTIONS", 0), "refuse upgrades past this many connections, 0 = no limit (MESHFAST_MAX_CONNECTIONS)")
	flag.IntVar(&o.MaxMessageSize, "max-message-size", envInt("MESHFAST_MAX_MESSAGE_SIZE", engine.DefaultMaxMessageSize), "largest client message in bytes (MESHFAST_MAX_MESSAGE_SIZE)")
	flag.IntVar(&o.MaxPendingBytes, "max-pending-bytes", envInt("MESHFAST_MAX_PENDING_BYTES", engine.DefaultMaxPendingBytes), "outbound bytes a connection may owe before it is closed as a slow consumer (MESHFAST_MAX_PENDING_BYTES)")
	flag.DurationVar(&o.IdleTimeout, "idle-timeout", envDuration("MESHFAST_IDLE_TIMEOUT", engine.DefaultIdleTimeout), "close connections silent this long, negative disables (MESHFAST_IDLE_TIMEOUT)")
	flag.DurationVar(&o.HandshakeTimeout, "handshake-timeout", envDuration("MESHFAST_HANDSHAKE_TIMEOUT", engine.DefaultHandshakeTimeout), "time allowed for the HTTP request head (MESHFAST_HANDSHAKE_TIMEOUT)")
	path := flag.String("path", env("MESHFAST_PATH", "/"), "WebSocket path (MESHFAST_PATH)")
	drain := flag.Duration("shutdown-timeout", envDuration("MESHFAST_SHUTDOWN_TIMEOUT", 10*time.Second), "how long shutdown waits for clients (MESHFAST_SHUTDOWN_TIMEOUT)")
	flag.Parse()
	o.Logf = log.Printf

	e := engine.New(o)
	e.Handle(*path, engine.Echo{})
	e.HandleHTTP("/health", e.HealthHandler(nil))
	if err := e.Start(); err != nil {
		log.Fatalf("meshfast: %v", err)
	}
	log.Printf("meshfast: listening on %s (WebSocket echo on %s, health on /health)", e.Addr(), *path)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	s := <-sig
	log.Printf("meshfast: %s, shutting down", s)
	ctx, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "meshfast: shutdown: %v\n", err)
		os.Exit(1)
	}
	log.Printf("meshfast: stopped")
}

func env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

func envInt(key string, def int) int {
	if v := os.Getenv(key); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			log.Fatalf("meshfast: %s=%q: %v", key, v, err)
		}
		return n
	}
	return def
}

func envDuration(key string, def time.Duration) time.Duration {
	if v := os.Getenv(key); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			log.Fatalf("meshfast: %s=%q: %v", key, v, err)
		}
		return d
	}
	return def
}
