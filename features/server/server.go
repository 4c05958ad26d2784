// Package server assembles a meshfast node: the engine, the Mesh protocol
// server, the coordinator, /health and /metrics. cmd/meshfast maps flags
// and environment variables onto Config and calls Start; embedders can do
// the same.
//
// A Node's methods are safe from any goroutine.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"time"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/perf"
)

// Config is a node's whole configuration. The zero value is a single node
// with the in-memory coordinator on :8080.
type Config struct {
	// Engine configures sockets, limits and timeouts.
	Engine engine.Options
	// Mesh configures the Mesh protocol (path, liveness, coordinator).
	Mesh mesh.Options
	// Bench exposes the channels "bench" and "bench:*" and the command
	// "bench/publish" {channel, message} that publishes to them, for
	// meshfast-bench's fanout scenario.
	Bench bool
}

// Node is a running meshfast node.
type Node struct {
	Engine  *engine.Engine
	Mesh    *mesh.Server
	Metrics *perf.Metrics
}

// Start builds and starts a node; it returns once the listener is bound.
func Start(cfg Config) (*Node, error) {
	eo := cfg.Engine
	reg := perf.NewMetrics()
	publish := reg.Tracker("meshfast_publish_to_write_seconds", "Time from a publish to its frame being written by a loop, per loop.", perf.Options{})
	if eo.PublishLatency == nil {
		eo.PublishLatency = func(loop int, d time.Duration) { publish.RecordOn(loop, int64(d)) }
	}
	if cfg.Mesh.Metrics == nil {
		cfg.Mesh.Metrics = reg
	}
	// Mesh has its own application-level liveness (ping/pong with
	// maxMissedPongs); WebSocket pings and the idle timeout would only
	// duplicate it, unless asked for explicitly.
	if eo.IdleTimeout == 0 {
		eo.IdleTimeout = -1
	}
	if eo.PingInterval == 0 {
		eo.PingInterval = -1
	}
	e := engine.New(eo)
	ms, err := mesh.New(e, cfg.Mesh)
	if err != nil {
		return nil, err
	}
	n := &Node{Engine: e, Mesh: ms, Metrics: reg}
	n.registerMetrics()
	ms.Expose("echo", func(c *mesh.Context) (any, error) { return c.Payload, nil })
	if cfg.Bench {
		n.exposeBench()
	}
	e.HandleHTTP("/health", e.HealthHandler(func(dst []byte) []byte {
		dst = append(dst, `"node":`...)
		dst = strconv.AppendQuote(dst, ms.NodeID())
		dst = append(dst, `,"metrics":`...)
		return n.Metrics.WriteJSON(dst)
	}))
	e.HandleHTTP("/metrics", func(w *engine.Response, _ *engine.Request) {
		w.ContentType = "text/plain; version=0.0.4"
		w.Body = n.Metrics.WritePrometheus(nil)
	})
	if err := e.Start(); err != nil {
		_ = ms.Close()
		return nil, err
	}
	return n, nil
}

// Addr is the bound address.
func (n *Node) Addr() net.Addr { return n.Engine.Addr() }

// Shutdown closes every connection (1001), waits for them until ctx ends,
// then releases the coordinator.
func (n *Node) Shutdown(ctx context.Context) error {
	err := n.Engine.Shutdown(ctx)
	if errors.Is(err, engine.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, n.Mesh.Close())
}

func (n *Node) registerMetrics() {
	e := n.Engine
	m := n.Metrics
	m.RegisterRuntime()
	m.GaugeFunc("meshfast_connections", "Open WebSocket and stream connections.", func() float64 { return float64(e.Stats().Connections) })
	m.GaugeFunc("meshfast_tcp_connections", "Accepted TCP connections, including handshakes.", func() float64 { return float64(e.Stats().TCP) })
	m.CounterFunc("meshfast_accepted_total", "Connections accepted.", func() uint64 { return e.Stats().Accepted })
	m.CounterFunc("meshfast_messages_in_total", "Messages received.", func() uint64 { return e.Stats().MessagesIn })
	m.CounterFunc("meshfast_bytes_in_total", "Bytes received in frames.", func() uint64 { return e.Stats().BytesIn })
	m.CounterFunc("meshfast_frames_out_total", "Frames written.", func() uint64 { return e.Stats().FramesWritten })
	m.CounterFunc("meshfast_bytes_out_total", "Bytes written.", func() uint64 { return e.Stats().BytesWritten })
	m.CounterFunc("meshfast_writes_total", "write/writev system calls by the write path.", func() uint64 { return e.Stats().Writes })
	m.CounterFunc("meshfast_slow_consumers_total", "Connections closed as slow consumers.", func() uint64 { return e.Stats().SlowConsumers })
	m.CounterFunc("meshfast_dropped_frames_total", "Frames discarded when slow consumers were cut off.", func() uint64 { return e.Stats().Dropped })
	for _, r := range engine.CloseReasons() {
		m.CounterFunc("meshfast_closed_total", "Connections ended, by reason.", func() uint64 { return e.ClosedBy(r) },
			perf.Label{Name: "reason", Value: r.String()})
	}
	ms := n.Mesh
	m.GaugeFunc("mesh_rooms", "Rooms with members on this node.", func() float64 { return float64(ms.LocalTopics().Rooms) })
	m.GaugeFunc("mesh_channels", "Channels with subscribers on this node.", func() float64 { return float64(ms.LocalTopics().Channels) })
	m.GaugeFunc("mesh_presence_rooms", "Rooms whose presence has subscribers on this node.", func() float64 { return float64(ms.LocalTopics().Presence) })
	m.GaugeFunc("mesh_records", "Records with subscribers on this node.", func() float64 { return float64(ms.LocalTopics().Records) })
}

// exposeBench adds the load generator's publish command.
func (n *Node) exposeBench() {
	ms := n.Mesh
	ms.ExposeChannel("bench", nil)
	ms.ExposeChannelPattern(regexp.MustCompile(`^bench:`), nil)
	ms.Expose("bench/publish", func(c *mesh.Context) (any, error) {
		var req struct {
			Channel string `json:"channel"`
			Message string `json:"message"`
		}
		if err := c.Bind(&req); err != nil {
			return nil, err
		}
		if req.Channel == "" {
			req.Channel = "bench"
		}
		if err := ms.PublishToChannel(c, req.Channel, req.Message, 0); err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
		return json.RawMessage("true"), nil
	})
}
