package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/meshfast/meshfast/client"
	"github.com/meshfast/meshfast/internal/testutil"
	"github.com/meshfast/meshfast/protocol"
)

const limitsFile = `
max_connections_per_ip: 3
max_message_size: 1KiB
max_rooms_per_connection: 1
max_subscriptions_per_connection: 1
command_rate: 1
command_burst: 2
expose:
  channels:
    - name: a
    - name: b
`

// TestLimitsFromFile hits each per-connection and per-address limit of a
// node configured from a file and finds it counted in /metrics: a
// connection past max_connections_per_ip is refused at accept, a message
// over max_message_size closes with 1009, and a room, a subscription or a
// command past its limit is answered ELIMIT.
func TestLimitsFromFile(t *testing.T) {
	n := startFromFile(t, limitsFile)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rooms, subs, rate := connect(t, n), connect(t, n), connect(t, n)
	isLimit := func(err error) bool {
		var ce *protocol.CodeError
		return errors.As(err, &ce) && ce.Code == "ELIMIT"
	}

	// A fourth connection from 127.0.0.1 is closed at accept.
	c := client.New("ws://"+n.Addr().String()+"/", client.Options{NoReconnect: true, Dialer: (&net.Dialer{KeepAlive: -1}).DialContext})
	if err := c.Connect(ctx); err == nil {
		_ = c.Close()
		t.Fatal("a fourth connection from one address was let in")
	}

	if r, err := rooms.JoinRoom(ctx, "r1"); err != nil || !r.Success {
		t.Fatal(r, err)
	}
	if _, err := rooms.JoinRoom(ctx, "r2"); !isLimit(err) {
		t.Fatalf("a second room: %v", err)
	}
	if r, err := subs.SubscribeChannel(ctx, "a", func(string) {}); err != nil || !r.Success {
		t.Fatal(r, err)
	}
	if _, err := subs.SubscribeChannel(ctx, "b", func(string) {}); !isLimit(err) {
		t.Fatalf("a second subscription: %v", err)
	}
	for i := 0; i < 2; i++ {
		if _, err := rate.Command(ctx, "echo", i); err != nil {
			t.Fatalf("command %d within the burst: %v", i, err)
		}
	}
	if _, err := rate.Command(ctx, "echo", 3); !isLimit(err) {
		t.Fatalf("a third command at once: %v", err)
	}

	// A message over max_message_size: closed with 1009.
	_ = rooms.Close() // its share of the address, for the raw connection
	time.Sleep(100 * time.Millisecond)
	var ws *websocket.Conn
	for try := 0; ; try++ {
		var err error
		ws, _, err = websocket.Dial(ctx, "ws://"+n.Addr().String()+"/", &websocket.DialOptions{
			HTTPClient: &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{KeepAlive: -1}).DialContext}}})
		if err == nil {
			break
		}
		if try > 50 {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // the closed client's share not given back yet
	}
	defer ws.CloseNow()
	_ = ws.Write(ctx, websocket.MessageText, []byte(`{"id":1,"command":"echo","payload":"`+strings.Repeat("x", 2000)+`"}`))
	var err error
	for err == nil {
		_, _, err = ws.Read(ctx)
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusMessageTooBig {
		t.Fatalf("an oversize message: %v, want 1009", err)
	}

	// /metrics is a connection from the same address too.
	ws.CloseNow()
	_, _ = subs.Close(), rate.Close()
	var m string
	testutil.Eventually(t, 5*time.Second, func() error {
		if s := n.Engine.Stats(); s.TCP > 0 {
			return fmt.Errorf("%d connections still open", s.TCP)
		}
		return nil
	})
	m = get(t, n, "/metrics")
	for _, want := range []string{
		`meshfast_connections_refused_total{limit="per_ip"} 1`,
		`mesh_limit_refusals_total{limit="rooms"} 1`,
		`mesh_limit_refusals_total{limit="subscriptions"} 1`,
		`mesh_limit_refusals_total{limit="command_rate"} 1`,
		`meshfast_closed_total{reason="message_too_big"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
