package bench

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/features/server"
	"github.com/meshfast/meshfast/internal/testutil"
)

// startRedisNode starts a meshfast node on the Redis at url ("" for one
// alone), with the bench channels and publish command.
func startRedisNode(t *testing.T, url string) string {
	t.Helper()
	cfg := server.Config{
		Engine: engine.Options{Addr: "127.0.0.1:0"},
		Mesh:   mesh.Options{PingInterval: 200 * time.Millisecond, LatencyInterval: 100 * time.Millisecond},
		Bench:  true,
	}
	cfg.Redis.URL = url
	n, err := server.Start(cfg)
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

// checkMultiNode checks a small multi-node report: two topologies, each
// with every fanout message delivered to every subscriber and rpc answered,
// and the multi-node figures over the single-node ones.
func checkMultiNode(t *testing.T, rep *Report, nodes, subs, published int) {
	t.Helper()
	if len(rep.Runs) != 2 || rep.Runs[1].Label != "1 node" || len(rep.Runs[0].Targets) != nodes {
		t.Fatalf("runs %d: %+v", len(rep.Runs), rep.Runs)
	}
	for _, r := range rep.Runs {
		if metric(t, r, "fanout subscribers") != float64(subs) || metric(t, r, "fanout published") != float64(published) ||
			metric(t, r, "fanout delivered") != float64(subs*published) || metric(t, r, "fanout lost") != 0 {
			t.Fatalf("%s fanout: %+v", r.Label, r.Metrics)
		}
		if metric(t, r, "rpc replies") == 0 || metric(t, r, "rpc unanswered") != 0 {
			t.Fatalf("%s rpc: %+v", r.Label, r.Metrics)
		}
		metric(t, r, "fanout delivery p99")
		// A small run may take less CPU than /proc counts (10 ms ticks).
		if ns, _ := r.Metric("fanout server cpu per delivery"); ns > 0 {
			metric(t, r, "fanout deliveries per server core-second")
		}
	}
	found := false
	for _, x := range rep.Ratios {
		if x.Metric == "fanout delivery p50" && x.Of == rep.Runs[0].Label && x.Over == "1 node" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no multi-node over single-node ratio: %+v", rep.Ratios)
	}
}

// TestMultiNode: fanout and rpc across three nodes on one Redis
// (subscribers spread over them, the publisher on the first, so every
// message crosses Redis), then against one node alone, in one report.
func TestMultiNode(t *testing.T) {
	r := testutil.StartRedis(t)
	url := "redis://" + r.Addr
	nodes := []string{startRedisNode(t, url), startRedisNode(t, url), startRedisNode(t, url)}
	o := quick(ScenarioMultiNode, nodes...)
	o.MultiNode.Single = []string{startRedisNode(t, "")}
	o.Conns, o.Fanout.Rate, o.Fanout.Messages, o.Duration = 30, 400, 60, 1500*time.Millisecond
	o.RPC.MaxRequests = 300
	checkMultiNode(t, run(t, o), 3, 30, 60)
}

// TestMultiNodeStartsNodes: with a Redis URL the scenario starts the
// meshfast binary's nodes itself, runs, and stops them all.
func TestMultiNodeStartsNodes(t *testing.T) {
	r := testutil.StartRedis(t)
	o := quick(ScenarioMultiNode)
	o.MultiNode.Redis = "redis://" + r.Addr
	o.MultiNode.Nodes = 2
	o.MultiNode.Meshfast = buildMeshfast(t)
	o.MultiNode.NodeLoops = 1
	o.Conns, o.Fanout.Rate, o.Fanout.Messages, o.Duration = 20, 400, 40, 1500*time.Millisecond
	o.RPC.MaxRequests = 200
	rep := run(t, o)
	checkMultiNode(t, rep, 2, 20, 40)
	if _, ok := rep.Runs[0].Metric("fanout redis cpu per delivery"); !ok {
		t.Fatalf("no Redis CPU for a Redis on this host: %+v", rep.Runs[0].Metrics)
	}
	// Every node was stopped, cleanly: nothing listens, nothing is left
	// registered in Redis.
	for _, addr := range append(rep.Runs[0].Targets, rep.Runs[1].Targets...) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s still listening after the run", addr)
		}
	}
	if v, err := r.Do("SCARD", "mesh:instances"); err != nil || v.(int64) != 0 {
		t.Fatalf("nodes still registered in Redis after the run: %v, %v", v, err)
	}
	if v, err := r.Do("HLEN", "mesh:connections"); err != nil || v.(int64) != 0 {
		t.Fatalf("connections still registered in Redis after the run: %v, %v", v, err)
	}
}

// buildMeshfast builds cmd/meshfast into a temporary folder.
func buildMeshfast(t *testing.T) string {
	t.Helper()
	return testutil.BuildBinary(t, "../cmd/meshfast")
}
