package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/realtime"
	"github.com/meshfast/meshfast/internal/testutil"
)

// RequireBrowserEnv names the environment variable that turns a missing
// Chromium from a skip into a failure (CI sets it to 1).
const RequireBrowserEnv = "MESHFAST_REQUIRE_BROWSER"

// chromium finds the browser, skipping the test without it unless
// MESHFAST_REQUIRE_BROWSER=1.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(RequireBrowserEnv) == "1" {
		t.Fatalf("no Chromium on PATH and %s=1 (apt-get install chromium chromium-driver)", RequireBrowserEnv)
	}
	t.Skipf("no Chromium on PATH (set %s=1 to make this a failure)", RequireBrowserEnv)
	return ""
}

// demoPage is what the demo page's window.demo says.
type demoPage struct {
	Feed []struct {
		Kind, Text, Who, ID string
	} `json:"feed"`
	Ready    []map[string]any  `json:"ready"`
	Presence map[string]string `json:"presence"`
	SSEOpen  bool              `json:"sseOpen"`
	WSOpen   bool              `json:"wsOpen"`
	Me       string            `json:"me"`
}

func (p demoPage) texts() []string {
	var out []string
	for _, f := range p.Feed {
		out = append(out, f.Text)
	}
	return out
}

// The demo page in a real browser: its EventSource receives what the Go
// API and the server HTTP API publish, its WebSocket lists presence and
// posts to the feed, and after the server restarts both reconnect by
// themselves and the feed goes on.
func TestDemoPageInBrowser(t *testing.T) {
	bin := chromium(t)
	cfg := Config{
		Demo:   true,
		SSE:    realtime.SSEOptions{Retry: 200 * time.Millisecond},
		Engine: engine.Options{Addr: "127.0.0.1:0"},
		API:    APIConfig{Keys: []string{testKey}},
	}
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := n.Addr().String()
	stop := func(n *Node) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}
	defer func() { stop(n) }()

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil { // starts the browser: no timeout on this first call
		t.Fatalf("starting %s: %v", bin, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	page := func() demoPage {
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.demo || {})`))
		if err != nil {
			t.Fatalf("reading the page: %v", err)
		}
		var p demoPage
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			t.Fatalf("window.demo %q: %v", raw, err)
		}
		return p
	}
	waitPage := func(what string, cond func(demoPage) error) demoPage {
		t.Helper()
		var last demoPage
		testutil.Eventually(t, 30*time.Second, func() error {
			last = page()
			if err := cond(last); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		})
		return last
	}
	feedHas := func(texts ...string) func(demoPage) error {
		return func(p demoPage) error {
			for _, s := range texts {
				if !slices.Contains(p.texts(), s) {
					return fmt.Errorf("feed %q lacks %q", p.texts(), s)
				}
			}
			return nil
		}
	}

	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+addr+DemoPath)); err != nil {
		t.Fatalf("open the demo page: %v", err)
	}
	p := waitPage("both sides connected", func(p demoPage) error {
		if !p.SSEOpen || !p.WSOpen || len(p.Ready) == 0 || p.Me == "" || p.Presence[p.Me] == "" {
			return fmt.Errorf("page %+v", p)
		}
		return nil
	})
	t.Logf("connected: ready %v, presence %v", p.Ready[0], p.Presence)

	// Through the Go API: an event on the channel, and a plain channel message.
	bg := context.Background()
	if err := n.Realtime.ToChannel(DemoChannel).Broadcast(bg, realtime.Event{Event: "post",
		Data: map[string]string{"name": "go", "text": "hello from the Go API"}}); err != nil {
		t.Fatal(err)
	}
	if err := n.PublishToChannel(bg, DemoChannel, "a plain channel message"); err != nil {
		t.Fatal(err)
	}
	waitPage("the Go API's events", feedHas("hello from the Go API", "a plain channel message"))

	// Through the server HTTP API, as a backend in any language would.
	base := "http://" + addr + "/api"
	mustAPI(t, base, "POST", "/publish_event", `{"channel":"demo:feed","event":"post","data":{"name":"api","text":"hello from the HTTP API"}}`)
	mustAPI(t, base, "POST", "/publish", `{"channel":"demo:feed","message":"a plain message from the HTTP API"}`)
	mustAPI(t, base, "POST", "/broadcast", `{"command":"update","payload":"a broadcast from the HTTP API"}`)
	waitPage("the HTTP API's events", feedHas("hello from the HTTP API", "a plain message from the HTTP API", "a broadcast from the HTTP API"))

	// Through the page's own WebSocket: typed and posted, received by its EventSource.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("text"), "typed in the browser"),
		chromedp.Click(chromedp.CSS("#say button")), // a click fires the form's submit event; form.submit() would not
	); err != nil {
		t.Fatalf("posting from the page: %v", err)
	}
	waitPage("the page's own post", feedHas("typed in the browser"))

	// The server restarts on the same address: the EventSource and the
	// WebSocket reconnect by themselves.
	stop(n)
	cfg.Engine.Addr = addr
	testutil.Eventually(t, 10*time.Second, func() error {
		n, err = Start(cfg)
		return err
	})
	p = waitPage("reconnected after the restart", func(p demoPage) error {
		if len(p.Ready) < 2 || !p.SSEOpen || !p.WSOpen {
			return fmt.Errorf("ready events %v, sse %v, ws %v", p.Ready, p.SSEOpen, p.WSOpen)
		}
		return nil
	})
	if r := p.Ready[len(p.Ready)-1]; r["missed"] != true || r["replayed"] != float64(0) {
		// The memory coordinator's history went with the old process: the
		// stream says it could not resume.
		t.Errorf("ready after the restart: %v", r)
	}
	if err := n.Realtime.ToChannel(DemoChannel).Broadcast(bg, realtime.Event{Event: "post",
		Data: map[string]string{"name": "go", "text": "after the restart"}}); err != nil {
		t.Fatal(err)
	}
	mustAPI(t, base, "POST", "/publish_event", `{"channel":"demo:feed","event":"post","data":{"name":"api","text":"the HTTP API after the restart"}}`)
	waitPage("events after the restart", feedHas("after the restart", "the HTTP API after the restart"))
}
