package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/meshfast/meshfast/client"
	"github.com/meshfast/meshfast/internal/testutil"
	"github.com/meshfast/meshfast/protocol"
)

// backend is a real HTTP backend for the proxies, started in the test.
type backend struct {
	*httptest.Server
	mu       sync.Mutex
	calls    []map[string]any // command calls, in arrival order
	inflight atomic.Int32
}

func startBackend(t *testing.T, connect func(call map[string]any) (int, string)) *backend {
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var call map[string]any
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &call); err != nil {
			http.Error(w, "bad json", 400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/connect" {
			st, ans := connect(call)
			w.WriteHeader(st)
			io.WriteString(w, ans)
			return
		}
		b.inflight.Add(1)
		defer b.inflight.Add(-1)
		b.mu.Lock()
		b.calls = append(b.calls, call)
		b.mu.Unlock()
		payload, _ := json.Marshal(call["payload"])
		switch call["command"] {
		case "echo-call":
			out, _ := json.Marshal(map[string]any{"result": call})
			w.Write(out)
		case "fail":
			io.WriteString(w, `{"error":{"message":"not allowed","code":"ENOPE","name":"NopeError"}}`)
		case "slow":
			select {
			case <-time.After(2 * time.Second):
				io.WriteString(w, `{"result":"late"}`)
			case <-r.Context().Done(): // meshfast gave up: so does the backend
			}
		case "seq":
			var ms int
			json.Unmarshal(payload, &ms)
			time.Sleep(time.Duration(ms%7) * time.Millisecond) // later ones may finish first
			fmt.Fprintf(w, `{"result":%s}`, payload)
		case "none":
			io.WriteString(w, `{}`)
		case "500":
			http.Error(w, "boom", 500)
		case "garbage":
			io.WriteString(w, `not json`)
		default:
			fmt.Fprintf(w, `{"result":%s}`, payload)
		}
	}))
	t.Cleanup(b.Close)
	return b
}

