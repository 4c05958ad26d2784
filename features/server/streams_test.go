package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	zpsclient "github.com/meshfast/meshfast/client/zps"
	"github.com/meshfast/meshfast/features/streams"
	"github.com/meshfast/meshfast/features/streams/gateway"
	redisstore "github.com/meshfast/meshfast/features/streams/store/redis"
	"github.com/meshfast/meshfast/internal/testutil"
	"github.com/meshfast/meshfast/protocol/zps"
)

// gatewayClient connects a zps client to nd's gateway.
func gatewayClient(t *testing.T, nd *Node, o zpsclient.Options) *zpsclient.Client {
	t.Helper()
	c := zpsclient.New("ws://"+nd.Addr().String()+nd.Gateway.Options().Path, o)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// seqs collects the sequences a handler gets, by room.
type seqs struct {
	mu sync.Mutex
	m  map[string][]uint64
}

func newSeqs() *seqs { return &seqs{m: map[string][]uint64{}} }

func (s *seqs) handle(_ context.Context, ev *zpsclient.Event) error {
	s.mu.Lock()
	s.m[ev.Room] = append(s.m[ev.Room], ev.Sequence)
	s.mu.Unlock()
	return nil
}

func (s *seqs) wait(t *testing.T, room string, want string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if got := fmt.Sprint(s.m[room]); got != want {
			return fmt.Errorf("%s: got %s, want %s", room, got, want)
		}
		return nil
	})
}

