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
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/features/server"
)

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	var cfg server.Config
	o := &cfg.Engine
	m := &cfg.Mesh
	flag.StringVar(&o.Addr, "addr", env("MESHFAST_ADDR", engine.DefaultAddr), "listen address (MESHFAST_ADDR)")
	flag.IntVar(&o.Loops, "loops", envInt("MESHFAST_LOOPS", 0), "event loops, 0 = one per CPU (MESHFAST_LOOPS)")
	flag.BoolVar(&o.ReusePort, "reuseport", env("MESHFAST_REUSEPORT", "1") != "0", "one listening socket per loop (SO_REUSEPORT), no acceptor hand-off; -reuseport=false for one acceptor (MESHFAST_REUSEPORT=0)")
	flag.IntVar(&o.MaxConnections, "max-connections", envInt("MESHFAST_MAX_CONNECTIONS", 0), "refuse upgrades past this many connections, 0 = no limit (MESHFAST_MAX_CONNECTIONS)")
	flag.IntVar(&o.MaxMessageSize, "max-message-size", envInt("MESHFAST_MAX_MESSAGE_SIZE", engine.DefaultMaxMessageSize), "largest client message in bytes (MESHFAST_MAX_MESSAGE_SIZE)")
	flag.IntVar(&o.MaxPendingBytes, "max-pending-bytes", envInt("MESHFAST_MAX_PENDING_BYTES", engine.DefaultMaxPendingBytes), "outbound bytes a connection may owe before it is closed as a slow consumer (MESHFAST_MAX_PENDING_BYTES)")
	flag.DurationVar(&o.IdleTimeout, "idle-timeout", envDuration("MESHFAST_IDLE_TIMEOUT", -1), "close connections silent this long; negative leaves liveness to Mesh's ping/pong (MESHFAST_IDLE_TIMEOUT)")
	flag.DurationVar(&o.HandshakeTimeout, "handshake-timeout", envDuration("MESHFAST_HANDSHAKE_TIMEOUT", engine.DefaultHandshakeTimeout), "time allowed for the HTTP request head (MESHFAST_HANDSHAKE_TIMEOUT)")
	flag.StringVar(&m.Path, "path", env("MESHFAST_PATH", mesh.DefaultPath), "WebSocket path (MESHFAST_PATH)")
	flag.DurationVar(&m.PingInterval, "ping-interval", envDuration("MESHFAST_PING_INTERVAL", mesh.DefaultPingInterval), "Mesh ping push period (MESHFAST_PING_INTERVAL)")
	flag.DurationVar(&m.LatencyInterval, "latency-interval", envDuration("MESHFAST_LATENCY_INTERVAL", mesh.DefaultLatencyInterval), "Mesh latency probe period (MESHFAST_LATENCY_INTERVAL)")
	flag.IntVar(&m.MaxMissedPongs, "max-missed-pongs", envInt("MESHFAST_MAX_MISSED_PONGS", mesh.DefaultMaxMissedPongs), "unanswered pings before a connection is closed (MESHFAST_MAX_MISSED_PONGS)")
	flag.BoolVar(&cfg.Bench, "bench", env("MESHFAST_BENCH", "") == "1", "expose the bench/publish command and bench channels for meshfast-bench (MESHFAST_BENCH=1)")
	drain := flag.Duration("shutdown-timeout", envDuration("MESHFAST_SHUTDOWN_TIMEOUT", 10*time.Second), "how long shutdown waits for clients (MESHFAST_SHUTDOWN_TIMEOUT)")
	flag.Parse()
	o.Logf = log.Printf
	m.Logf = log.Printf

	node, err := server.Start(cfg)
	if err != nil {
		log.Fatalf("meshfast: %v", err)
	}
	log.Printf("meshfast: node %s listening on %s (Mesh protocol on %s, /health, /metrics)", node.Mesh.NodeID(), node.Addr(), m.Path)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	s := <-sig
	log.Printf("meshfast: %s, shutting down", s)
	ctx, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	if err := node.Shutdown(ctx); err != nil {
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
