package bench

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/features/server"
)

func TestConnectEngine(t *testing.T) {
	e := startEngine(t)
	o := quick(ScenarioConnect, e.Addr().String())
	o.Conns = 200
	o.Out = filepath.Join(t.TempDir(), "connect.json")
	rep := run(t, o)
	r := rep.Runs[0]
	if n := metric(t, r, "connections"); n != 200 {
		t.Fatalf("connections %v", n)
	}
	if metric(t, r, "handshakes/s") <= 0 || metric(t, r, "tcp connects/s") <= 0 || metric(t, r, "handshake p99") <= 0 {
		t.Fatalf("metrics %+v", r.Metrics)
	}
	if b, err := os.ReadFile(o.Out); err != nil || len(b) < 100 {
		t.Fatalf("report file: %v", err)
	}
}

// TestConnectWorkerProcesses spreads connections over two worker processes
// (this test binary, re-executed) and an accept-only TCP probe listener.
func TestConnectWorkerProcesses(t *testing.T) {
	e := startEngine(t)
	o := quick(ScenarioConnect, e.Addr().String())
	o.InProcess, o.Workers, o.Conns = false, 2, 150
	o.Connect.TCPProbe = ProbeListener
	r := run(t, o).Runs[0]
	if n := metric(t, r, "connections"); n != 150 || r.Workers != 2 {
		t.Fatalf("connections %v over %d workers", n, r.Workers)
	}
	if r.Latency["handshake"].Count() != 150 || r.Latency["tcp_connect"].Count() != 150 {
		t.Fatalf("merged histograms: %d handshakes, %d connects", r.Latency["handshake"].Count(), r.Latency["tcp_connect"].Count())
	}
}

func TestIdleEngine(t *testing.T) {
	e := startEngine(t)
	o := quick(ScenarioIdle, e.Addr().String())
	o.Conns = 200
	o.Idle.SampleAt = []int{100, 200}
	r := run(t, o).Runs[0]
	if len(r.Memory) != 4 || r.Memory[1].Conns != 100 || r.Memory[2].Conns != 200 {
		t.Fatalf("memory samples %+v", r.Memory)
	}
	if r.Memory[2].ServerConns != 200 {
		t.Fatalf("/health saw %d connections", r.Memory[2].ServerConns)
	}
	metric(t, r, "rss per extra connection")
	if metric(t, r, "closed while held") != 0 {
		t.Fatal("connections closed while held")
	}
}

// TestRPC runs echo round trips against the baseline and, as the second
// run, the engine's echo protocol (which answers with the same frame).
func TestRPC(t *testing.T) {
	b := startBaseline(t)
	e := startEngine(t)
	o := quick(ScenarioRPC, b.Addr().String())
	o.Label, o.BaselineTargets, o.BaselineLabel = "baseline", []string{e.Addr().String()}, "engine"
	o.Conns = 20
	o.RPC.Depth = 2
	rep := run(t, o)
	for _, r := range rep.Runs {
		if metric(t, r, "clients") != 20 || metric(t, r, "requests/s") <= 0 || metric(t, r, "rtt p50") <= 0 {
			t.Fatalf("%s: %+v", r.Label, r.Metrics)
		}
		if metric(t, r, "unanswered") != 0 {
			t.Fatalf("%s: unanswered requests", r.Label)
		}
	}
	if len(rep.Ratios) == 0 {
		t.Fatal("no ratios between the runs")
	}
}

func TestRPCOpenLoop(t *testing.T) {
	b := startBaseline(t)
	o := quick(ScenarioRPC, b.Addr().String())
	// 10 connections at 200/s each: the 400 requests take ~0.2s, well
	// inside Duration, so the count (not the clock) ends the run.
	o.Conns, o.RPC.Rate, o.RPC.MaxRequests, o.Duration = 10, 200, 400, 1500*time.Millisecond
	r := run(t, o).Runs[0]
	if n := metric(t, r, "replies"); n != 400 {
		t.Fatalf("replies %v, want 400", n)
	}
}

