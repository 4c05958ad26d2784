package engine

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// startEngine runs an engine on 127.0.0.1:0 with h on "/ws" and stops it
// when the test ends.
func startEngine(t testing.TB, o Options, h Handler) *Engine {
	t.Helper()
	o.Addr = "127.0.0.1:0"
	return startEngineAt(t, o, h)
}

// startEngineAt is startEngine on o.Addr.
func startEngineAt(t testing.TB, o Options, h Handler) *Engine {
	t.Helper()
	if o.Loops == 0 {
		o.Loops = 2
	}
	e := New(o)
	if h != nil {
		e.Handle("/ws", h)
	}
	e.HandleHTTP("/health", e.HealthHandler(nil))
	if err := e.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Shutdown(ctx); err != nil && err != ErrServerClosed {
			t.Errorf("shutdown: %v", err)
		}
	})
	return e
}

func dial(t testing.TB, e *Engine) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, e.URL()+"/ws", &websocket.DialOptions{HTTPClient: noKeepAliveClient})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(8 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

var noKeepAliveClient = &http.Client{Transport: &http.Transport{
	DialContext: (&net.Dialer{KeepAlive: -1}).DialContext,
}}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawConn is a hand-driven WebSocket client for sending frames a real
// client library refuses to send.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func rawDial(t testing.TB, e *Engine, path string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	rc := &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
	fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	return rc
}

// clientFrame builds a client frame; masked unless mask is false.
func clientFrame(b0 byte, masked bool, payload []byte) []byte {
	var out []byte
	out = append(out, b0)
	mbit := byte(0)
	if masked {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		out = append(out, mbit|byte(n))
	case n <= 0xffff:
		out = append(out, mbit|126, byte(n>>8), byte(n))
	default:
		out = append(out, mbit|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	p := append([]byte(nil), payload...)
	if masked {
		key := [4]byte{1, 2, 3, 4}
		out = append(out, key[:]...)
		for i := range p {
			p[i] ^= key[i&3]
		}
	}
	return append(out, p...)
}

func (rc *rawConn) send(b []byte) {
	rc.t.Helper()
	if _, err := rc.nc.Write(b); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// readFrame reads one server frame.
func (rc *rawConn) readFrame() (op OpCode, payload []byte, err error) {
	_ = rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var h [2]byte
	if _, err = io.ReadFull(rc.br, h[:]); err != nil {
		return
	}
	op = OpCode(h[0] & 0xf)
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		_, err = io.ReadFull(rc.br, b[:])
		n = int(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, err = io.ReadFull(rc.br, b[:])
		n = int(binary.BigEndian.Uint64(b[:]))
	}
	if err != nil {
		return
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(rc.br, payload)
	return
}

// expectClose reads frames until a close frame and returns its code.
func (rc *rawConn) expectClose() CloseCode {
	rc.t.Helper()
	for {
		op, p, err := rc.readFrame()
		if err != nil {
			rc.t.Fatalf("waiting for close frame: %v", err)
		}
		if op == OpClose {
			if len(p) < 2 {
				return CloseNoStatus
			}
			return CloseCode(binary.BigEndian.Uint16(p))
		}
	}
}

func httpGet(t testing.TB, e *Engine, path string, headers ...string) (int, string) {
	t.Helper()
	nc, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path, strings.Join(headers, ""))
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// topicHandler subscribes every connection to "all" and echoes messages.
type topicHandler struct{ Echo }

func (topicHandler) OnOpen(c *Conn, _ *Request) { c.loop.e.Subscribe(c, "all") }