// TestCommandProxy forwards unregistered commands to a real HTTP backend:
// its answer is the reply, its error Mesh's error reply with its code; a
// slow backend times out, a dead one answers EUNAVAILABLE; a connection's
// commands reach the backend and come back in the order sent; the
// concurrency cap holds; every outcome is counted.
func TestCommandProxy(t *testing.T) {
	b := startBackend(t, nil)
	cfg := Config{Proxy: ProxyConfig{CommandURL: b.URL + "/command", Timeout: 500 * time.Millisecond, MaxConcurrency: 2},
		JWT: JWTConfig{HMACSecret: testSecret}}
	cfg.Engine.Loops = 1 // the one loop the barrier below reaches serves every connection of the test
	n := startNode(t, cfg)
	// The cap is on meshfast's calls: counted where they leave it (the
	// backend's own count lags a cancelled call by however long its server
	// takes to notice the hang-up). Set before any call is made.
	var calls concurrency
	n.proxy.client.Transport = &countingTransport{next: n.proxy.client.Transport, c: &calls}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := connectTo(t, n, "?token="+hsToken(t, map[string]any{"sub": "alice", "meta": map[string]any{"team": "a"}}), nil)
	// The calls are made on goroutines the event loop hands commands to:
	// have the loop (the engine makes its state on its first connection)
	// pass a point after the write above, so that the commands it reads
	// next, and the calls they make, see it.
	var synced sync.WaitGroup
	synced.Add(n.Engine.Stats().Loops)
	n.Engine.ForEachLoop(func(int) { synced.Done() })
	synced.Wait()
	var ce *protocol.CodeError

	t.Run("answer", func(t *testing.T) {
		out, err := c.Command(ctx, "echo-call", map[string]int{"x": 1})
		if err != nil {
			t.Fatal(err)
		}
		var call map[string]any
		_ = json.Unmarshal(out, &call)
		want := map[string]string{"command": "echo-call", "payload": "map[x:1]", "connection_id": c.ConnectionID(),
			"user": "alice", "metadata": "map[team:a]", "node": n.Mesh.NodeID()}
		for k, v := range want {
			if fmt.Sprint(call[k]) != v {
				t.Errorf("the backend got %s = %v, want %s", k, call[k], v)
			}
		}
		if out, err := c.Command(ctx, "none", nil); err != nil || out != nil {
			t.Fatalf("no result: %s %v, want no payload", out, err)
		}
		// A Go handler still wins over the proxy.
		if out, err := c.Command(ctx, "echo", "local"); err != nil || string(out) != `"local"` {
			t.Fatalf("echo: %s %v", out, err)
		}
		if _, err := c.Command(ctx, "mesh/nothing", nil); !errors.As(err, &ce) || ce.Code != protocol.CodeNotFound {
			t.Fatalf("mesh/ names are not proxied: %v", err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct{ cmd, code, msg string }{
			{"fail", "ENOPE", "not allowed"},
			{"slow", protocol.CodeTimeout, "the backend did not answer in time"},
			{"500", CodeUnavailable, "the backend could not answer"},
			{"garbage", CodeUnavailable, "the backend could not answer"},
		} {
			_, err := c.Command(ctx, tc.cmd, nil)
			if !errors.As(err, &ce) || ce.Code != tc.code || ce.Message != tc.msg {
				t.Errorf("%s: %v, want %s %q", tc.cmd, err, tc.code, tc.msg)
			}
		}
		if ce.Name != "BackendError" {
			t.Errorf("name %q", ce.Name)
		}
	})

	t.Run("order kept", func(t *testing.T) {
		// One connection sends k proxied commands without waiting; the
		// backend takes a varying time over each, yet sees them, and the
		// client gets their replies, in the order sent.
		const k = 30
		ws, _ := rawConnect(t, n, "?token="+hsToken(t, map[string]any{"sub": "orderly"}))
		b.mu.Lock()
		b.calls = nil
		b.mu.Unlock()
		for i := 1; i <= k; i++ {
			if err := ws.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf(`{"id":%d,"command":"seq","payload":%d}`, i, i))); err != nil {
				t.Fatal(err)
			}
		}
		next := 1
		for next <= k {
			_, msg, err := ws.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var m struct {
				ID      int             `json:"id"`
				Command string          `json:"command"`
				Payload json.RawMessage `json:"payload"`
			}
			if json.Unmarshal(msg, &m) != nil || m.Command != "seq" {
				continue // a push (latency, ping)
			}
			if m.ID != next || string(m.Payload) != fmt.Sprint(next) {
				t.Fatalf("reply %s, want id %d with payload %d", msg, next, next)
			}
			next++
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		var seen []int
		for _, call := range b.calls {
			seen = append(seen, int(call["payload"].(float64)))
		}
		for i, v := range seen {
			if v != i+1 {
				t.Fatalf("the backend saw one connection's commands out of order: %v", seen)
			}
		}
		if len(seen) != k {
			t.Fatalf("%d calls", len(seen))
		}
	})

	t.Run("concurrency cap", func(t *testing.T) {
		testutil.Eventually(t, 5*time.Second, func() error {
			if n := b.inflight.Load(); n != 0 {
				return fmt.Errorf("%d calls still at the backend", n)
			}
			return nil
		})
		testutil.Eventually(t, 5*time.Second, func() error {
			if n := calls.now.Load(); n != 0 {
				return fmt.Errorf("%d calls still in flight", n)
			}
			return nil
		})
		calls.peak.Store(0)
		var conns []*client.Client
		for i := 0; i < 5; i++ {
			conns = append(conns, connectTo(t, n, "?token="+hsToken(t, map[string]any{"sub": fmt.Sprint("u", i)}), nil))
		}
		// Five slow calls, two slots: two reach the backend and time out;
		// the other three wait for a slot within the same timeout, so they
		// end EBUSY, or ETIMEOUT if a slot came free at their last moment.
		var wg sync.WaitGroup
		var failed atomic.Int32
		for _, cc := range conns {
			wg.Add(1)
			go func(cc *client.Client) {
				defer wg.Done()
				_, err := cc.Command(ctx, "slow", nil)
				var ce *protocol.CodeError
				if errors.As(err, &ce) && (ce.Code == "EBUSY" || ce.Code == protocol.CodeTimeout) {
					failed.Add(1)
				}
			}(cc)
		}
		wg.Wait()
		if p := calls.peak.Load(); p != 2 {
			t.Fatalf("%d calls at once, want the cap of 2", p)
		}
		if failed.Load() != 5 {
			t.Fatalf("%d of 5 answered EBUSY or ETIMEOUT", failed.Load())
		}
	})

	t.Run("backend down", func(t *testing.T) {
		b.Close()
		_, err := c.Command(ctx, "anything", nil)
		if !errors.As(err, &ce) || ce.Code != CodeUnavailable {
			t.Fatalf("backend down: %v", err)
		}
	})

	m := get(t, n, "/metrics")
	for _, want := range []string{
		`meshfast_proxy_calls_total{kind="command",outcome="ok"} 32`,
		`meshfast_proxy_calls_total{kind="command",outcome="error"} 1`,
		`meshfast_proxy_calls_total{kind="command",outcome="failed"} 3`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(m, "proxy_calls"))
		}
	}
	var timeouts, busy int
	for _, l := range strings.Split(m, "\n") {
		fmt.Sscanf(l, `meshfast_proxy_calls_total{kind="command",outcome="timeout"} %d`, &timeouts)
		fmt.Sscanf(l, `meshfast_proxy_calls_total{kind="command",outcome="busy"} %d`, &busy)
	}
	if timeouts+busy != 6 || timeouts < 3 {
		t.Errorf("%d timeouts and %d busy, want 6 in all, 3 or more timeouts", timeouts, busy)
	}
}