// TestGatewayBesideMesh: one meshfast node serves Mesh on / and the
// gateway on /zps on the same port and engine; the gateway verifies init's
// token with the node's JWT settings and authorizes rooms by its allow
// claim; the HTTP API publishes durable events (single, batch, idempotent
// by id) and ephemeral ones.
func TestGatewayBesideMesh(t *testing.T) {
	cfg := Config{API: APIConfig{Keys: []string{testKey}}, JWT: JWTConfig{HMACSecret: testSecret}}
	cfg.Streams.Gateway.Limits.AllowClientPublish = true
	n := startNode(t, cfg)
	base := "http://" + n.Addr().String() + "/api"

	// Mesh on /, with a token in the query string.
	mc := connectTo(t, n, "?token="+hsToken(t, map[string]any{"sub": "alice"}), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r, err := mc.Command(ctx, "echo", "hi"); err != nil || string(r) != `"hi"` {
		t.Fatalf("Mesh echo beside the gateway: %s %v", r, err)
	}

	// The gateway on /zps, the token on init.
	errs := make(chan error, 8)
	tok := hsToken(t, map[string]any{"sub": "alice", "allow": map[string]any{"streams": []string{"^chat:"}, "write_streams": []string{}}})
	gc := gatewayClient(t, n, zpsclient.Options{SubscriberID: "alice-phone", Token: tok, OnError: func(err error) { errs <- err }})
	got := newSeqs()
	if _, err := gc.Subscribe("chat:1", got.handle); err != nil {
		t.Fatal(err)
	}
	if _, err := gc.Subscribe("order:1", got.handle); err != nil {
		t.Fatal(err)
	}
	expectServerError(t, errs, zps.CodeAccessDenied, "Access denied for room: order:1")
	if _, err := gc.Publish(ctx, zpsclient.PublishEvent{Room: "chat:1", Type: "m"}); !isServerError(err, zps.CodeAccessDenied) {
		t.Fatalf("publish without write_streams: %v", err)
	}
	bad := zpsclient.New("ws://"+n.Addr().String()+"/zps", zpsclient.Options{Token: "nope"})
	defer bad.Close()
	if err := bad.Connect(ctx); !isServerError(err, zps.CodeUnauthorized) {
		t.Fatalf("a bad token: %v", err)
	}

	// The API publishes; the id makes a retry the same event.
	out := mustAPI(t, base, "POST", "/streams/publish", `{"id":"evt-1","room":"chat:1","type":"message.created","payload":{"text":"hi"},"metadata":{"producer":"api"}}`)
	ev := out["event"].(map[string]any)
	if ev["sequence"] != 1.0 || ev["id"] != "evt-1" || out["duplicate"] != false || ev["metadata"].(map[string]any)["producer"] != "api" {
		t.Fatalf("publish: %v", out)
	}
	out = mustAPI(t, base, "POST", "/streams/publish", `{"id":"evt-1","room":"chat:1","type":"message.created","payload":{"text":"again"}}`)
	if ev := out["event"].(map[string]any); ev["sequence"] != 1.0 || out["duplicate"] != true || ev["payload"].(map[string]any)["text"] != "hi" {
		t.Fatalf("publish again: %v", out)
	}
	out = mustAPI(t, base, "POST", "/streams/publish_batch", `{"events":[{"room":"chat:1","type":"a"},{"room":"chat:2","type":"b","ttlMs":60000},{"room":"chat:1","type":"c","id":"evt-1"}]}`)
	ps := out["published"].([]any)
	if len(ps) != 3 || ps[0].(map[string]any)["event"].(map[string]any)["sequence"] != 2.0 ||
		ps[1].(map[string]any)["event"].(map[string]any)["sequence"] != 1.0 || ps[2].(map[string]any)["duplicate"] != true {
		t.Fatalf("batch: %v", out)
	}
	got.wait(t, "chat:1", "[1 2]")

	// Ephemeral: fan-out only, to the node's ephemeral subscribers.
	eph := make(chan string, 1)
	es, err := n.Streams.SubscribeEphemeral(ctx, streams.EphemeralOptions{Rooms: []string{"chat:1"}}, func(_ context.Context, e *streams.EphemeralEvent) error {
		eph <- e.Type + " " + string(e.Payload)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	mustAPI(t, base, "POST", "/streams/publish_ephemeral", `{"room":"chat:1","type":"typing","payload":{"userId":"u1"}}`)
	select {
	case s := <-eph:
		if s != `typing {"userId":"u1"}` {
			t.Fatalf("ephemeral %s", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no ephemeral event")
	}

	// Refusals: 400 for what is not valid, 403 for the middleware's, 401.
	for _, c := range []struct {
		path, body string
		status     int
	}{
		{"/streams/publish", `{"room":"chat","type":"m"}`, 400},
		{"/streams/publish", `{"room":"chat:1"}`, 400},
		{"/streams/publish", `{"room":"chat:1","type":"m","payload":1,"extra":2}`, 400},
		{"/streams/publish", `{"room":"chat:1","type":"m","metadata":[1]}`, 400},
		{"/streams/publish_batch", `{"events":[]}`, 400},
		{"/streams/publish_batch", `{"events":[{"room":"chat:1","type":"m"},{"room":"x"}]}`, 400},
		{"/streams/publish_ephemeral", `{"room":"chat:1","type":"presence.enter"}`, 400},
		{"/streams/publish", `{"room":"chat:blocked","type":"m"}`, 403},
	} {
		if c.status == 403 {
			n.Streams.Use(func(ctx context.Context, op *streams.Op, next func(context.Context) error) error {
				if op.Room == "chat:blocked" {
					return errors.New("no tenant")
				}
				return next(ctx)
			})
		}
		if st, body, _ := apiDo(t, base, testKey, "POST", c.path, c.body); st != c.status {
			t.Errorf("%s %s: %d %v, want %d", c.path, c.body, st, body, c.status)
		}
	}
	if st, _, _ := apiDo(t, base, "", "POST", "/streams/publish", `{"room":"chat:1","type":"m"}`); st != 401 {
		t.Fatalf("without a key: %d", st)
	}
	metrics := get(t, n, "/metrics")
	for _, m := range []string{"meshfast_zps_connections 1", "meshfast_streams_published_total 3", `meshfast_zps_errors_total{code="4408"} 2`} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics has no %q:\n%s", m, grepLines(metrics, "zps_"))
		}
	}
}

func expectServerError(t *testing.T, errs chan error, code, msg string) {
	t.Helper()
	select {
	case err := <-errs:
		var se *zpsclient.ServerError
		if !errors.As(err, &se) || se.Code != code || se.Message != msg {
			t.Fatalf("error %v, want %s %q", err, code, msg)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no error %s", code)
	}
}

func isServerError(err error, code string) bool {
	var se *zpsclient.ServerError
	return errors.As(err, &se) && se.Code == code
}

// TestStreamsOnRedis: nodes on one Redis keep events in Redis Streams by
// themselves (storage auto): a room's sequence is shared, a subscriber on
// one node gets what the other node's API published, in order.
func TestStreamsOnRedis(t *testing.T) {
	r := singleRedis(t)
	a := startNode(t, Config{Redis: RedisConfig{URL: r.url, Options: fastRedis()}, API: APIConfig{Keys: []string{testKey}}})
	b := startNode(t, Config{Redis: RedisConfig{URL: r.url, Options: fastRedis()}, API: APIConfig{Keys: []string{testKey}}})
	if a.Streams.Store().Name() != "redis" {
		t.Fatalf("storage %s", a.Streams.Store().Name())
	}
	got := newSeqs()
	gc := gatewayClient(t, b, zpsclient.Options{SubscriberID: "s"})
	if _, err := gc.Subscribe("chat:r", got.handle, zpsclient.FromSequence(0)); err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for i := range 20 {
		nd := a
		if i%2 == 1 {
			nd = b
		}
		out := mustAPI(t, "http://"+nd.Addr().String()+"/api", "POST", "/streams/publish", fmt.Sprintf(`{"room":"chat:r","type":"m","payload":%d}`, i))
		if s := out["event"].(map[string]any)["sequence"]; s != float64(i+1) {
			t.Fatalf("publish %d on node %d: sequence %v", i, i%2, s)
		}
		want = append(want, uint64(i+1))
	}
	got.wait(t, "chat:r", fmt.Sprint(want))
	if k, err := r.cli("EXISTS", "zps:{chat:r}:events"); err != nil || strings.TrimSpace(k) != "1" {
		t.Fatalf("no Redis stream: %q %v", k, err)
	}
}

// TestStreamsConfig: what the node refuses, and the gateway's path.
func TestStreamsConfig(t *testing.T) {
	for _, c := range []Config{
		{Streams: StreamsConfig{Storage: "redis"}},
		{Streams: StreamsConfig{Storage: "disk"}},
		{Streams: StreamsConfig{Gateway: gateway.Options{Path: "/"}}},
		{Streams: StreamsConfig{Gateway: gateway.Options{Path: "zps"}}},
		{Streams: StreamsConfig{Gateway: gateway.Options{Auth: gateway.Auth{Scopes: []string{"a:b"}}}}},
	} {
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: %v", c.Streams, err)
		}
	}
	l := NewLoader()
	if err := l.LoadFile("s.yaml", []byte("streams:\n  gateway:\n    path: /events2\n    max_connections: 0\n    init_timeout: off\n    scopes: [chat, order]\n")); err != nil {
		t.Fatal(err)
	}
	g := l.Settings.Node.Streams.Gateway
	if g.Path != "/events2" || g.Limits.MaxConnections != -1 || g.Limits.InitTimeout != -1 || fmt.Sprint(g.Auth.Scopes) != "[chat order]" {
		t.Fatalf("loaded %+v", g)
	}
	n := startNode(t, l.Settings.Node)
	if n.Gateway.Options().Path != "/events2" || n.Gateway.Options().Limits.MaxConnections != 0 {
		t.Fatalf("gateway options %+v", n.Gateway.Options())
	}
	gatewayClient(t, n, zpsclient.Options{})
}

// TestAllowedOriginsEveryPath: the node's one allow-list guards every path
// a browser page can open, so that a page refused on Mesh's does not get
// the same user's events over the event streams' or the gateway's.
func TestAllowedOriginsEveryPath(t *testing.T) {
	cfg := Config{}
	cfg.Mesh.AllowedOrigins = []string{"https://app.example.com"}
	cfg.Expose.Channels = []ChannelExposure{{Exposure: Exposure{Name: "news"}}}
	n := startNode(t, cfg)
	status := func(path, origin string, sse bool) int {
		t.Helper()
		c, err := net.Dial("tcp", n.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		req := "GET " + path + " HTTP/1.1\r\nHost: x\r\nOrigin: " + origin + "\r\n"
		if sse {
			req += "Accept: text/event-stream\r\n\r\n"
		} else {
			req += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
		}
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s from %s: %v", path, origin, err)
		}
		return resp.StatusCode
	}
	for _, tc := range []struct {
		path string
		sse  bool
		ok   int
	}{
		{"/", false, 101},
		{n.Gateway.Options().Path, false, 101},
		{"/events?channel=news", true, 200},
	} {
		if got := status(tc.path, "https://app.example.com", tc.sse); got != tc.ok {
			t.Errorf("%s from the allowed origin: %d, want %d", tc.path, got, tc.ok)
		}
		if got := status(tc.path, "https://evil.example", tc.sse); got != 403 {
			t.Errorf("%s from another origin: %d, want 403", tc.path, got)
		}
	}
}

// TestHealthCoversTheStreamsStore: /health shows the streams store's state
// beside the coordinator's and answers 503 while the store's Redis is
// down, then 200 again once it is back, the coordinator fine throughout.
func TestHealthCoversTheStreamsStore(t *testing.T) {
	r := testutil.StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := redisstore.New(ctx, redisstore.Options{Addrs: []string{r.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() }) // given, not owned: closed after the node's shutdown (cleanups run last first)
	n := startNode(t, Config{Streams: StreamsConfig{Store: st}})
	health := func(code int, member string) func() error {
		return func() error {
			got, body := status(t, n, "/health")
			if got != code || !strings.Contains(body, member) {
				return fmt.Errorf("/health: %d %s, want %d and %s", got, body, code, member)
			}
			return nil
		}
	}
	testutil.Eventually(t, 10*time.Second, health(200, `"streams":{"ok":true`))
	r.Kill()
	testutil.Eventually(t, 10*time.Second, health(503, `"streams":{"ok":false,"error":`))
	r.Restart(t)
	testutil.Eventually(t, 20*time.Second, health(200, `"streams":{"ok":true`))
}
