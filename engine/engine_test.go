package engine

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"

	"github.com/meshfast/meshfast/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.VerifyNoLeaks(m)
}

func TestEchoTextAndBinary(t *testing.T) {
	t.Parallel()
	e := startEngine(t, Options{}, Echo{})
	c := dial(t, e)
	ctx := ctxT(t)
	for _, tc := range []struct {
		typ websocket.MessageType
		msg []byte
	}{
		{websocket.MessageText, []byte("hello")},
		{websocket.MessageBinary, []byte{0, 1, 2, 255}},
		{websocket.MessageText, []byte("")},
		{websocket.MessageText, []byte("héllo wörld ✓")},
	} {
		if err := c.Write(ctx, tc.typ, tc.msg); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if typ != tc.typ || !bytes.Equal(got, tc.msg) {
			t.Fatalf("echo: got %v %q, want %v %q", typ, got, tc.typ, tc.msg)
		}
	}
}

func TestEchoLargeMessages(t *testing.T) {
	t.Parallel()
	e := startEngine(t, Options{}, Echo{})
	c := dial(t, e)
	ctx := ctxT(t)
	for _, size := range []int{125, 126, 65535, 64 << 10, 1 << 20} {
		msg := make([]byte, size)
		_, _ = rand.Read(msg)
		if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("size %d: echo differs (got %d bytes)", size, len(got))
		}
	}
}