// TestConnectProxy lets a real HTTP backend accept connections (with a
// user, metadata and permissions) or refuse them with a code; a backend
// that cannot answer, or not in time (auth_timeout), closes them.
func TestConnectProxy(t *testing.T) {
	var got atomic.Pointer[map[string]any]
	b := startBackend(t, func(call map[string]any) (int, string) {
		got.Store(&call)
		switch {
		case strings.Contains(fmt.Sprint(call["query"]), "who=banned"):
			return 200, `{"refuse":{"code":4030,"reason":"banned"}}`
		case strings.Contains(fmt.Sprint(call["query"]), "who=slow"):
			time.Sleep(time.Second)
			return 200, `{}`
		case strings.Contains(fmt.Sprint(call["query"]), "who=broken"):
			return 500, `{}`
		}
		return 200, `{"user":"bob","metadata":{"plan":"pro"},"allow":{"rooms":["^ok$"]}}`
	})
	cfg := Config{Proxy: ProxyConfig{ConnectURL: b.URL + "/connect"}}
	cfg.Mesh.AuthTimeout = 300 * time.Millisecond
	n := startNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c := connectTo(t, n, "?who=bob", http.Header{"Cookie": {"session=s1"}})
	if m, err := c.Command(ctx, "mesh/get-my-connection-metadata", map[string]any{}); err != nil || string(m) != `{"metadata":{"plan":"pro"}}` {
		t.Fatalf("metadata from the backend: %s %v", m, err)
	}
	call := *got.Load()
	if h := call["headers"].(map[string]any); h["Cookie"] != "session=s1" || call["query"] != "who=bob&mesh-assign-id=1" || call["path"] != "/" || call["remote_addr"] == "" {
		t.Fatalf("the backend was told %v", call)
	}
	if r, err := c.JoinRoom(ctx, "ok"); err != nil || !r.Success {
		t.Fatal(r, err)
	}
	if _, err := c.JoinRoom(ctx, "other"); err == nil {
		t.Fatal("a room the backend's allow does not list")
	}
	pushed := pushes(c, "dm")
	testEventually(t, func() error { return n.Mesh.SendToUser(ctx, "bob", "dm", 1) }, pushed, `1`)

	for _, tc := range []struct {
		who    string
		code   websocket.StatusCode
		reason string
	}{
		{"banned", 4030, "banned"},
		{"broken", 1013, "authentication unavailable, try again later"},
		{"slow", 1008, "authentication failed"}, // auth_timeout before the proxy's own timeout
	} {
		ws, _, err := websocket.Dial(ctx, "ws://"+n.Addr().String()+"/?who="+tc.who, &websocket.DialOptions{
			HTTPClient: &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{KeepAlive: -1}).DialContext}}})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = ws.Read(ctx)
		var cerr websocket.CloseError
		if !errors.As(err, &cerr) || cerr.Code != tc.code || cerr.Reason != tc.reason {
			t.Errorf("%s: %v, want close %d %q", tc.who, err, tc.code, tc.reason)
		}
		ws.CloseNow()
	}
	b.Close()
	ws, _, err := websocket.Dial(ctx, "ws://"+n.Addr().String()+"/", &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{KeepAlive: -1}).DialContext}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_, _, err = ws.Read(ctx)
	var cerr websocket.CloseError
	if !errors.As(err, &cerr) || cerr.Code != 1013 {
		t.Fatalf("backend down: %v, want 1013", err)
	}
	// Each refusal counted: banned, broken, slow (auth_timeout), down.
	testutil.Eventually(t, 5*time.Second, func() error {
		if m := get(t, n, "/metrics"); !strings.Contains(m, "\nmesh_connections_refused_total 4\n") {
			return errors.New("mesh_connections_refused_total is not 4")
		}
		return nil
	})
}

// concurrency counts calls in progress and the most at once.
type concurrency struct{ now, peak atomic.Int32 }

func (c *concurrency) enter() {
	n := c.now.Add(1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
}

func (c *concurrency) leave() { c.now.Add(-1) }

// countingTransport counts the requests a proxy has in flight: from the
// moment it sends one until its response body is closed or it fails.
type countingTransport struct {
	next http.RoundTripper
	c    *concurrency
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.c.enter()
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		t.c.leave()
		return nil, err
	}
	resp.Body = &countedBody{ReadCloser: resp.Body, c: t.c}
	return resp, nil
}

type countedBody struct {
	io.ReadCloser
	c    *concurrency
	once sync.Once
}

func (b *countedBody) Close() error {
	b.once.Do(b.c.leave)
	return b.ReadCloser.Close()
}
