package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/meshfast/meshfast/internal/ssetest"
)

// The server HTTP API reaches Server-Sent Events streams as it reaches
// WebSocket clients: a broadcast, a message to a user (the stream of a
// JWT's user), a channel message and a channel event.
func TestAPIReachesStreams(t *testing.T) {
	cfg := Config{API: APIConfig{Keys: []string{testKey}}, JWT: JWTConfig{HMACSecret: testSecret}}
	cfg.Expose.Channels = []ChannelExposure{{Exposure: Exposure{Name: "news"}, History: 3}}
	n := startNode(t, cfg)
	base := "http://" + n.Addr().String() + "/api"
	open := func(target string) *ssetest.Client {
		t.Helper()
		c, err := ssetest.Dial(n.Addr().String(), target, "", "Accept: text/event-stream")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if st, err := c.ReadHead(5 * time.Second); err != nil || st != 200 {
			t.Fatalf("GET %s: %d %v\n%s", target, st, err, c.Head)
		}
		if ev, err := c.Next(5 * time.Second); err != nil || ev.Type != "ready" {
			t.Fatalf("first event %+v %v", ev, err)
		}
		return c
	}
	next := func(c *ssetest.Client) ssetest.Event {
		t.Helper()
		ev, err := c.Next(5 * time.Second)
		if err != nil {
			t.Fatalf("next event: %v (so far %q)", err, c.Raw.String())
		}
		return ev
	}
	alice := open("/events?channel=news&token=" + hsToken(t, map[string]any{"sub": "alice"}))
	bob := open("/events?token=" + hsToken(t, map[string]any{"sub": "bob"}))
	// A bad token is refused, as a WebSocket's.
	c, err := ssetest.Dial(n.Addr().String(), "/events", "", "Accept: text/event-stream", "Authorization: Bearer nope")
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := c.ReadHead(5 * time.Second); st != 401 {
		t.Fatalf("a bad token: %d\n%s", st, c.Head)
	}
	c.Close()
	ws := connectTo(t, n, "?token="+hsToken(t, map[string]any{"sub": "alice"}), nil)
	wsDM := pushes(ws, "dm")

	mustAPI(t, base, "POST", "/broadcast", `{"command":"update","payload":{"v":1}}`)
	for _, s := range []*ssetest.Client{alice, bob} {
		if ev := next(s); ev.Type != "update" || ev.Data != `{"v":1}` {
			t.Fatalf("broadcast: %+v", ev)
		}
	}
	mustAPI(t, base, "POST", "/send_user", `{"user":"alice","command":"dm","payload":"hi alice"}`)
	if ev := next(alice); ev.Type != "dm" || ev.Data != `"hi alice"` {
		t.Fatalf("send_user: %+v", ev)
	}
	expectPush(t, wsDM, `"hi alice"`)
	mustAPI(t, base, "POST", "/publish", `{"channel":"news","message":"plain\ntext"}`)
	if ev := next(alice); ev.Type != "message" || ev.Data != "plain\ntext" || !strings.HasPrefix(ev.LastEventID, "news:") {
		t.Fatalf("publish: %+v", ev)
	}
	mustAPI(t, base, "POST", "/publish_event", `{"channel":"news","event":"post","data":{"title":"hello"}}`)
	ev := next(alice)
	if ev.Type != "post" || ev.Data != `{"title":"hello"}` {
		t.Fatalf("publish_event: %+v", ev)
	}
	hist, err := n.Mesh.ChannelHistory(t.Context(), "news", 1)
	if err != nil || len(hist) != 1 {
		t.Fatalf("history %v %v", hist, err)
	}
	var env map[string]any
	if json.Unmarshal([]byte(hist[0]), &env) != nil || env["event"] != "post" || env["id"] == nil {
		t.Fatalf("the channel message Mesh subscribers get: %s", hist[0])
	}
	if st, out, _ := apiDo(t, base, testKey, "POST", "/publish_event", `{"channel":"news","event":"a\nb"}`); st != 400 {
		t.Fatalf("an event name with a newline: %d %v", st, out)
	}
	// bob's stream got none of alice's.
	mustAPI(t, base, "POST", "/broadcast", `{"command":"after"}`)
	if ev := next(bob); ev.Type != "after" || ev.Data != "null" {
		t.Fatalf("bob's stream got %+v", ev)
	}
}