// TestFanout publishes from two publishers through the baseline server and
// then measures the write(2) ceiling with the same subscribers.
func TestFanout(t *testing.T) {
	b := startBaseline(t)
	o := quick(ScenarioFanout, b.Addr().String())
	o.Conns = 50
	// 100 publishes at 400/s end by count in ~0.25s, inside Duration.
	o.Fanout.Publishers, o.Fanout.Rate, o.Fanout.Messages, o.Fanout.Ceiling = 2, 400, 100, true
	o.Duration = 1500 * time.Millisecond
	rep := run(t, o)
	f := rep.Runs[0]
	if pub := metric(t, f, "published"); pub != 100 {
		t.Fatalf("published %v, want 100", pub)
	}
	if metric(t, f, "subscribers") != 50 || metric(t, f, "delivered") != 5000 || metric(t, f, "lost") != 0 ||
		metric(t, f, "duplicates") != 0 {
		t.Fatalf("fanout %+v", f.Metrics)
	}
	metric(t, f, "delivery p99")
	metric(t, f, "client frames per read")
	c := rep.Runs[1]
	if c.Label != "ceiling" || metric(t, c, "delivered") != metric(t, c, "expected deliveries") {
		t.Fatalf("ceiling %+v", c.Metrics)
	}
	metric(t, c, "sweep p50")
}

func TestFanoutClosedLoop(t *testing.T) {
	b := startBaseline(t)
	o := quick(ScenarioFanout, b.Addr().String())
	o.Conns, o.Fanout.Rate, o.Fanout.Messages, o.Duration = 20, -1, 300, 1500*time.Millisecond
	r := run(t, o).Runs[0]
	if metric(t, r, "published") != 300 || metric(t, r, "lost") != 0 {
		t.Fatalf("%+v", r.Metrics)
	}
}

func TestCeiling(t *testing.T) {
	o := quick(ScenarioCeiling)
	o.Conns, o.Ceiling.Writers, o.Duration = 60, 2, 1500*time.Millisecond
	r := run(t, o).Runs[0]
	if metric(t, r, "published") == 0 || metric(t, r, "delivered") != metric(t, r, "expected deliveries") ||
		metric(t, r, "writes/s") <= 0 || metric(t, r, "write errors") != 0 {
		t.Fatalf("%+v", r.Metrics)
	}
}

func TestSim(t *testing.T) {
	o := quick(ScenarioSim)
	o.Sim = SimOptions{Conns: 200, Publishes: 5, Loops: 2}
	r := run(t, o).Runs[0]
	if metric(t, r, "writes per delivery") != 1 || metric(t, r, "cpu ns per subscriber per broadcast") <= 0 ||
		metric(t, r, "heap per connection") <= 0 {
		t.Fatalf("%+v", r.Metrics)
	}
}

