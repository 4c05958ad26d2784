package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/internal/testutil"
	"github.com/meshfast/meshfast/perf"
)

func TestMain(m *testing.M) {
	testutil.VerifyNoLeaks(m)
}

func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	cfg.Engine.Addr = "127.0.0.1:0"
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return n
}

func get(t *testing.T, n *Node, path string) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + n.Addr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

func TestNodeServesMeshHealthAndMetrics(t *testing.T) {
	n := startNode(t, Config{Bench: true, Mesh: mesh.Options{LatencyInterval: 20 * time.Millisecond},
		Engine: engine.Options{TickInterval: 5 * time.Millisecond, SweepPeriod: 5 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{KeepAlive: -1}).DialContext}}
	c, _, err := websocket.Dial(ctx, "ws://"+n.Addr().String()+"/?mesh-assign-id=1", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	frames := make(chan string, 64)
	go func() {
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				close(frames)
				return
			}
			frames <- string(b)
		}
	}()
	next := func(prefix string) string {
		for {
			select {
			case f, ok := <-frames:
				if !ok {
					t.Fatal("connection closed")
				}
				if strings.Contains(f, `"command":"latency:request"`) {
					_ = c.Write(ctx, websocket.MessageText, []byte(`{"id":99,"command":"latency:response","payload":{}}`))
				}
				if strings.HasPrefix(f, prefix) {
					return f
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no frame starting %s", prefix)
			}
		}
	}
	next(`{"command":"mesh/assign-id"`)
	send := func(s string) {
		if err := c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"id":1,"command":"echo","payload":"hi"}`)
	if got := next(`{"id":1`); got != `{"id":1,"command":"echo","payload":"hi"}` {
		t.Fatalf("echo %s", got)
	}
	send(`{"id":2,"command":"mesh/subscribe-channel","payload":{"channel":"bench"}}`)
	next(`{"id":2`)
	send(`{"id":3,"command":"bench/publish","payload":{"channel":"bench","message":"m1"}}`)
	if got := next(`{"command":"mesh/subscription-message"`); got != `{"command":"mesh/subscription-message","payload":{"channel":"bench","message":"m1"}}` {
		t.Fatalf("fanout %s", got)
	}
	next(`{"command":"latency"`) // a probe answered, so an RTT is recorded
	next(`{"command":"latency:request"`)
	time.Sleep(50 * time.Millisecond)
	health := get(t, n, "/health")
	for _, want := range []string{`"status":"ok"`, `"connections":1`, `"node":"`, `"metrics":{`, `mesh_command_seconds`} {
		if !strings.Contains(health, want) {
			t.Fatalf("/health lacks %s: %s", want, health)
		}
	}
	metrics := get(t, n, "/metrics")
	for _, want := range []string{"meshfast_connections 1", "mesh_commands_total", "mesh_channels 1", "meshfast_dropped_frames_total 0", `meshfast_closed_total{reason="slow_consumer"} 0`, "mesh_command_seconds{quantile=\"0.99\"}",
		"meshfast_publish_to_write_seconds_count", "mesh_latency_rtt_seconds_count", "go_goroutines"} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("/metrics lacks %s:\n%s", want, metrics)
		}
	}
}

// TestScrapeReadsStatsOnce checks that one scrape, Prometheus or JSON, calls
// Engine.Stats and Mesh.LocalTopics once each however many series they
// feed, and that the series still show this scrape's values.
func TestScrapeReadsStatsOnce(t *testing.T) {
	n := startNode(t, Config{Bench: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{KeepAlive: -1}).DialContext}}
	c, _, err := websocket.Dial(ctx, "ws://"+n.Addr().String()+"/", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"id":1,"command":"mesh/subscribe-channel","payload":{"channel":"bench"}}`)); err != nil {
		t.Fatal(err)
	}
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(string(b), `{"id":1`) {
			break
		}
	}

	var statsCalls, topicCalls int // guarded by m's lock, under which the hook runs
	m := perf.NewMetrics()
	registerMetrics(m, n.Engine,
		func() engine.Stats { statsCalls++; return n.Engine.Stats() },
		func() mesh.TopicCounts { topicCalls++; return n.Mesh.LocalTopics() })
	prom := string(m.WritePrometheus(nil))
	if statsCalls != 1 || topicCalls != 1 {
		t.Fatalf("one Prometheus scrape: Engine.Stats %d calls, LocalTopics %d; want 1 and 1", statsCalls, topicCalls)
	}
	for _, want := range []string{"\nmeshfast_connections 1\n", "\nmesh_channels 1\n", "\nmeshfast_accepted_total 1\n", "\nmesh_rooms 0\n"} {
		if !strings.Contains(prom, want) {
			t.Fatalf("scrape lacks %q:\n%s", want[1:len(want)-1], prom)
		}
	}
	js := string(m.WriteJSON(nil))
	if statsCalls != 2 || topicCalls != 2 {
		t.Fatalf("after a JSON scrape too: Engine.Stats %d calls, LocalTopics %d; want 2 and 2", statsCalls, topicCalls)
	}
	if !strings.Contains(js, `"meshfast_connections":1`) || !strings.Contains(js, `"mesh_channels":1`) {
		t.Fatalf("JSON scrape: %s", js)
	}
}

// TestStartRefusesBadConfig checks that Start returns Validate's error at
// once, for the engine's options and for a Mesh path no request matches.
func TestStartRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"loops", Config{Engine: engine.Options{Addr: "127.0.0.1:0", Loops: 100}}, "Loops 100"},
		{"negative size", Config{Engine: engine.Options{Addr: "127.0.0.1:0", MaxMessageSize: -5}}, "negative"},
		{"path", Config{Engine: engine.Options{Addr: "127.0.0.1:0"}, Mesh: mesh.Options{Path: "chat"}}, `"chat" does not start with "/"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want ErrInvalidConfig naming %s", err, tc.want)
			}
			done := make(chan error, 1)
			go func() {
				n, err := Start(tc.cfg)
				if n != nil {
					_ = n.Shutdown(context.Background())
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("Start: %v, want ErrInvalidConfig", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Start did not return")
			}
		})
	}
	if err := (Config{Mesh: mesh.Options{Path: "/chat"}}).Validate(); err != nil {
		t.Fatalf("a good path refused: %v", err)
	}
}

