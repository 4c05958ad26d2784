package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/streams"
	"github.com/meshfast/meshfast/internal/testutil"
	"github.com/meshfast/meshfast/protocol/zps"
)

// Each of the document's limits, hit, with its error code.
func TestLimits(t *testing.T) {
	t.Run("max connections", func(t *testing.T) {
		n := startNode(t, Options{Limits: Limits{MaxConnections: 2}}, nil)
		w1, w2 := dialInit(t, n, "a"), dialInit(t, n, "b")
		w3 := dial(t, n)
		w3.want(errMsg("Too many connections (at most 2)", zps.CodeTooManyConnections))
		if code := w3.closed(); code != 4410 {
			t.Fatalf("closed with %d", code)
		}
		w1.c.Close(websocket.StatusNormalClosure, "")
		testutil.Eventually(t, 5*time.Second, func() error {
			if c := n.g.Connections(); c != 1 {
				return fmt.Errorf("%d connections", c)
			}
			return nil
		})
		dialInit(t, n, "c")
		w2.expect(`{"type":"unsubscribe","room":"x:1"}`, `{"type":"unsubscribed","room":"x:1"}`)
	})
	t.Run("max subscriptions", func(t *testing.T) {
		n := startNode(t, Options{Limits: Limits{MaxSubscriptions: 2}}, nil)
		w := dialInit(t, n, "a")
		w.expect(`{"type":"subscribe","room":"a:1"}`, `{"type":"subscribed","room":"a:1"}`)
		w.expect(`{"type":"subscribe","room":"a:*"}`, `{"type":"subscribed","room":"a:*"}`)
		w.expect(`{"type":"subscribe","room":"a:1","fromSequence":0}`, `{"type":"subscribed","room":"a:1"}`) // the same room again
		w.expect(`{"type":"subscribe","room":"a:2"}`, errMsg("Too many subscriptions (at most 2)", zps.CodeTooManySubscriptions))
		w.expect(`{"type":"unsubscribe","room":"a:1"}`, `{"type":"unsubscribed","room":"a:1"}`)
		w.expect(`{"type":"subscribe","room":"a:2"}`, `{"type":"subscribed","room":"a:2"}`)
	})
	t.Run("payload bytes", func(t *testing.T) {
		n := startNode(t, Options{Limits: Limits{MaxPayloadBytes: 64}}, nil)
		w := dialInit(t, n, "a")
		big := `{"type":"subscribe","room":"a:` + strings.Repeat("x", 60) + `"}`
		w.expect(big, errMsg(fmt.Sprintf("Payload too large: %d bytes, at most 64", len(big)), zps.CodePayloadTooLarge))
		w.expect(`{"type":"subscribe","room":"a:1"}`, `{"type":"subscribed","room":"a:1"}`)
	})
	t.Run("messages per window", func(t *testing.T) {
		n := startNode(t, Options{Limits: Limits{MaxMessagesPerWindow: 3, RateLimitWindow: time.Hour}}, nil)
		w := dialInit(t, n, "a") // 1
		w.expect(`{"type":"subscribe","room":"a:1"}`, `{"type":"subscribed","room":"a:1"}`)
		w.expect(`{"type":"unsubscribe","room":"a:1"}`, `{"type":"unsubscribed","room":"a:1"}`)
		w.expect(`{"type":"subscribe","room":"a:1"}`, errMsg("Rate limit exceeded: at most 3 messages per 1h0m0s", zps.CodeRateLimited))
		w.expect(`{"type":"subscribe","room":"a:1"}`, errMsg("Rate limit exceeded: at most 3 messages per 1h0m0s", zps.CodeRateLimited))
	})
	t.Run("messages per window resets", func(t *testing.T) {
		n := startNode(t, Options{Limits: Limits{MaxMessagesPerWindow: 2, RateLimitWindow: 50 * time.Millisecond}}, nil)
		w := dialInit(t, n, "a")
		w.expect(`{"type":"unsubscribe","room":"a:1"}`, `{"type":"unsubscribed","room":"a:1"}`)
		w.expect(`{"type":"unsubscribe","room":"a:1"}`, errMsg("Rate limit exceeded: at most 2 messages per 50ms", zps.CodeRateLimited))
		time.Sleep(60 * time.Millisecond) // the window is time itself
		w.expect(`{"type":"unsubscribe","room":"a:1"}`, `{"type":"unsubscribed","room":"a:1"}`)
	})
	t.Run("init timeout", func(t *testing.T) {
		n := startNode(t, Options{Limits: Limits{InitTimeout: 100 * time.Millisecond}}, nil)
		w := dial(t, n)
		start := time.Now()
		w.want(errMsg("Init timeout: no init within 100ms", zps.CodeInitTimeout))
		if code := w.closed(); code != 4403 {
			t.Fatalf("closed with %d", code)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("closed after %v", d)
		}
		ok := dialInit(t, n, "a") // an init in time keeps it
		time.Sleep(200 * time.Millisecond)
		ok.expect(`{"type":"unsubscribe","room":"a:1"}`, `{"type":"unsubscribed","room":"a:1"}`)
	})
	t.Run("init first", func(t *testing.T) {
		n := startNode(t, Options{}, nil)
		w := dial(t, n)
		w.expect(`{"type":"subscribe","room":"a:1"}`, errMsg("Realtime connection must send init first", zps.CodeInitRequired))
		w.expect(`{"type":"init","subscriberId":"d"}`, `{"type":"ready","subscriberId":"d"}`)
		w.expect(`{"type":"init"}`, errMsg("Invalid message: the connection is already initialized", zps.CodeInvalidMessage))
		anon := dial(t, n)
		f := ""
		anon.send(`{"type":"init"}`)
		if f = anon.next(); !strings.HasPrefix(f, `{"type":"ready","subscriberId":"anon-`) {
			t.Fatalf("anonymous init: %s", f)
		}
	})
	t.Run("client publish off", func(t *testing.T) {
		n := startNode(t, Options{}, nil)
		w := dialInit(t, n, "a")
		w.expect(`{"type":"publish","event":{"type":"t","room":"a:1","payload":1}}`, errMsg("Client publish is disabled", zps.CodePublishDisabled))
	})
	t.Run("heartbeat", func(t *testing.T) {
		n := startNode(t, Options{Limits: Limits{HeartbeatInterval: 50 * time.Millisecond, HeartbeatTimeout: 50 * time.Millisecond}}, nil)
		live := dialInit(t, n, "live") // its reader answers pings
		silent := rawGateway(t, n)     // never answers
		silent.write(`{"type":"init","subscriberId":"silent"}`)
		if f := silent.frame(); f.op != 0x1 || f.text != `{"type":"ready","subscriberId":"silent"}` {
			t.Fatalf("ready: %+v", f)
		}
		if f := silent.frame(); f.op != 0x9 {
			t.Fatalf("want a ping, got %+v", f)
		}
		// Closed with 1001 after the timeout; a dead peer sends no close
		// frame back, so the socket goes after the engine's CloseTimeout.
		start := time.Now()
		silent.expectEOF()
		if d := time.Since(start); d > 4*time.Second {
			t.Fatalf("closed %v after the ping", d)
		}
		time.Sleep(300 * time.Millisecond)
		live.expect(`{"type":"unsubscribe","room":"a:1"}`, `{"type":"unsubscribed","room":"a:1"}`)
	})
	t.Run("socket buffered bytes", func(t *testing.T) {
		n := startNode(t, Options{Limits: Limits{MaxSocketBufferedBytes: 64 << 10}}, nil)
		reader := dialInit(t, n, "reader")
		reader.expect(`{"type":"subscribe","room":"big:1"}`, `{"type":"subscribed","room":"big:1"}`)
		stalled := rawGateway(t, n)
		stalled.write(`{"type":"init","subscriberId":"stalled"}`)
		stalled.frame()
		stalled.write(`{"type":"subscribe","room":"big:1"}`)
		stalled.frame()
		// Stop reading: the kernel's buffers fill, then the node's, past
		// the cap. The reader keeps up.
		payload := `"` + strings.Repeat("x", 60<<10) + `"`
		for i := 0; ; i++ {
			if i == 2000 {
				t.Fatal("the stalled connection was never closed")
			}
			if _, err := n.st.Publish(bg(), streams.Message{Room: "big:1", Type: "t", Payload: []byte(payload)}); err != nil {
				t.Fatal(err)
			}
			reader.next()
			if n.g.Connections() == 1 {
				break
			}
		}
		if s := n.e.Stats(); s.SlowConsumers != 1 {
			t.Fatalf("slow consumers %d", s.SlowConsumers)
		}
		reader.expect(`{"type":"unsubscribe","room":"big:1"}`, `{"type":"unsubscribed","room":"big:1"}`)
	})
}

