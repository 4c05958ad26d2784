package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/meshfast/meshfast/client"
	"github.com/meshfast/meshfast/protocol"
)

// exposeFile is a configuration as a user writes it; the test starts a
// node from what the loader makes of it.
const exposeFile = `
ping_interval: off   # no pongs, so presence lapses after its TTL
expose:
  channels:
    - pattern: ^chat:[a-z]+$
      history: 3
    - name: news
  records:
    - pattern: '^profile:'
  writable_records:
    - name: topic
  presence:
    - pattern: '^room:'
      ttl: 300ms
    - name: hall
`

func startFromFile(t *testing.T, file string) *Node {
	t.Helper()
	l := NewLoader()
	if err := l.LoadFile("expose.yaml", []byte(file)); err != nil {
		t.Fatal(err)
	}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	return startNode(t, l.Settings.Node)
}

func connect(t *testing.T, n *Node) *client.Client {
	t.Helper()
	c := client.New("ws://"+n.Addr().String()+"/", client.Options{NoReconnect: true,
		Dialer: (&net.Dialer{KeepAlive: -1}).DialContext})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestExposuresFromFile checks that a node started from a configuration
// file lets clients use exactly what the file exposes, with the file's
// history and presence TTL.
func TestExposuresFromFile(t *testing.T) {
	n := startFromFile(t, exposeFile)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := connect(t, n)

	t.Run("channel history", func(t *testing.T) {
		for i := 1; i <= 5; i++ {
			if err := n.PublishToChannel(ctx, "chat:lobby", fmt.Sprint("m", i)); err != nil {
				t.Fatal(err)
			}
		}
		r, err := c.SubscribeChannel(ctx, "chat:lobby", func(string) {}, client.WithHistoryLimit(2))
		if err != nil || !r.Success || !slices.Equal(r.History, []string{"m5", "m4"}) {
			t.Fatalf("historyLimit 2: %+v %v, want m5 m4", r, err)
		}
		r, err = c.SubscribeChannel(ctx, "chat:lobby", func(string) {}, client.WithHistoryLimit(100))
		if err != nil || !r.Success || !slices.Equal(r.History, []string{"m5", "m4", "m3"}) {
			t.Fatalf("historyLimit 100 with history 3: %+v %v, want the 3 kept", r, err)
		}
	})

	t.Run("history bounded when others keep more", func(t *testing.T) {
		// Another publisher on the coordinator (a Mesh server, another
		// node configured otherwise) keeps 10; subscribers here still get 3.
		for i := 1; i <= 6; i++ {
			if err := n.Mesh.PublishToChannel(ctx, "chat:deep", fmt.Sprint("d", i), 10); err != nil {
				t.Fatal(err)
			}
		}
		r, err := c.SubscribeChannel(ctx, "chat:deep", func(string) {}, client.WithHistoryLimit(50))
		if err != nil || !r.Success || !slices.Equal(r.History, []string{"d6", "d5", "d4"}) {
			t.Fatalf("historyLimit 50: %+v %v, want d6 d5 d4", r, err)
		}
		// A channel exposed with no history gives none.
		if err := n.Mesh.PublishToChannel(ctx, "news", "n1", 10); err != nil {
			t.Fatal(err)
		}
		r, err = c.SubscribeChannel(ctx, "news", func(string) {}, client.WithHistoryLimit(5))
		if err != nil || !r.Success || len(r.History) != 0 {
			t.Fatalf("news: %+v %v, want success and no history", r, err)
		}
	})

	t.Run("live messages", func(t *testing.T) {
		got := make(chan string, 4)
		if r, err := c.SubscribeChannel(ctx, "news", func(m string) { got <- m }); err != nil || !r.Success {
			t.Fatalf("subscribe news: %+v %v", r, err)
		}
		if err := n.PublishToChannel(ctx, "news", "hello"); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if m != "hello" {
				t.Fatalf("got %q", m)
			}
		case <-ctx.Done():
			t.Fatal("no message on news")
		}
	})

	t.Run("not exposed", func(t *testing.T) {
		for _, ch := range []string{"chat:Lobby", "chat:", "newsroom", "other"} {
			r, err := c.SubscribeChannel(ctx, ch, func(string) {}, client.WithHistoryLimit(5))
			if err != nil || r.Success {
				t.Errorf("channel %q: %+v %v, want refused", ch, r, err)
			}
		}
		if r, err := c.SubscribeRecord(ctx, "secret", client.RecordFull, func(client.RecordUpdate) {}); err != nil || r.Success {
			t.Errorf("record secret: %+v %v, want refused", r, err)
		}
		if r, err := c.SubscribePresence(ctx, "lobby", func(client.PresenceUpdate) {}); err != nil || r.Success {
			t.Errorf("presence lobby: %+v %v, want refused", r, err)
		}
	})

	t.Run("records", func(t *testing.T) {
		if r, err := c.SubscribeRecord(ctx, "profile:7", client.RecordFull, func(client.RecordUpdate) {}); err != nil || !r.Success {
			t.Fatalf("readable record: %+v %v", r, err)
		}
		ok, err := c.PublishRecordUpdate(ctx, "profile:7", map[string]string{"name": "x"})
		var ce *protocol.CodeError
		if ok || !errors.As(err, &ce) {
			t.Fatalf("write to a read-only record: %v %v, want refused", ok, err)
		}
		if ok, err := c.PublishRecordUpdate(ctx, "topic", "hello"); !ok || err != nil {
			t.Fatalf("write to the writable record: %v %v", ok, err)
		}
		other := connect(t, n)
		r, err := other.SubscribeRecord(ctx, "topic", client.RecordFull, func(client.RecordUpdate) {})
		if err != nil || !r.Success || string(r.Record) != `"hello"` {
			t.Fatalf("the writable record read back: %+v %v", r, err)
		}
	})

	t.Run("presence with the file's TTL", func(t *testing.T) {
		watcher := connect(t, n)
		left := make(chan string, 4)
		if r, err := watcher.SubscribePresence(ctx, "room:a", func(u client.PresenceUpdate) {
			if u.Type == "leave" {
				left <- u.ConnectionID
			}
		}); err != nil || !r.Success {
			t.Fatalf("subscribe presence: %+v %v", r, err)
		}
		if r, err := watcher.SubscribePresence(ctx, "hall", func(client.PresenceUpdate) {}); err != nil || !r.Success {
			t.Fatalf("subscribe presence of the exact room: %+v %v", r, err)
		}
		member := connect(t, n)
		r, err := member.JoinRoom(ctx, "room:a")
		if err != nil || !r.Success || !slices.Contains(r.Present, member.ConnectionID()) {
			t.Fatalf("join: %+v %v", r, err)
		}
		// Still connected, but with no pongs its presence lapses after
		// 300 ms, not Mesh's default 30 s.
		select {
		case id := <-left:
			if id != member.ConnectionID() {
				t.Fatalf("%s left, want %s", id, member.ConnectionID())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("presence did not lapse after the configured TTL")
		}
	})
}