// TestValidateExposures checks the refusals of a Config built in Go,
// which no loader has checked.
func TestValidateExposures(t *testing.T) {
	re := regexp.MustCompile(`^a`)
	for _, tc := range []struct {
		x    Exposures
		want string
	}{
		{Exposures{Channels: []ChannelExposure{{}}}, "a channel exposure needs a name or a pattern"},
		{Exposures{Channels: []ChannelExposure{{Exposure: Exposure{Name: "a", Pattern: re}}}}, "a channel exposure needs a name or a pattern, and not both"},
		{Exposures{Channels: []ChannelExposure{{Exposure: Exposure{Name: "a"}, History: -1}}}, `channel "a": negative history`},
		{Exposures{WritableRecords: []Exposure{{}}}, "a record exposure needs"},
		{Exposures{Presence: []PresenceExposure{{Exposure: Exposure{Pattern: re}, TTL: -1}}}, "presence /^a/: negative TTL"},
	} {
		err := Config{Expose: tc.x}.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %s", tc.x, err, tc.want)
		}
	}
}

// Mesh intervals finer than the engine's default sweep make the sweep finer,
// so that a 100 ms ping interval means pings 100 ms apart, not a second.
func TestSweepFollowsMeshIntervals(t *testing.T) {
	for _, c := range []struct {
		name        string
		eo          engine.Options
		mo          mesh.Options
		sweep, tick time.Duration
	}{
		{"defaults untouched", engine.Options{}, mesh.Options{}, 0, 0},
		{"coarse intervals untouched", engine.Options{}, mesh.Options{PingInterval: 30 * time.Second, LatencyInterval: 5 * time.Second}, 0, 0},
		{"fine ping", engine.Options{}, mesh.Options{PingInterval: 100 * time.Millisecond, LatencyInterval: -1}, 50 * time.Millisecond, 50 * time.Millisecond},
		{"fine latency, tick kept when finer", engine.Options{TickInterval: 10 * time.Millisecond}, mesh.Options{LatencyInterval: 300 * time.Millisecond}, 150 * time.Millisecond, 10 * time.Millisecond},
		{"floor", engine.Options{}, mesh.Options{PingInterval: time.Millisecond}, minSweep, minSweep},
		{"explicit sweep wins", engine.Options{SweepPeriod: time.Second}, mesh.Options{PingInterval: 10 * time.Millisecond}, time.Second, 0},
	} {
		if sweep, tick := sweepFor(c.eo, c.mo); sweep != c.sweep || tick != c.tick {
			t.Errorf("%s: sweep %v tick %v, want %v %v", c.name, sweep, tick, c.sweep, c.tick)
		}
	}
	n := startNode(t, Config{Engine: engine.Options{Addr: "127.0.0.1:0"}, Mesh: mesh.Options{PingInterval: 100 * time.Millisecond}})
	if o := n.Engine.Options(); o.SweepPeriod != 50*time.Millisecond || o.TickInterval != 50*time.Millisecond {
		t.Fatalf("a node with 100 ms pings sweeps every %v (tick %v)", o.SweepPeriod, o.TickInterval)
	}
}