// Each auth refusal: a token on init, the scopes, Authorize per action,
// the streams middleware.
func TestAuth(t *testing.T) {
	var mu sync.Mutex
	var asked []Access
	auth := Auth{
		Scopes: []string{"chat"},
		JWT: func(_ context.Context, tok string) (map[string]any, error) {
			if tok != "good" {
				return nil, errors.New("token expired")
			}
			return map[string]any{"sub": "alice"}, nil
		},
		Authorize: func(_ context.Context, a Access) (bool, error) {
			mu.Lock()
			asked = append(asked, a)
			mu.Unlock()
			switch a.Room {
			case "chat:secret":
				return false, nil
			case "chat:broken":
				return false, errors.New("directory down")
			}
			return a.Claims["sub"] == "alice", nil
		},
	}
	n := startNode(t, Options{Auth: auth, Limits: Limits{AllowClientPublish: true}}, nil)
	n.publish(t, "chat:secret", 1, "t")
	n.publish(t, "chat:mw", 1, "t")
	n.st.Use(func(ctx context.Context, op *streams.Op, next func(context.Context) error) error {
		if op.Room == "chat:mw" {
			return errors.New("tenant missing")
		}
		return next(ctx)
	})

	w := dial(t, n)
	w.expect(`{"type":"init","subscriberId":"d"}`, errMsg("Unauthorized: init carries no token", zps.CodeUnauthorized))
	if code := w.closed(); code != 4401 {
		t.Fatalf("closed with %d", code)
	}
	w = dial(t, n)
	w.expect(`{"type":"init","subscriberId":"d","token":"bad"}`, errMsg("Unauthorized: token expired", zps.CodeUnauthorized))
	if code := w.closed(); code != 4401 {
		t.Fatalf("closed with %d", code)
	}
	w = dial(t, n)
	w.expect(`{"type":"init","subscriberId":"d","token":"good"}`, `{"type":"ready","subscriberId":"d"}`)
	for _, room := range []string{"admin:1", "chat:secret"} {
		denied := errMsg("Access denied for room: "+room, zps.CodeAccessDenied)
		w.expect(`{"type":"subscribe","room":"`+room+`"}`, denied)
		w.expect(`{"type":"publish","event":{"type":"t","room":"`+room+`","payload":1}}`, denied)
		w.expect(`{"type":"replay_request","room":"`+room+`","fromSequence":0}`, denied)
		w.expect(`{"type":"ack","room":"`+room+`","sequence":1}`, denied)
	}
	w.expect(`{"type":"subscribe","room":"admin:*"}`, errMsg("Access denied for room: admin:*", zps.CodeAccessDenied))
	w.expect(`{"type":"subscribe","room":"chat:broken"}`, errMsg("Authorization failed for room: chat:broken", zps.CodeServerError))
	mwDenied := errMsg("Access denied for room: chat:mw (tenant missing)", zps.CodeAccessDenied)
	w.expect(`{"type":"subscribe","room":"chat:mw"}`, mwDenied)
	w.expect(`{"type":"publish","event":{"type":"t","room":"chat:mw","payload":1}}`, mwDenied)
	w.expect(`{"type":"replay_request","room":"chat:mw","fromSequence":0}`, mwDenied)
	w.expect(`{"type":"ack","room":"chat:mw","sequence":1}`, mwDenied)
	w.expect(`{"type":"subscribe","room":"chat:*"}`, `{"type":"subscribed","room":"chat:*"}`)

	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, a := range asked {
		if a.SubscriberID != "d" || a.Claims["sub"] != "alice" {
			t.Fatalf("authorize asked %+v", a)
		}
		got = append(got, string(a.Action)+" "+a.Room)
	}
	want := "[subscribe chat:secret publish chat:secret replay chat:secret ack chat:secret subscribe chat:broken " +
		"subscribe chat:mw publish chat:mw replay chat:mw ack chat:mw subscribe chat:*]"
	if fmt.Sprint(got) != want {
		t.Fatalf("authorize asked\n%v\nwant\n%v", got, want)
	}
}