// startNode starts a meshfast node (Mesh protocol, bench/publish exposed)
// with fast liveness pushes, so held connections must answer them.
func startNode(t *testing.T) string {
	t.Helper()
	n, err := server.Start(server.Config{
		Engine: engine.Options{Addr: "127.0.0.1:0"},
		Mesh:   mesh.Options{PingInterval: 200 * time.Millisecond, LatencyInterval: 100 * time.Millisecond},
		Bench:  true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	return n.Addr().String()
}

// TestMeshNode runs idle, rpc and fanout against a meshfast node: its
// pings and latency probes are answered, its echo and bench/publish served,
// and its /metrics read (heap, write counters).
func TestMeshNode(t *testing.T) {
	addr := startNode(t)
	idle := quick(ScenarioIdle, addr)
	idle.Conns, idle.Duration, idle.Idle.SampleAt = 60, time.Second, []int{30, 60}
	r := run(t, idle).Runs[0]
	if metric(t, r, "closed while held") != 0 || r.Counts["liveness_answers"] == 0 {
		t.Fatalf("idle: %+v %v", r.Metrics, r.Counts)
	}
	metric(t, r, "heap per extra connection")

	rpc := quick(ScenarioRPC, addr)
	rpc.Conns = 10
	if r := run(t, rpc).Runs[0]; metric(t, r, "replies") == 0 || metric(t, r, "unanswered") != 0 {
		t.Fatalf("rpc: %+v", r.Metrics)
	}

	fan := quick(ScenarioFanout, addr)
	fan.Conns, fan.Fanout.Rate, fan.Fanout.Messages, fan.Duration = 40, 400, 100, 1500*time.Millisecond
	r = run(t, fan).Runs[0]
	if metric(t, r, "delivered") != 4000 || metric(t, r, "lost") != 0 || metric(t, r, "server frames per write") <= 0 {
		t.Fatalf("fanout: %+v", r.Metrics)
	}
}

// TestSSENode holds streams and WebSockets against a meshfast node, and
// fans one channel out to both in the same run: every subscriber, stream
// or WebSocket, gets every message once.
func TestSSENode(t *testing.T) {
	addr := startNode(t)
	idle := quick(ScenarioIdle, addr)
	idle.Conns, idle.Duration, idle.Idle.SampleAt, idle.SSE = 60, 500*time.Millisecond, []int{30, 60}, 1
	r := run(t, idle).Runs[0]
	if metric(t, r, "closed while held") != 0 || metric(t, r, "of them SSE streams") != 60 || metric(t, r, "connections") != 60 {
		t.Fatalf("idle: %+v %v", r.Metrics, r.Counts)
	}
	metric(t, r, "rss per extra connection")

	fan := quick(ScenarioFanout, addr)
	fan.Conns, fan.Fanout.Rate, fan.Fanout.Messages, fan.Duration, fan.SSE = 40, 400, 100, 1500*time.Millisecond, 0.5
	r = run(t, fan).Runs[0]
	if metric(t, r, "delivered") != 4000 || metric(t, r, "lost") != 0 || metric(t, r, "duplicates") != 0 ||
		metric(t, r, "of them SSE streams") != 20 || metric(t, r, "SSE deliveries") != 2000 || metric(t, r, "WebSocket deliveries") != 2000 {
		t.Fatalf("fanout: %+v", r.Metrics)
	}
	metric(t, r, "SSE deliveries/s")
	metric(t, r, "WebSocket deliveries/s")
}

func TestIsStream(t *testing.T) {
	for _, share := range []float64{0, 0.25, 0.5, 1} {
		n := 0
		for k := 0; k < 100; k++ {
			if isStream(k, share) {
				n++
			}
		}
		if n != int(share*100) {
			t.Errorf("share %v: %d of 100 are streams", share, n)
		}
	}
}

// TestZPSNode fans durable events out over the zero-pub-sub gateway: every
// subscriber gets every publish once, and publishers' acks are matched to
// their publishes.
func TestZPSNode(t *testing.T) {
	cfg := server.Config{Engine: engine.Options{Addr: "127.0.0.1:0"}, Bench: true}
	cfg.Streams.Gateway.Limits.AllowClientPublish = true
	cfg.Streams.Gateway.Limits.MaxMessagesPerWindow = -1
	n, err := server.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	fan := quick(ScenarioFanout, n.Addr().String())
	fan.Fanout.Protocol = ProtocolZPS
	fan.Conns, fan.Fanout.Publishers, fan.Fanout.Rate, fan.Fanout.Messages, fan.Duration = 40, 2, 400, 100, 1500*time.Millisecond
	r := run(t, fan).Runs[0]
	if metric(t, r, "published") != 100 || metric(t, r, "delivered") != 4000 || metric(t, r, "lost") != 0 ||
		metric(t, r, "duplicates") != 0 || r.Counts["replies"] != 100 {
		t.Fatalf("fanout: %+v %v", r.Metrics, r.Counts)
	}
	metric(t, r, "delivery p99")
	metric(t, r, "rtt p99")
	o := quick(ScenarioFanout, n.Addr().String())
	o.Fanout.Protocol, o.SSE = ProtocolZPS, 0.5
	if err := o.Validate(); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("zps with SSE: %v", err)
	}
}
