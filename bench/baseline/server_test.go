package baseline

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestServer(t *testing.T) {
	s := New(Options{})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer s.Shutdown(ctx)
	url := "ws://" + s.Addr().String() + "/"
	dial := func() *websocket.Conn {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	roundTrip := func(c *websocket.Conn, req string) string {
		t.Helper()
		if err := c.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
			t.Fatal(err)
		}
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	sub, pub := dial(), dial()
	defer sub.CloseNow()
	defer pub.CloseNow()
	for req, want := range map[string]string{
		`{"id":1,"command":"echo","payload":{"a":[1,2]}}`:                           `{"id":1,"command":"echo","payload":{"a":[1,2]}}`,
		`{"id":2,"command":"nope"}`:                                                 `{"id":2,"command":"nope","payload":{"error":`,
		`{"id":3,"command":"mesh/subscribe-channel","payload":{"channel":"bench"}}`: `{"id":3,"command":"mesh/subscribe-channel","payload":{"success":true,"history":[]}}`,
	} {
		if got := roundTrip(sub, req); !strings.HasPrefix(got, want) {
			t.Fatalf("%s:\n got %s\nwant %s", req, got, want)
		}
	}
	if got := roundTrip(pub, `{"id":9,"command":"bench/publish","payload":{"channel":"bench","message":"1|2|x"}}`); got != `{"id":9,"command":"bench/publish","payload":{"success":true}}` {
		t.Fatalf("publish reply %s", got)
	}
	_, b, err := sub.Read(ctx)
	if want := `{"command":"mesh/subscription-message","payload":{"channel":"bench","message":"1|2|x"}}`; err != nil || string(b) != want {
		t.Fatalf("delivery %s, %v", b, err)
	}
	resp, err := http.Get("http://" + s.Addr().String() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `{"status":"ok","connections":2}` {
		t.Fatalf("health %s", body)
	}
}

// TestSlowConsumer fills a subscriber that never reads until its queue
// overflows, and expects it counted and closed (with 1013 when the close
// frame still fits in the socket, abruptly otherwise).
func TestSlowConsumer(t *testing.T) {
	s := New(Options{SendQueue: 4})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer s.Shutdown(ctx)
	c, _, err := websocket.Dial(ctx, "ws://"+s.Addr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	_ = c.Write(ctx, websocket.MessageText, []byte(`{"id":1,"command":"mesh/subscribe-channel","payload":{"channel":"c"}}`))
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 64<<10)
	for s.SlowConsumers() == 0 && ctx.Err() == nil {
		s.Publish("c", big)
	}
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if st := websocket.CloseStatus(err); st != -1 && st != websocket.StatusTryAgainLater {
				t.Fatalf("closed with %v, want 1013 or an abrupt close", err)
			}
			return
		}
	}
}