// rawConn is a gateway client on a bare socket: it answers nothing (no
// pong) and reads only when asked, with a small receive buffer.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

type rawFrame struct {
	op   byte
	text string
}

func rawGateway(t testing.TB, n *node) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", n.e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	t.Cleanup(func() { nc.Close() })
	rc := &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
	fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", n.g.o.Path)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return rc
}

// write sends one masked text frame.
func (rc *rawConn) write(s string) {
	rc.t.Helper()
	p := []byte(s)
	hdr := []byte{0x81}
	switch {
	case len(p) < 126:
		hdr = append(hdr, 0x80|byte(len(p)))
	default:
		hdr = append(hdr, 0x80|126, byte(len(p)>>8), byte(len(p)))
	}
	mask := []byte{1, 2, 3, 4}
	hdr = append(hdr, mask...)
	for i := range p {
		p[i] ^= mask[i%4]
	}
	if _, err := rc.nc.Write(append(hdr, p...)); err != nil {
		rc.t.Fatal(err)
	}
}

func (rc *rawConn) frame() rawFrame {
	rc.t.Helper()
	_ = rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(rc.br, h[:]); err != nil {
		rc.t.Fatal(err)
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		_, _ = io.ReadFull(rc.br, b[:])
		n = int(b[0])<<8 | int(b[1])
	case 127:
		var b [8]byte
		_, _ = io.ReadFull(rc.br, b[:])
		n = 0
		for _, x := range b {
			n = n<<8 | int(x)
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(rc.br, p); err != nil {
		rc.t.Fatal(err)
	}
	return rawFrame{op: h[0] & 0x0f, text: string(p)}
}

// expectEOF reads until the server closes the connection.
func (rc *rawConn) expectEOF() {
	rc.t.Helper()
	_ = rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, rc.br); err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		rc.t.Fatalf("waiting for the close: %v", err)
	}
}