func TestFragmentedMessage(t *testing.T) {
	t.Parallel()
	e := startEngine(t, Options{}, Echo{})
	c := dial(t, e)
	ctx := ctxT(t)
	w, err := c.Writer(ctx, websocket.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := 0; i < 5; i++ {
		part := []byte(fmt.Sprintf("part-%d;", i))
		want = append(want, part...)
		if _, err := w.Write(part); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, got, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestRawFragmentsWithControlFramesBetween(t *testing.T) {
	t.Parallel()
	e := startEngine(t, Options{}, Echo{})
	rc := rawDial(t, e, "/ws")
	var b []byte
	b = append(b, clientFrame(byte(OpText), true, []byte("ab"))...)      // start, fin=0
	b = append(b, clientFrame(0x80|byte(OpPing), true, []byte("p1"))...) // ping between
	b = append(b, clientFrame(byte(OpContinuation), true, []byte("cd"))...)
	b = append(b, clientFrame(0x80|byte(OpContinuation), true, []byte("ef"))...)
	// send one byte at a time: every split offset of the stream
	for i := range b {
		rc.send(b[i : i+1])
	}
	op, p, err := rc.readFrame()
	if err != nil || op != OpPong || string(p) != "p1" {
		t.Fatalf("want pong p1, got %v %q %v", op, p, err)
	}
	op, p, err = rc.readFrame()
	if err != nil || op != OpText || string(p) != "abcdef" {
		t.Fatalf("want text abcdef, got %v %q %v", op, p, err)
	}
}

func TestPingPong(t *testing.T) {
	t.Parallel()
	e := startEngine(t, Options{}, Echo{})
	c := dial(t, e)
	ctx := c.CloseRead(ctxT(t))
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

func TestProtocolViolationsCloseWithCode(t *testing.T) {
	t.Parallel()
	e := startEngine(t, Options{MaxMessageSize: 1024}, Echo{})
	cases := []struct {
		name  string
		frame []byte
		code  CloseCode
	}{
		{"unmasked", clientFrame(0x80|byte(OpText), false, []byte("x")), CloseProtocolError},
		{"rsv1", clientFrame(0xC0|byte(OpText), true, []byte("x")), CloseProtocolError},
		{"rsv3", clientFrame(0x90|byte(OpText), true, []byte("x")), CloseProtocolError},
		{"opcode3", clientFrame(0x83, true, []byte("x")), CloseProtocolError},
		{"opcode11", clientFrame(0x8B, true, nil), CloseProtocolError},
		{"bigping", clientFrame(0x80|byte(OpPing), true, make([]byte, 126)), CloseProtocolError},
		{"fragping", clientFrame(byte(OpPing), true, nil), CloseProtocolError},
		{"continuation-first", clientFrame(0x80, true, []byte("x")), CloseProtocolError},
		{"badutf8", clientFrame(0x80|byte(OpText), true, []byte{0xff, 0xfe}), CloseInvalidPayload},
		{"toobig", clientFrame(0x80|byte(OpBinary), true, make([]byte, 2000)), CloseMessageTooBig},
		{"close-1byte", clientFrame(0x80|byte(OpClose), true, []byte{3}), CloseProtocolError},
		{"close-badcode", clientFrame(0x80|byte(OpClose), true, []byte{0x03, 0xe7}), CloseProtocolError},
		{"close-1005", clientFrame(0x80|byte(OpClose), true, []byte{0x03, 0xed}), CloseProtocolError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := rawDial(t, e, "/ws")
			rc.send(tc.frame)
			if got := rc.expectClose(); got != tc.code {
				t.Fatalf("close code %d, want %d", got, tc.code)
			}
		})
	}
	t.Run("fragmented-too-big", func(t *testing.T) {
		rc := rawDial(t, e, "/ws")
		rc.send(clientFrame(byte(OpText), true, make([]byte, 600)))
		rc.send(clientFrame(0x80, true, make([]byte, 600)))
		if got := rc.expectClose(); got != CloseMessageTooBig {
			t.Fatalf("close code %d", got)
		}
	})
	t.Run("new-message-inside-fragmented", func(t *testing.T) {
		rc := rawDial(t, e, "/ws")
		rc.send(clientFrame(byte(OpText), true, []byte("a")))
		rc.send(clientFrame(0x80|byte(OpText), true, []byte("b")))
		if got := rc.expectClose(); got != CloseProtocolError {
			t.Fatalf("close code %d", got)
		}
	})
	t.Run("fragmented-badutf8", func(t *testing.T) {
		rc := rawDial(t, e, "/ws")
		rc.send(clientFrame(byte(OpText), true, []byte{0xe2, 0x82}))
		rc.send(clientFrame(0x80, true, []byte{0x28}))
		if got := rc.expectClose(); got != CloseInvalidPayload {
			t.Fatalf("close code %d", got)
		}
	})
}

func TestClientCloseIsEchoed(t *testing.T) {
	t.Parallel()
	closed := make(chan CloseInfo, 1)
	e := startEngine(t, Options{}, &closeRecorder{ch: closed})
	c := dial(t, e)
	if err := c.Close(websocket.StatusCode(4001), "bye"); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
	select {
	case info := <-closed:
		if info.Reason != ReasonClientClosed || info.Code != 4001 {
			t.Fatalf("close info %+v", info)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnClose not called")
	}
}

type closeRecorder struct {
	Echo
	ch chan CloseInfo
}

func (r *closeRecorder) OnClose(_ *Conn, info CloseInfo) { r.ch <- info }

func TestViolatorsDoNotDisturbOthers(t *testing.T) {
	t.Parallel()
	e := startEngine(t, Options{MaxMessageSize: 4096}, Echo{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	stop := make(chan struct{})
	// well-behaved clients echo continuously
	for i := 0; i < 8; i++ {
		c := dial(t, e)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				msg := []byte(fmt.Sprintf("c%d-%d", i, n))
				if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
					errs <- err
					return
				}
				_, got, err := c.Read(ctx)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("got %q want %q", got, msg)
					return
				}
			}
		}(i)
	}
	bad := [][]byte{
		clientFrame(0x81, false, []byte("x")),
		clientFrame(0xC1, true, []byte("x")),
		clientFrame(0x83, true, nil),
		clientFrame(0x81, true, []byte{0xff}),
		clientFrame(0x82, true, make([]byte, 5000)),
		clientFrame(0x89, true, make([]byte, 200)),
		[]byte{0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // length with top bit
		[]byte("GET / HTTP/1.1\r\n\r\n"),
	}
	for round := 0; round < 5; round++ {
		for _, b := range bad {
			rc := rawDial(t, e, "/ws")
			rc.send(b)
			rc.expectClose()
			rc.nc.Close()
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("a well-behaved client failed: %v", err)
	default:
	}
}

func TestManyConcurrentClients(t *testing.T) {
	t.Parallel()
	e := startEngine(t, Options{}, Echo{})
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, e.URL()+"/ws", &websocket.DialOptions{HTTPClient: noKeepAliveClient})
			if err != nil {
				errs <- err
				return
			}
			defer c.CloseNow()
			for j := 0; j < 10; j++ {
				msg := []byte(fmt.Sprintf("%d/%d", i, j))
				if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
					errs <- err
					return
				}
				if _, got, err := c.Read(ctx); err != nil || !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("read %q: %v", got, err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestHalfOpenHandshakeTimesOut(t *testing.T) {
	t.Parallel()
	e := startEngine(t, Options{HandshakeTimeout: 200 * time.Millisecond, TickInterval: 20 * time.Millisecond, SweepPeriod: 40 * time.Millisecond}, Echo{})
	var conns []net.Conn
	for i := 0; i < 20; i++ {
		nc, err := net.Dial("tcp", e.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if i%2 == 0 {
			_, _ = nc.Write([]byte("GET /ws HTTP/1.1\r\nHost: x\r\n")) // never finished
		}
		conns = append(conns, nc)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := e.Stats().TCP; n != 0 {
			return fmt.Errorf("%d connections still open", n)
		}
		return nil
	})
	for _, nc := range conns {
		_ = nc.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := nc.Read(make([]byte, 1)); err == nil {
			t.Fatal("half-open connection got data instead of a close")
		}
	}
	if n := e.Stats().Closed[ReasonHandshakeTimeout.String()]; n != 20 {
		t.Fatalf("handshake timeouts %d, want 20", n)
	}
}

func TestHTTPRoutes(t *testing.T) {
	t.Parallel()
	e := startEngine(t, Options{MaxHeaderBytes: 1024}, Echo{})
	if code, body := httpGet(t, e, "/health"); code != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("/health: %d %q", code, body)
	}
	if code, _ := httpGet(t, e, "/nope"); code != 404 {
		t.Fatalf("/nope: %d", code)
	}
	if code, _ := httpGet(t, e, "/ws"); code != 426 {
		t.Fatalf("plain GET /ws: %d", code)
	}
	if code, _ := httpGet(t, e, "/health", "X-Big: "+strings.Repeat("a", 2000)+"\r\n"); code != 431 {
		t.Fatalf("big header: %d", code)
	}
	upgrade := "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	if code, _ := httpGet(t, e, "/elsewhere", upgrade); code != 404 {
		t.Fatalf("upgrade on unknown path: %d", code)
	}
	if code, _ := httpGet(t, e, "/ws", "Upgrade: websocket\r\nConnection: Upgrade\r\n"); code/100 != 4 {
		t.Fatalf("upgrade without key: %d", code)
	}
	nc, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, _ = nc.Write([]byte("BLAH\r\n\r\n"))
	buf := make([]byte, 64)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _ := nc.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 400") {
		t.Fatalf("garbage request: %q", buf[:n])
	}
}

// MaxConnections counts TCP connections: past it a WebSocket client is
// closed before its handshake is read.
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	e := startEngine(t, Options{MaxConnections: 2}, Echo{})
	dial(t, e)
	dial(t, e)
	ctx := ctxT(t)
	if c, _, err := websocket.Dial(ctx, e.URL()+"/ws", &websocket.DialOptions{HTTPClient: noKeepAliveClient}); err == nil {
		c.CloseNow()
		t.Fatal("third connection upgraded past MaxConnections 2")
	}
	if s := e.Stats(); s.RefusedMaxConnections != 1 || s.RefusedFileLimit != 0 || s.ConnectionLimit != 2 {
		t.Fatalf("refused %d at MaxConnections, %d at the file limit, limit %d; want 1, 0, 2",
			s.RefusedMaxConnections, s.RefusedFileLimit, s.ConnectionLimit)
	}
}

func TestPublishToTopic(t *testing.T) {
	t.Parallel()
	e := startEngine(t, Options{Loops: 2}, topicHandler{})
	var clients []*websocket.Conn
	for i := 0; i < 20; i++ {
		clients = append(clients, dial(t, e))
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := e.Stats().Connections; n != 20 {
			return fmt.Errorf("%d connections", n)
		}
		return nil
	})
	f := NewTextFrame([]byte("to everyone"))
	e.Publish("all", f, []uint64{})
	f.Release()
	ctx := ctxT(t)
	for i, c := range clients {
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != "to everyone" {
			t.Fatalf("client %d: %q %v", i, got, err)
		}
	}
}

