package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/meshfast/meshfast/client"
	"github.com/meshfast/meshfast/internal/testutil"
)

const testKey = "0123456789abcdef-test-key"

// apiDo makes one API request to base (http://host:port/api) with key
// ("" for none) and returns the status, the decoded JSON body and the
// response's headers.
func apiDo(t *testing.T, base, key, method, path, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if method != "HEAD" && resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: not JSON: %q", method, path, b)
		}
	}
	return resp.StatusCode, out, resp.Header
}

// mustAPI is apiDo expecting 200.
func mustAPI(t *testing.T, base, method, path, body string) map[string]any {
	t.Helper()
	st, out, _ := apiDo(t, base, testKey, method, path, body)
	if st != 200 {
		t.Fatalf("%s %s %s: %d %v", method, path, body, st, out)
	}
	return out
}

func connectTo(t *testing.T, n *Node, query string, h http.Header) *client.Client {
	t.Helper()
	c := client.New("ws://"+n.Addr().String()+"/"+query, client.Options{NoReconnect: true, Header: h, AwaitConnectionID: true,
		Dialer: (&net.Dialer{KeepAlive: -1}).DialContext})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// pushes collects a client's pushes of one command.
func pushes(c *client.Client, command string) chan string {
	ch := make(chan string, 16)
	c.On(command, func(p json.RawMessage) { ch <- string(p) })
	return ch
}

func expectPush(t *testing.T, ch chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("push %s, want %s", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no push (want %s)", want)
	}
}

func noPush(t *testing.T, ch chan string) {
	t.Helper()
	select {
	case got := <-ch:
		t.Fatalf("unexpected push %s", got)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestAPI calls every endpoint of the server API on a real node and
// checks its effect on real clients, and the errors: 401 without or with
// a wrong key, 400 for bad bodies, 404, 405, 413.
func TestAPI(t *testing.T) {
	cfg := Config{API: APIConfig{Keys: []string{"another-key-0123456789", testKey}, MaxBodySize: 4096}}
	cfg.Expose.Channels = []ChannelExposure{{Exposure: Exposure{Name: "news"}, History: 3}}
	cfg.Expose.Records = []Exposure{{Name: "doc"}}
	cfg.Expose.Presence = []PresenceExposure{{Exposure: Exposure{Name: "lobby"}, TTL: time.Minute}}
	cfg.JWT = JWTConfig{HMACSecret: testSecret}
	n := startNode(t, cfg)
	base := "http://" + n.Addr().String() + "/api"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice := connectTo(t, n, "?token="+hsToken(t, map[string]any{"sub": "alice"}), nil)
	alice2 := connectTo(t, n, "?token="+hsToken(t, map[string]any{"sub": "alice"}), nil)
	bob := connectTo(t, n, "?token="+hsToken(t, map[string]any{"sub": "bob"}), nil)

	t.Run("auth", func(t *testing.T) {
		for _, key := range []string{"", "wrong-key-0123456789abc", testKey + "x"} {
			st, out, h := apiDo(t, base, key, "POST", "/publish", `{"channel":"news","message":"x"}`)
			if st != 401 || out["error"] == nil || h.Get("WWW-Authenticate") == "" {
				t.Fatalf("key %q: %d %v %v", key, st, out, h)
			}
		}
		req, _ := http.NewRequest("POST", base+"/publish", strings.NewReader(`{"channel":"news","message":"x-api-key"}`))
		req.Header.Set("X-API-Key", "another-key-0123456789")
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("X-API-Key: %v %v", resp, err)
		}
		resp.Body.Close()
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			method, path, body string
			status             int
			msg                string
		}{
			{"POST", "/publish", ``, 400, "a JSON object body is required"},
			{"POST", "/publish", `{"channel":`, 400, "the body"},
			{"POST", "/publish", `{"channel":"news","message":"x","extra":1}`, 400, `unknown field "extra"`},
			{"POST", "/publish", `{"channel":5,"message":"x"}`, 400, `"channel": expected string`},
			{"POST", "/publish", `{"message":"x"}`, 400, `"channel" is required`},
			{"POST", "/publish", `{"channel":"news"}`, 400, `"message" is required`},
			{"POST", "/publish", `{"channel":"mesh:x","message":"x"}`, 400, "reserved"},
			{"POST", "/publish", `{"channel":"news","message":"x"} {}`, 400, "nothing after it"},
			{"POST", "/publish_batch", `{"messages":[]}`, 400, "at least one"},
			{"POST", "/publish_batch", `{"messages":[{"channel":"news","message":"a"},{"message":"b"}]}`, 400, `messages[1]: "channel" is required`},
			{"POST", "/send", `{"connection_id":"conn-nosuch","command":"x"}`, 404, "no such connection"},
			{"GET", "/connection_metadata?connection_id=conn-nosuch", ``, 404, "no such connection"},
			{"GET", "/connection_metadata", ``, 400, `the query parameter "connection_id" is required`},
			{"POST", "/disconnect", `{"connection_id":"conn-nosuch"}`, 404, "no such connection"},
			{"POST", "/disconnect", `{"connection_id":"x","code":1005}`, 400, `"code"`},
			{"POST", "/record", `{"record_id":"doc"}`, 400, `"value" is required`},
			{"POST", "/publish", `{"channel":"news","message":"` + strings.Repeat("x", 5000) + `"}`, 413, "over 4096 bytes"},
		} {
			st, out, _ := apiDo(t, base, testKey, tc.method, tc.path, tc.body)
			if st != tc.status || !strings.Contains(fmt.Sprint(out["error"]), tc.msg) {
				t.Errorf("%s %s %.60s: %d %v, want %d %q", tc.method, tc.path, tc.body, st, out, tc.status, tc.msg)
			}
		}
		// The engine's own answers: an unknown path, a method the path does
		// not take (with Allow), a body past the engine's limit.
		if st, _, _ := apiDo(t, base, testKey, "POST", "/nothing", `{}`); st != 404 {
			t.Errorf("unknown path: %d", st)
		}
		if st, _, h := apiDo(t, base, testKey, "GET", "/publish", ``); st != 405 || h.Get("Allow") != "POST" {
			t.Errorf("GET /publish: %d %v", st, h)
		}
		if st, _, h := apiDo(t, base, testKey, "DELETE", "/record", ``); st != 405 || h.Get("Allow") != "POST, GET, HEAD" {
			t.Errorf("DELETE /record: %d %v", st, h)
		}
		// The engine refuses from the head alone, before the body is sent.
		if st := headStatus(t, n.Addr().String(), fmt.Sprintf("POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n",
			testKey, DefaultSettings().Node.Engine.MaxMessageSize+1)); st != 413 {
			t.Errorf("a body past the engine's limit: %d", st)
		}
	})

	t.Run("publish with history, and batch", func(t *testing.T) {
		got := make(chan string, 16)
		if r, err := bob.SubscribeChannel(ctx, "news", func(m string) { got <- m }); err != nil || !r.Success {
			t.Fatalf("subscribe: %+v %v", r, err)
		}
		mustAPI(t, base, "POST", "/publish", `{"channel":"news","message":"one"}`)
		mustAPI(t, base, "POST", "/publish", `{"channel":"news","message":{"n":2}}`)
		out := mustAPI(t, base, "POST", "/publish_batch", `{"messages":[{"channel":"news","message":"three"},{"channel":"news","message":"four"},{"channel":"other","message":"x"}]}`)
		if out["published"] != float64(3) {
			t.Fatalf("batch: %v", out)
		}
		for _, want := range []string{"one", `{"n":2}`, "three", "four"} {
			select {
			case m := <-got:
				if m != want {
					t.Fatalf("got %q, want %q", m, want)
				}
			case <-ctx.Done():
				t.Fatal("no message")
			}
		}
		r, err := alice.SubscribeChannel(ctx, "news", func(string) {}, client.WithHistoryLimit(10))
		if err != nil || !slices.Equal(r.History, []string{"four", "three", `{"n":2}`}) {
			t.Fatalf("history (3 kept): %+v %v", r, err)
		}
	})

	t.Run("broadcast, room, send, user", func(t *testing.T) {
		pa, pa2, pb := pushes(alice, "note"), pushes(alice2, "note"), pushes(bob, "note")
		mustAPI(t, base, "POST", "/broadcast", `{"command":"note","payload":{"to":"all"},"exclude":["`+bob.ConnectionID()+`"]}`)
		expectPush(t, pa, `{"to":"all"}`)
		expectPush(t, pa2, `{"to":"all"}`)
		noPush(t, pb)
		if r, err := bob.JoinRoom(ctx, "r1"); err != nil || !r.Success {
			t.Fatal(r, err)
		}
		mustAPI(t, base, "POST", "/room_join", `{"room":"r1","connection_id":"`+alice.ConnectionID()+`"}`)
		mustAPI(t, base, "POST", "/broadcast_room", `{"room":"r1","command":"note","payload":"room","exclude":["`+alice.ConnectionID()+`"]}`)
		expectPush(t, pb, `"room"`)
		noPush(t, pa)
		out := mustAPI(t, base, "GET", "/room_members?room=r1", ``)
		if m := fmt.Sprint(out["members"]); !strings.Contains(m, alice.ConnectionID()) || !strings.Contains(m, bob.ConnectionID()) {
			t.Fatalf("members %v", out)
		}
		mustAPI(t, base, "POST", "/room_leave", `{"room":"r1","connection_id":"`+alice.ConnectionID()+`"}`)
		if out := mustAPI(t, base, "GET", "/room_members?room=r1", ``); fmt.Sprint(out["members"]) != "["+bob.ConnectionID()+"]" {
			t.Fatalf("after leave: %v", out)
		}
		mustAPI(t, base, "POST", "/send", `{"connection_id":"`+bob.ConnectionID()+`","command":"note","payload":1}`)
		expectPush(t, pb, `1`)
		mustAPI(t, base, "POST", "/send_user", `{"user":"alice","command":"note","payload":"dm"}`)
		expectPush(t, pa, `"dm"`)
		expectPush(t, pa2, `"dm"`)
		noPush(t, pb)
		mustAPI(t, base, "POST", "/send", `{"connection_id":"`+bob.ConnectionID()+`","command":"bare"}`) // no payload
	})

	t.Run("record", func(t *testing.T) {
		got := make(chan string, 4)
		if r, err := bob.SubscribeRecord(ctx, "doc", client.RecordFull, func(u client.RecordUpdate) {
			if u.Version > 0 {
				got <- string(u.Value)
			}
		}); err != nil || !r.Success {
			t.Fatal(r, err)
		}
		mustAPI(t, base, "POST", "/record", `{"record_id":"doc","value":{"title":"a"}}`)
		select {
		case v := <-got:
			if v != `{"title":"a"}` {
				t.Fatalf("record push %s", v)
			}
		case <-ctx.Done():
			t.Fatal("no record update")
		}
		out := mustAPI(t, base, "GET", "/record?record_id=doc", ``)
		if out["version"] != float64(1) || fmt.Sprint(out["value"]) != "map[title:a]" {
			t.Fatalf("record read %v", out)
		}
	})

	t.Run("metadata", func(t *testing.T) {
		id := bob.ConnectionID()
		mustAPI(t, base, "POST", "/connection_metadata", `{"connection_id":"`+id+`","metadata":{"role":"admin"}}`)
		if out := mustAPI(t, base, "GET", "/connection_metadata?connection_id="+id, ``); fmt.Sprint(out["metadata"]) != "map[role:admin]" {
			t.Fatalf("connection metadata %v", out)
		}
		if m, err := bob.GetConnectionMetadata(ctx, id); err != nil || string(m) != `{"role":"admin"}` {
			t.Fatalf("the client sees %s %v", m, err)
		}
		mustAPI(t, base, "POST", "/room_metadata", `{"room":"r1","metadata":{"topic":"x"}}`)
		if out := mustAPI(t, base, "GET", "/room_metadata?room=r1", ``); fmt.Sprint(out["metadata"]) != "map[topic:x]" {
			t.Fatalf("room metadata %v", out)
		}
		if out := mustAPI(t, base, "GET", "/room_metadata?room=nothing", ``); out["metadata"] != nil {
			t.Fatalf("no metadata: %v", out)
		}
	})

	t.Run("presence", func(t *testing.T) {
		if r, err := alice.JoinRoom(ctx, "lobby"); err != nil || !r.Success {
			t.Fatal(r, err)
		}
		if ok, err := alice.PublishPresenceState(ctx, "lobby", map[string]string{"status": "away"}, 0); !ok || err != nil {
			t.Fatal(ok, err)
		}
		out := mustAPI(t, base, "GET", "/presence?room=lobby", ``)
		if fmt.Sprint(out["present"]) != "["+alice.ConnectionID()+"]" || fmt.Sprint(out["states"]) != "map["+alice.ConnectionID()+":map[status:away]]" {
			t.Fatalf("presence %v", out)
		}
	})

	t.Run("disconnect", func(t *testing.T) {
		ws, id := rawConnect(t, n, "?token="+hsToken(t, map[string]any{"sub": "dave"}))
		mustAPI(t, base, "POST", "/disconnect", `{"connection_id":"`+id+`","code":4000,"reason":"kicked"}`)
		for {
			_, _, err := ws.Read(ctx)
			if err == nil {
				continue // a push sent before the close
			}
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "kicked" {
				t.Fatalf("closed with %v, want 4000 kicked", err)
			}
			break
		}
		testutil.Eventually(t, 5*time.Second, func() error {
			if st, _, _ := apiDo(t, base, testKey, "GET", "/connection_metadata?connection_id="+id, ``); st != 404 {
				return fmt.Errorf("a disconnected connection: %d", st)
			}
			return nil
		})
	})

	t.Run("metrics", func(t *testing.T) {
		m := get(t, n, "/metrics")
		for _, want := range []string{`meshfast_api_requests_total{status="200"}`, `meshfast_api_requests_total{status="401"} 3`, `meshfast_api_requests_total{status="413"} 1`} {
			if !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}

// TestAPIOwnAddress serves the API on an admin address of its own: the
// clients' port does not have it, and the admin address's body limit is
// the API's own.
func TestAPIOwnAddress(t *testing.T) {
	cfg := Config{API: APIConfig{Keys: []string{testKey}, Addr: "127.0.0.1:0", Prefix: "/v1", MaxBodySize: 2 << 20}}
	cfg.Engine.MaxMessageSize = 1024
	n := startNode(t, cfg)
	if n.Admin == nil {
		t.Fatal("no admin listener")
	}
	if st, _, _ := apiDo(t, "http://"+n.Addr().String()+"/v1", testKey, "POST", "/publish", `{"channel":"a","message":"b"}`); st != 404 {
		t.Fatalf("the API on the clients' port: %d", st)
	}
	admin := "http://" + n.Admin.Addr().String() + "/v1"
	mustAPI(t, admin, "POST", "/publish", `{"channel":"a","message":"`+strings.Repeat("x", 100_000)+`"}`)
	if st := headStatus(t, n.Admin.Addr().String(), "POST /v1/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: "+testKey+"\r\nContent-Length: 3000000\r\n\r\n"); st != 413 {
		t.Fatalf("past the API's limit: %d", st)
	}
	if st, _, _ := apiDo(t, admin, "", "POST", "/publish", `{}`); st != 401 {
		t.Fatalf("no key: %d", st)
	}
}

// rawConnect opens a WebSocket to the node without a Mesh client, for the
// close code, and returns it with the connection's id.
func rawConnect(t *testing.T, n *Node, query string) (*websocket.Conn, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The client asks for its id, as meshfast's Go client does.
	if query == "" {
		query = "?mesh-assign-id=1"
	} else {
		query += "&mesh-assign-id=1"
	}
	ws, _, err := websocket.Dial(ctx, "ws://"+n.Addr().String()+"/"+query, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{KeepAlive: -1}).DialContext}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	_, b, err := ws.Read(ctx)
	var m struct {
		Command string `json:"command"`
		Payload string `json:"payload"`
	}
	if err != nil || json.Unmarshal(b, &m) != nil || m.Command != "mesh/assign-id" {
		t.Fatalf("first frame %s %v", b, err)
	}
	return ws, m.Payload
}

// headStatus sends a request head alone and returns the answer's status.
func headStatus(t *testing.T, addr, head string) int {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := io.WriteString(nc, head); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(nc)
	var st int
	fmt.Sscanf(string(b), "HTTP/1.1 %d", &st)
	return st
}