// TestAllowedOrigins: a browser page of another origin is refused at the
// handshake with 403, before any of the protocol; an allowed origin and a
// client that sends no Origin (not a page) get the gateway.
func TestAllowedOrigins(t *testing.T) {
	n := startNode(t, Options{AllowedOrigins: []string{"https://app.example.com", "https://*.example.org"}}, nil)
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"https://app.example.com", true},
		{"HTTPS://APP.EXAMPLE.COM", true},
		{"https://a.b.example.org", true},
		{"https://evil.com", false},
		{"https://app.example.com.evil.com", false},
		{"null", false},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, resp, err := websocket.Dial(ctx, n.url(), &websocket.DialOptions{HTTPClient: noKeepAlive, HTTPHeader: h})
		cancel()
		if tc.ok {
			if err != nil {
				t.Fatalf("origin %q refused: %v", tc.origin, err)
			}
			c.CloseNow()
			continue
		}
		if err == nil {
			c.CloseNow()
			t.Fatalf("origin %q accepted", tc.origin)
		}
		if resp == nil || resp.StatusCode != 403 {
			t.Fatalf("origin %q: %v %v, want 403", tc.origin, resp, err)
		}
	}
	if got := n.g.m.originRefused.Load(); got != 3 {
		t.Fatalf("%v refusals counted, want 3", got)
	}
	if _, err := New(engine.New(fastEngine), n.st, Options{Path: "/other", AllowedOrigins: []string{"example.com"}}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("a bad origin entry: %v", err)
	}
}