func TestBurstCoalescesWrites(t *testing.T) {
	t.Parallel()
	e := startEngine(t, Options{Loops: 1}, topicHandler{})
	c := dial(t, e)
	testutil.Eventually(t, 5*time.Second, func() error {
		if e.Stats().Connections != 1 {
			return errors.New("not connected")
		}
		return nil
	})
	before := e.Stats()
	const n = 1000
	for i := 0; i < n; i++ {
		f := NewTextFrame([]byte(fmt.Sprintf("m%d", i)))
		e.Publish("all", f, nil)
		f.Release()
	}
	ctx := ctxT(t)
	for i := 0; i < n; i++ {
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != fmt.Sprintf("m%d", i) {
			t.Fatalf("message %d: %q %v", i, got, err)
		}
	}
	after := e.Stats()
	writes := after.Writes - before.Writes
	frames := after.FramesWritten - before.FramesWritten
	// the handshake response may be counted after the client already saw it
	if frames != n && frames != n+1 {
		t.Fatalf("frames written %d, want %d", frames, n)
	}
	if writes >= n/2 {
		t.Fatalf("%d writes for %d frames: bursts are not coalesced", writes, n)
	}
	t.Logf("%d frames in %d writes", frames, writes)
}

func TestSlowConsumerIsClosed(t *testing.T) {
	t.Parallel()
	closed := make(chan CloseInfo, 4)
	e := startEngine(t, Options{Loops: 1, MaxPendingBytes: 256 << 10}, &slowRecorder{ch: closed})
	// A raw client that never reads.
	rc := rawDial(t, e, "/ws")
	_ = rc
	fast := dial(t, e)
	testutil.Eventually(t, 5*time.Second, func() error {
		if e.Stats().Connections != 2 {
			return errors.New("not connected")
		}
		return nil
	})
	payload := bytes.Repeat([]byte("x"), 16<<10)
	ctx := ctxT(t)
	// The fast reader counts what it has read, and each publish waits for
	// it to have read the one before: it never owes more than one frame,
	// however slow the host (a fixed publish rate outran it under -race
	// on a loaded box, and it was closed too).
	var read atomic.Int64
	go func() {
		for {
			if _, _, err := fast.Read(ctx); err != nil {
				return
			}
			read.Add(1)
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for i := int64(0); e.Stats().SlowConsumers == 0 && time.Now().Before(deadline); i++ {
		f := NewTextFrame(payload)
		e.Publish("all", f, nil)
		f.Release()
		testutil.Eventually(t, 10*time.Second, func() error {
			if n := read.Load(); n <= i {
				return fmt.Errorf("the fast reader has read %d of %d", n, i+1)
			}
			return nil
		})
	}
	select {
	case info := <-closed:
		if info.Reason != ReasonSlowConsumer {
			t.Fatalf("closed for %v", info.Reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("slow consumer never closed")
	}
	if e.Stats().Connections != 1 {
		t.Fatalf("the fast reader should still be connected: %+v", e.Stats())
	}
}

type slowRecorder struct {
	topicHandler
	ch chan CloseInfo
}

func (r *slowRecorder) OnClose(_ *Conn, info CloseInfo) { r.ch <- info }

func TestShutdownSendsGoingAway(t *testing.T) {
	t.Parallel()
	e := New(Options{Addr: "127.0.0.1:0", Loops: 2})
	e.Handle("/ws", Echo{})
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	var cs []*websocket.Conn
	for i := 0; i < 5; i++ {
		cs = append(cs, dial(t, e))
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- e.Shutdown(ctx)
	}()
	for _, c := range cs {
		_, _, err := c.Read(ctxT(t))
		if websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Fatalf("want 1001, got %v", err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", e.Addr().String(), time.Second); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

// A silent client is pinged, then closed at IdleTimeout; one that answers
// pings stays past it. The timeout leaves a live client 900 ms to answer a
// ping, so that a loaded machine (the race detector, parallel tests)
// does not make it look dead.
func TestIdleTimeoutAndPing(t *testing.T) {
	t.Parallel()
	const idle = time.Second
	e := startEngine(t, Options{
		IdleTimeout: idle, PingInterval: 100 * time.Millisecond,
		TickInterval: 20 * time.Millisecond, SweepPeriod: 20 * time.Millisecond,
	}, Echo{})
	// A raw client that answers nothing is closed for idleness, after pings.
	rc := rawDial(t, e, "/ws")
	sawPing := false
	for {
		op, _, err := rc.readFrame()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if op == OpPing {
			sawPing = true
		}
		if op == OpClose {
			break
		}
	}
	if !sawPing {
		t.Fatal("no ping before idle close")
	}
	// A real client answers pings automatically and stays.
	c := dial(t, e)
	ctx := c.CloseRead(ctxT(t))
	time.Sleep(idle + idle/2) // the time passing is what is tested
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("live client was closed: %v", err)
	}
}

// streamHandler holds an SSE-style response open and writes one event on open.
type streamHandler struct{ closed chan struct{} }

func (h *streamHandler) OnOpen(c *Conn, _ *Request) {
	c.loop.e.Subscribe(c, "events")
	_ = c.WriteRaw([]byte("data: hello " + c.Path() + "\n\n"))
}
func (h *streamHandler) OnMessage(*Conn, OpCode, []byte) {}
func (h *streamHandler) OnClose(*Conn, CloseInfo)        { close(h.closed) }

func TestStreamResponseHeldByLoop(t *testing.T) {
	t.Parallel()
	e := startEngine(t, Options{}, Echo{})
	sh := &streamHandler{closed: make(chan struct{})}
	e.HandleHTTP("/events", func(w *Response, r *Request) {
		w.ContentType = "text/event-stream"
		w.Headers = []string{"Cache-Control: no-cache"}
		w.Stream(sh)
	})
	nc, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, _ = nc.Write([]byte("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"))
	br := bufio.NewReader(nc)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream head: %v %+v", err, resp)
	}
	if te := resp.TransferEncoding; len(te) != 1 || te[0] != "chunked" {
		t.Fatalf("an HTTP/1.1 stream is chunked: %q", te)
	}
	body := bufio.NewReader(resp.Body)
	line, _ := body.ReadString('\n')
	if line != "data: hello /events\n" { // the stream knows its path
		t.Fatalf("first event %q", line)
	}
	_, _ = body.ReadString('\n')
	// a published frame reaches the stream through its stream variant only
	f := NewTextFrame([]byte("ws only"))
	e.Publish("events", f, nil)
	f.Release()
	f = NewTextFrame([]byte("both"))
	f.SetStream([]byte("data: both\n\n"))
	e.Publish("events", f, nil)
	f.Release()
	if line, _ = body.ReadString('\n'); line != "data: both\n" {
		t.Fatalf("published event %q", line)
	}
	nc.Close()
	select {
	case <-sh.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("stream OnClose not called")
	}
}

func TestPublishAllFiltersByHandler(t *testing.T) {
	t.Parallel()
	e := startEngine(t, Options{}, Echo{})
	other := topicHandler{}
	e.Handle("/other", other)
	a, b := dial(t, e), dial(t, e)
	rc := rawDial(t, e, "/other")
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := e.Stats().Connections; n != 3 {
			return fmt.Errorf("%d connections", n)
		}
		return nil
	})
	f := NewTextFrame([]byte("echo people"))
	e.PublishAll(f, nil, Echo{})
	f.Release()
	ctx := ctxT(t)
	for _, c := range []*websocket.Conn{a, b} {
		if _, got, err := c.Read(ctx); err != nil || string(got) != "echo people" {
			t.Fatalf("%q %v", got, err)
		}
	}
	f = NewTextFrame([]byte("everyone"))
	e.PublishAll(f, nil, nil)
	f.Release()
	if op, p, err := rc.readFrame(); err != nil || op != OpText || string(p) != "everyone" {
		t.Fatalf("other handler got %v %q %v (it must not have had the first frame)", op, p, err)
	}
}

// loopRecorder notes which loop each connection opened on.
type loopRecorder struct {
	mu    sync.Mutex
	loops map[int]int
	paths map[string]int
}

func (r *loopRecorder) OnOpen(c *Conn, _ *Request) {
	r.mu.Lock()
	r.loops[c.LoopIndex()]++
	r.paths[c.Path()]++
	r.mu.Unlock()
}
func (r *loopRecorder) OnMessage(c *Conn, op OpCode, p []byte) { _ = c.writeMessage(op, p) }
func (r *loopRecorder) OnClose(*Conn, CloseInfo)               {}

// With ReusePort every loop accepts on its own socket: connections are
// served on all loops; port 0 is a free port, as without it.
func TestReusePort(t *testing.T) {
	t.Parallel()
	if err := (Options{Addr: "no-port", ReusePort: true}).Validate(); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("ReusePort without a port: %v, want ErrInvalidOptions", err)
	}
	rec := &loopRecorder{loops: map[int]int{}, paths: map[string]int{}}
	e := startEngineAt(t, Options{Addr: "127.0.0.1:0", Loops: 2, ReusePort: true}, rec)
	if e.Addr().(*net.TCPAddr).Port == 0 {
		t.Fatal("port 0 was not resolved")
	}
	for i := range 40 {
		c := dial(t, e)
		msg := []byte(fmt.Sprint("hello ", i))
		if err := c.Write(ctxT(t), websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.Read(ctxT(t)); err != nil || string(got) != string(msg) {
			t.Fatalf("echo %q: %q, %v", msg, got, err)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.loops) != 2 {
		t.Fatalf("connections per loop %v: want both loops accepting", rec.loops)
	}
	if rec.paths["/ws"] != 40 || len(rec.paths) != 1 {
		t.Fatalf("paths seen in OnOpen %v: want /ws for all 40", rec.paths)
	}
}

// Conn's size class is most of the engine's memory per idle connection:
// 160 bytes, down from 224 when the handler and path were two fields, the
// close error and the reassembly buffer two more, and the last ping's time
// a timer of its own.
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 160 {
		t.Fatalf("engine.Conn is %d bytes, over its 160-byte size class", n)
	}
}

// Queued and unsent byte counts are 32-bit, so the cap on them is refused
// past maxPendingBytes.
func TestMaxPendingBytesBound(t *testing.T) {
	if err := (Options{MaxPendingBytes: maxPendingBytes}).Validate(); err != nil {
		t.Fatalf("MaxPendingBytes at the bound: %v", err)
	}
	if err := (Options{MaxPendingBytes: maxPendingBytes + 1}).Validate(); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("MaxPendingBytes over the bound: %v, want ErrInvalidOptions", err)
	}
	if got := clampOwed(1 << 40); int(got) <= maxPendingBytes {
		t.Fatalf("clampOwed(1<<40) = %d: a huge backlog must still read as over the cap", got)
	}
}

// The error a connection closed with reaches OnClose, whichever path closed
// it, and the loop keeps nothing of it afterwards.
func TestCloseErrorReachesOnClose(t *testing.T) {
	t.Parallel()
	closed := make(chan CloseInfo, 4)
	e := startEngine(t, Options{}, &closeRecorder{ch: closed})
	next := func() CloseInfo {
		t.Helper()
		select {
		case info := <-closed:
			return info
		case <-time.After(5 * time.Second):
			t.Fatal("OnClose not called")
			return CloseInfo{}
		}
	}

	rc := rawDial(t, e, "/ws") // a protocol error: an unmasked client frame
	rc.send(clientFrame(0x81, false, []byte("x")))
	if info := next(); info.Reason != ReasonProtocolError || info.Err == nil {
		t.Fatalf("protocol error: close info %+v, want its error", info)
	}

	rc = rawDial(t, e, "/ws") // gone without a close frame
	rc.nc.Close()
	if info := next(); info.Reason != ReasonClientGone || info.Err == nil {
		t.Fatalf("client gone: close info %+v, want the transport's error", info)
	}

	c := dial(t, e) // a clean close handshake has no error
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	if info := next(); info.Reason != ReasonClientClosed || info.Err != nil {
		t.Fatalf("clean close: close info %+v, want no error", info)
	}

	left := make(chan int, 8)
	loops := *e.loops.Load()
	e.ForEachLoop(func(i int) { left <- len(loops[i].closeErrs) })
	for range loops {
		if n := <-left; n != 0 {
			t.Fatalf("a loop still holds %d close errors", n)
		}
	}
}

// A fragmented message's buffer lives in the loop while the message is in
// progress and is gone once it completes, fails or its connection closes.
func TestFragmentBufferLifetime(t *testing.T) {
	s := NewSimulator(Options{})
	r := &recorder{}
	frags := func(sc *SimConn) int { return len(sc.conn.loop.frags) }

	done := s.Open(r)
	s.Feed(done, clientFrame(byte(OpText), true, []byte("frag")))
	if n := frags(done); n != 1 {
		t.Fatalf("%d buffers while a message is in progress, want 1", n)
	}
	s.Feed(done, clientFrame(0x80, true, []byte("ment")))
	if n := frags(done); n != 0 || done.conn.fragOp != 0 {
		t.Fatalf("after the final fragment: %d buffers, fragOp %d", n, done.conn.fragOp)
	}
	if got := r.log[len(r.log)-1]; got != `msg 1 "fragment"` {
		t.Fatalf("delivered %s", got)
	}

	failed := s.Open(r) // a new message inside the fragmented one is an error
	s.Feed(failed, clientFrame(byte(OpText), true, []byte("a")))
	s.Feed(failed, clientFrame(0x80|byte(OpText), true, []byte("b")))
	if n := frags(failed); n != 0 {
		t.Fatalf("after a protocol error: %d buffers", n)
	}

	gone := s.Open(r) // closed mid-message
	s.Feed(gone, clientFrame(byte(OpBinary), true, []byte("half")))
	s.e.connClosed(gone.conn, nil)
	if n := frags(gone); n != 0 {
		t.Fatalf("after the connection closed: %d buffers", n)
	}
}

// callCounter records how the write path called the socket.
type callCounter struct {
	*SimConn
	calls []int // iovecs per call: 1 for Write
	buf   bytes.Buffer
}

func (c *callCounter) Write(b []byte) (int, error) {
	c.calls = append(c.calls, 1)
	return c.buf.Write(b)
}

func (c *callCounter) Writev(bs [][]byte) (int, error) {
	c.calls = append(c.calls, len(bs))
	n := 0
	for _, b := range bs {
		m, _ := c.buf.Write(b)
		n += m
	}
	return n, nil
}

// greeter writes two messages as it opens, and a shared frame between two
// copies on its first message.
type greeter struct{ Echo }

func (greeter) OnOpen(c *Conn, _ *Request) {
	_ = c.WriteText([]byte("hello"))
	_ = c.WriteText([]byte("again"))
}

func (greeter) OnMessage(c *Conn, _ OpCode, _ []byte) {
	_ = c.WriteText([]byte("a"))
	f := NewTextFrame([]byte("shared"))
	_ = c.WriteFrame(f)
	f.Release()
	_ = c.WriteText([]byte("b"))
}

// Bytes copied for one connection one after the other leave as one iovec:
// the 101 and the handler's first two messages in one write(2); a shared
// frame between copies keeps them apart. Frames are still counted one by
// one.
func TestAdjacentCopiesOneIovec(t *testing.T) {
	s := NewSimulator(Options{})
	s.Handle("/ws", greeter{})
	sc := s.OpenRaw()
	out := &callCounter{SimConn: sc}
	sc.conn.sock = out
	before := s.Engine().Stats().FramesWritten
	s.Feed(sc, []byte(goodUpgrade))
	if len(out.calls) != 1 || out.calls[0] != 1 {
		t.Fatalf("handshake and two messages went out as %v (iovecs per call), want one write", out.calls)
	}
	head, rest, _ := bytes.Cut(out.buf.Bytes(), []byte("\r\n\r\n"))
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101")) || !bytes.Equal(rest, []byte("\x81\x05hello\x81\x05again")) {
		t.Fatalf("wrote %q", out.buf.Bytes())
	}
	if got := s.Engine().Stats().FramesWritten - before; got != 3 {
		t.Fatalf("frames counted %d, want 3 (the 101 and two messages)", got)
	}
	out.calls, out.buf = nil, bytes.Buffer{}
	s.Feed(sc, clientFrame(0x81, true, []byte("x")))
	if len(out.calls) != 1 || out.calls[0] != 3 {
		t.Fatalf("copy, shared, copy went out as %v, want one writev of 3", out.calls)
	}
	if !bytes.Equal(out.buf.Bytes(), []byte("\x81\x01a\x81\x06shared\x81\x01b")) {
		t.Fatalf("wrote %q", out.buf.Bytes())
	}
}

// A loop passes through Go's scheduler once yieldAfter has gone by since it
// last did: at an entry point, and every 64 connections of a long flush,
// so that a busy loop is never the goroutine sysmon takes a P from.
func TestLoopYields(t *testing.T) {
	s := NewSimulator(Options{Loops: 1})
	var now, step int64
	s.e.clock = func() int64 { now += step; return now }
	l := s.loops[0]
	small, large := "small", "large"
	for i := range 200 {
		c := s.Open(nopHandler{})
		if i < 10 {
			s.Subscribe(c, small)
		}
		s.Subscribe(c, large)
	}
	if l.yields != 0 {
		t.Fatalf("%d yields with the clock standing still", l.yields)
	}
	entry := func(at int64) uint64 {
		now = at
		y := l.yields
		l.enter()
		l.leave()
		return l.yields - y
	}
	if n := entry(yieldAfter - 1); n != 0 {
		t.Fatalf("yielded %d times before yieldAfter", n)
	}
	if n := entry(yieldAfter); n != 1 {
		t.Fatalf("yielded %d times at yieldAfter, want 1", n)
	}
	if n := entry(yieldAfter + yieldAfter/2); n != 0 {
		t.Fatalf("yielded %d times within yieldAfter of the last yield", n)
	}
	// Every clock reading now moves time on by yieldAfter, so every chance
	// to yield is taken: a flush to 200 connections has three more than one
	// to 10 (after the 64th, 128th and 192nd connection).
	step = yieldAfter
	publish := func(topic string) uint64 {
		y := l.yields
		f := NewTextFrame([]byte("x"))
		s.Publish(topic, f)
		f.Release()
		return l.yields - y
	}
	a, b := publish(small), publish(large)
	if a == 0 || b != a+3 {
		t.Fatalf("yields: %d publishing to 10, %d to 200; want 3 more for 200", a, b)
	}
}

// Idle loops (and the acceptor) park in Go's netpoller instead of waiting
// in epoll_wait, a system call that holds a P (third_party/gnet's patch): a
// goroutine in a system call counts as "not in Go". Not parallel: the
// count is the whole process's.
func TestIdleLoopsPark(t *testing.T) {
	sample := []metrics.Sample{{Name: "/sched/goroutines/not-in-go:goroutines"}}
	notInGo := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	before := notInGo()
	e := startEngine(t, Options{Loops: 4}, Echo{})
	// An echo first: the loop that served it must go back to waiting parked.
	c := dial(t, e)
	ctx := ctxT(t)
	if err := c.Write(ctx, websocket.MessageText, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 3*time.Second, func() error {
		if now := notInGo(); now > before {
			return fmt.Errorf("%d goroutines in system calls with 4 idle loops, %d before the engine started", now, before)
		}
		return nil
	})
}

// addrRecorder reports each opened connection's peer address.
type addrRecorder struct {
	nopHandler
	got chan string
}

func (h addrRecorder) OnOpen(c *Conn, _ *Request) { h.got <- c.RemoteAddr().String() }

// The peer address is decoded from accept4's result by third_party/gnet's
// patch (x/sys's decoder costs a getsockopt per accept): it must be the
// client's own address, port included, for IPv4 and IPv6 alike.
func TestRemoteAddr(t *testing.T) {
	for _, tc := range []struct{ listen, source string }{
		{"127.0.0.1:0", "127.0.0.7"},
		{"[::1]:0", "::1"},
	} {
		t.Run(tc.source, func(t *testing.T) {
			if ln, err := net.Listen("tcp", tc.listen); err != nil {
				t.Skipf("no %s on this host: %v", tc.listen, err)
			} else {
				_ = ln.Close()
			}
			h := addrRecorder{got: make(chan string, 1)}
			e := startEngineAt(t, Options{Addr: tc.listen, Loops: 1}, h)
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(tc.source)}, KeepAlive: -1, Timeout: 5 * time.Second}
			nc, err := d.Dial("tcp", e.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := nc.Write([]byte(goodUpgrade)); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-h.got:
				if want := nc.LocalAddr().String(); got != want {
					t.Fatalf("server saw the peer as %s, the client is %s", got, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no connection opened")
			}
		})
	}
}

// stallFirst holds its loop in the first OnOpen until release is closed, so
// that connections pile up in the listen queue meanwhile.
type stallFirst struct {
	nopHandler
	once    sync.Once
	stalled chan struct{}
	release chan struct{}
}

func (h *stallFirst) OnOpen(*Conn, *Request) {
	h.once.Do(func() {
		close(h.stalled)
		<-h.release
	})
}

// With ReusePort a loop accepts a queue of connections in bounded batches
// (third_party/gnet's patch; upstream takes one per wake-up): 200 queued
// behind a stalled loop, more than one batch, are all upgraded.
func TestReusePortAcceptQueue(t *testing.T) {
	t.Parallel()
	h := &stallFirst{stalled: make(chan struct{}), release: make(chan struct{})}
	e := startEngineAt(t, Options{Addr: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)), Loops: 1, ReusePort: true}, h)
	d := net.Dialer{KeepAlive: -1, Timeout: 5 * time.Second}
	open := func() net.Conn {
		nc, err := d.Dial("tcp", e.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nc.Close() })
		if _, err := nc.Write([]byte(goodUpgrade)); err != nil {
			t.Fatal(err)
		}
		return nc
	}
	open()
	<-h.stalled
	conns := make([]net.Conn, 200)
	for i := range conns {
		conns[i] = open() // the kernel completes the connect; the loop is stalled
	}
	close(h.release)
	for i, nc := range conns {
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(nc).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 101") {
			t.Fatalf("connection %d of %d queued: %q, %v", i, len(conns), line, err)
		}
	}
}

// ReusePort must not let a second server share a port in use, whether the
// first listens with SO_REUSEPORT (another meshfast) or without.
func TestReusePortRefusesPortInUse(t *testing.T) {
	t.Parallel()
	first := startEngineAt(t, Options{Addr: "127.0.0.1:0", Loops: 2, ReusePort: true}, nopHandler{})
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	for _, taken := range []net.Addr{first.Addr(), plain.Addr()} {
		e := New(Options{Addr: taken.String(), Loops: 2, ReusePort: true})
		e.Handle("/ws", nopHandler{})
		if err := e.Start(); err == nil || !errors.Is(err, unix.EADDRINUSE) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = e.Shutdown(ctx)
			cancel()
			t.Fatalf("second server with ReusePort on %s: %v, want EADDRINUSE", taken, err)
		}
	}
}