// TestAcceptBackoffsOnMetrics: the engine's accept back-offs (counted by
// engine.TestDescriptorExhaustion under a real descriptor shortage) reach
// /metrics.
func TestAcceptBackoffsOnMetrics(t *testing.T) {
	n := startNode(t, Config{})
	if m := get(t, n, "/metrics"); !strings.Contains(m, "\nmeshfast_accept_backoffs_total 0\n") || !strings.Contains(m, "\nmeshfast_accept_errors_total 0\n") {
		t.Fatalf("/metrics lacks the accept back-off series at 0:\n%s", m)
	}
	m := perf.NewMetrics()
	registerMetrics(m, n.Engine, func() engine.Stats {
		s := n.Engine.Stats()
		s.AcceptBackoffs, s.AcceptErrors = 2, 9
		return s
	}, n.Mesh.LocalTopics)
	prom := string(m.WritePrometheus(nil))
	for _, want := range []string{"\nmeshfast_accept_backoffs_total 2\n", "\nmeshfast_accept_errors_total 9\n"} {
		if !strings.Contains(prom, want) {
			t.Fatalf("scrape lacks %q", want[1:len(want)-1])
		}
	}
}

// TestMaxConnectionsOnMetrics: a TCP connection past max_connections is
// closed at once and counted on /metrics by its limit.
func TestMaxConnectionsOnMetrics(t *testing.T) {
	n := startNode(t, Config{Engine: engine.Options{MaxConnections: 2}})
	a := connectTo(t, n, "", nil)
	_ = connectTo(t, n, "", nil)
	c, err := net.Dial("tcp", n.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if k, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the third connection was not closed: %d bytes, %v", k, err)
	}
	_ = a.Close()
	testutil.Eventually(t, 5*time.Second, func() error {
		if s := n.Engine.Stats(); s.TCP > 1 {
			return fmt.Errorf("%d connections still open", s.TCP)
		}
		return nil
	})
	if m := get(t, n, "/metrics"); !strings.Contains(m, "\nmeshfast_connections_refused_total{limit=\"max_connections\"} 1\n") {
		t.Fatalf("/metrics does not count the refusal:\n%s", m)
	}
}
