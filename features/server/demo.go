package server

import (
	_ "embed"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/features/realtime"
)

// The demo (Config.Demo): a page on /demo that uses an EventSource and a
// WebSocket side by side, so a new user sees both transports in a browser
// in a minute. It is plain HTML and JavaScript, embedded: no build step.
const (
	// DemoPath is where the demo page is served.
	DemoPath = "/demo"
	// DemoChannel is the channel of the demo's feed.
	DemoChannel = "demo:feed"
	// DemoRoom is the room whose presence the demo lists.
	DemoRoom = "demo"
	// DemoHistory is how many of the feed's posts the channel keeps, for
	// a reconnecting EventSource to be replayed what it missed.
	DemoHistory = 50
)

//go:embed demo.html
var demoHTML string

// serveDemo exposes what the demo page uses and serves it: the feed
// channel (with history), presence in the demo room, and "demo/post"
// {name, text}, which publishes a post to the feed. Called by Start only,
// before the node serves.
func (n *Node) serveDemo(meshPath, ssePath string) {
	n.Realtime.Channel(DemoChannel, realtime.ChannelOptions{History: DemoHistory})
	n.history.add(ChannelExposure{Exposure: Exposure{Name: DemoChannel}, History: DemoHistory})
	n.Mesh.ExposeRoom(DemoRoom, nil)
	n.Mesh.TrackPresence(DemoRoom, mesh.PresenceOptions{})
	n.Mesh.Expose("demo/post", func(c *mesh.Context) (any, error) {
		var req struct {
			Name string `json:"name"`
			Text string `json:"text"`
		}
		if err := c.Bind(&req); err != nil {
			return nil, err
		}
		req.Name, req.Text = clip(strings.TrimSpace(req.Name), 40), clip(strings.TrimSpace(req.Text), 500)
		if req.Text == "" {
			return nil, errors.New("demo/post: empty text")
		}
		err := n.Realtime.ToChannel(DemoChannel).Broadcast(c, realtime.Event{Event: "post", Data: req})
		return err == nil, err
	})
	cfg, _ := json.Marshal(map[string]string{"meshPath": meshPath, "ssePath": ssePath, "channel": DemoChannel, "room": DemoRoom})
	page := []byte(strings.Replace(demoHTML, "<!--CONFIG-->",
		`<script type="application/json" id="config">`+string(cfg)+`</script>`, 1))
	n.Engine.HandleHTTP(DemoPath, func(w *engine.Response, _ *engine.Request) {
		w.ContentType = "text/html; charset=utf-8"
		w.Headers = []string{"Cache-Control: no-cache"}
		w.Body = page
	})
}

// clip cuts s to at most n runes.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
