package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/meshfast/meshfast/internal/ssetest"
	"github.com/meshfast/meshfast/internal/testutil"
)

// sseHandler subscribes each stream to "feed" and counts opens and closes.
type sseHandler struct {
	opened, closed atomic.Int64
	conns          chan *Conn
}

func (h *sseHandler) OnOpen(c *Conn, r *Request) {
	h.opened.Add(1)
	c.loop.e.Subscribe(c, "feed")
	if h.conns != nil {
		h.conns <- c
	}
}
func (h *sseHandler) OnMessage(*Conn, OpCode, []byte) {}
func (h *sseHandler) OnClose(*Conn, CloseInfo)        { (*h).closed.Add(1) }

// startSSE runs an engine with an SSE endpoint on /events (GET only,
// refusing what does not accept text/event-stream with 406).
func startSSE(t *testing.T, o Options, so SSEOptions) (*Engine, *SSE, *sseHandler) {
	t.Helper()
	o.Addr = "127.0.0.1:0"
	if o.Loops == 0 {
		o.Loops = 2
	}
	e := New(o)
	h := &sseHandler{conns: make(chan *Conn, 64)}
	s, err := e.NewSSE("/events", h, so)
	if err != nil {
		t.Fatal(err)
	}
	e.HandleHTTP("/events", func(w *Response, r *Request) {
		if !AcceptsEventStream(r) {
			w.Status, w.Body = 406, []byte("text/event-stream only\n")
			return
		}
		w.OpenSSE(s)
	})
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(ctxT(t)) })
	return e, s, h
}

func sseDial(t *testing.T, e *Engine, proto string, headers ...string) *ssetest.Client {
	t.Helper()
	c, err := ssetest.Dial(e.Addr().String(), "/events", proto, headers...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// publishEvent publishes one SSE event to "feed" (WebSocket variant too).
func publishEvent(t *testing.T, e *Engine, id, event, data string) {
	t.Helper()
	f := NewTextFrame([]byte(data))
	b, err := AppendSSEEvent(f.StreamBuf(), id, event, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	f.SetStreamBytes(b)
	e.Publish("feed", f, nil)
	f.Release()
}

const sseHead11 = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: text/event-stream\r\n" +
	"Cache-Control: no-cache\r\n" +
	"X-Accel-Buffering: no\r\n" +
	"Connection: keep-alive\r\n" +
	"Transfer-Encoding: chunked\r\n\r\n"

// waitStreams waits until n streams are open (OnOpen ran).
func waitStreams(t *testing.T, h *sseHandler, n int64) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := h.opened.Load() - h.closed.Load(); got != n {
			return fmt.Errorf("%d streams open, want %d", got, n)
		}
		return nil
	})
}

func TestSSEHeadAndChunksExactBytes(t *testing.T) {
	t.Parallel()
	e, _, h := startSSE(t, Options{}, SSEOptions{})
	c := sseDial(t, e, "", "Accept: text/event-stream")
	if st, err := c.ReadHead(5 * time.Second); err != nil || st != 200 {
		t.Fatalf("head: %d %v", st, err)
	}
	if c.Head != sseHead11 {
		t.Fatalf("head\n%q\nwant\n%q", c.Head, sseHead11)
	}
	waitStreams(t, h, 1)
	publishEvent(t, e, "7", "note", "one\ntwo")
	want := "d\r\nretry: 3000\n\n\r\n" + "27\r\nid: 7\nevent: note\ndata: one\ndata: two\n\n\r\n"
	for c.Raw.Len() < len(want) {
		if _, err := c.ReadBody(5 * time.Second); err != nil {
			t.Fatalf("body %q: %v", c.Raw.String(), err)
		}
	}
	if got := c.Raw.String(); got != want {
		t.Fatalf("body\n%q\nwant\n%q", got, want)
	}
	if c.Parser.Retry != 3000 {
		t.Fatalf("retry hint %d", c.Parser.Retry)
	}
}

// An HTTP/1.0 client knows no chunks: it gets the bare bytes, told that the
// end of the connection ends the body, from the same published frame.
func TestSSEHTTP10GetsNoChunks(t *testing.T) {
	t.Parallel()
	e, _, h := startSSE(t, Options{}, SSEOptions{Retry: 1500 * time.Millisecond})
	c10 := sseDial(t, e, "HTTP/1.0")
	c11 := sseDial(t, e, "")
	for _, c := range []*ssetest.Client{c10, c11} {
		if st, err := c.ReadHead(5 * time.Second); err != nil || st != 200 {
			t.Fatalf("head: %d %v", st, err)
		}
	}
	want := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n" +
		"X-Accel-Buffering: no\r\nConnection: close\r\n\r\n"
	if c10.Head != want || c10.Chunked {
		t.Fatalf("HTTP/1.0 head\n%q\nwant\n%q", c10.Head, want)
	}
	waitStreams(t, h, 2)
	publishEvent(t, e, "", "", "x")
	body := "retry: 1500\n\ndata: x\n\n"
	for c10.Raw.Len() < len(body) {
		if _, err := c10.ReadBody(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if c10.Raw.String() != body {
		t.Fatalf("HTTP/1.0 body %q, want %q", c10.Raw.String(), body)
	}
	if ev, err := c11.Next(5 * time.Second); err != nil || ev.Data != "x" {
		t.Fatalf("HTTP/1.1 stream: %+v %v", ev, err)
	}
}

// Every line end (CR, LF, CRLF) in data starts a new data line, so data
// can never start a field of its own; ids and event names that would are
// refused.
func TestSSEMultilineDataAndInjection(t *testing.T) {
	t.Parallel()
	e, _, h := startSSE(t, Options{}, SSEOptions{Retry: -1})
	c := sseDial(t, e, "")
	if st, err := c.ReadHead(5 * time.Second); err != nil || st != 200 {
		t.Fatalf("head: %d %v", st, err)
	}
	waitStreams(t, h, 1)
	cases := []struct{ data, wire, got string }{
		{"a\nb", "data: a\ndata: b\n\n", "a\nb"},
		{"a\r\nb", "data: a\ndata: b\n\n", "a\nb"},
		{"a\rb", "data: a\ndata: b\n\n", "a\nb"},
		{"a\n\nid: evil\nevent: evil\nretry: 1\n\ndata: x", "data: a\ndata: \ndata: id: evil\ndata: event: evil\ndata: retry: 1\ndata: \ndata: data: x\n\n",
			"a\n\nid: evil\nevent: evil\nretry: 1\n\ndata: x"},
		{"\r\r\n\n", "data: \ndata: \ndata: \ndata: \n\n", "\n\n\n"},
		{"", "data: \n\n", ""},
		{" lead", "data:  lead\n\n", " lead"},
	}
	var wire strings.Builder
	for _, tc := range cases {
		publishEvent(t, e, "", "", tc.data)
		wire.WriteString(tc.wire)
	}
	for i, tc := range cases {
		ev, err := c.Next(5 * time.Second)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if ev.Type != "message" || ev.Data != tc.got || ev.LastEventID != "" {
			t.Fatalf("case %d: %+v, want data %q", i, ev, tc.got)
		}
	}
	var body bytes.Buffer
	p := c.Raw.Bytes()
	for len(p) > 0 { // strip the chunk framing: what a client's HTTP layer hands up
		line, rest, _ := bytes.Cut(p, []byte("\r\n"))
		var n int
		fmt.Sscanf(string(line), "%x", &n)
		body.Write(rest[:n])
		p = rest[n+2:]
	}
	if body.String() != wire.String() {
		t.Fatalf("wire\n%q\nwant\n%q", body.String(), wire.String())
	}
	if c.Parser.Fields["id"] != 0 || c.Parser.Fields["event"] != 0 || c.Parser.Fields["retry"] != 0 {
		t.Fatalf("a field was injected: %v", c.Parser.Fields)
	}
	for _, bad := range []struct{ id, event string }{
		{"a\nb", ""}, {"a\rb", ""}, {"a\x00b", ""}, {"", "x\ny"}, {"", "x\ry"},
	} {
		dst := []byte("kept")
		out, err := AppendSSEEvent(dst, bad.id, bad.event, []byte("d"))
		if !errors.Is(err, ErrInvalidSSE) || string(out) != "kept" {
			t.Errorf("AppendSSEEvent(%q, %q) = %q, %v; want refused, dst unchanged", bad.id, bad.event, out, err)
		}
	}
}

func TestSSEHeartbeat(t *testing.T) {
	t.Parallel()
	e, _, h := startSSE(t, Options{TickInterval: 10 * time.Millisecond, SweepPeriod: 10 * time.Millisecond},
		SSEOptions{Heartbeat: 50 * time.Millisecond, Retry: -1})
	c := sseDial(t, e, "")
	if st, err := c.ReadHead(5 * time.Second); err != nil || st != 200 {
		t.Fatalf("head: %d %v", st, err)
	}
	waitStreams(t, h, 1)
	start := time.Now()
	for i := 0; i < 3; i++ {
		b, err := c.ReadBody(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != ":\n\n" {
			t.Fatalf("heartbeat chunk %q", b)
		}
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("3 heartbeats in %v: more often than every 50 ms", d)
	}
	if !strings.HasPrefix(c.Raw.String(), "3\r\n:\n\n\r\n") || c.Parser.Fields[":"] != 3 {
		t.Fatalf("raw %q", c.Raw.String())
	}
	if ev, err := c.Next(10 * time.Millisecond); err == nil {
		t.Fatalf("a heartbeat dispatched %v", ev)
	}
}

func TestSSEMaxStreams(t *testing.T) {
	t.Parallel()
	e, s, h := startSSE(t, Options{}, SSEOptions{MaxStreams: 2})
	a, b := sseDial(t, e, ""), sseDial(t, e, "")
	for _, c := range []*ssetest.Client{a, b} {
		if st, err := c.ReadHead(5 * time.Second); err != nil || st != 200 {
			t.Fatalf("head: %d %v", st, err)
		}
	}
	waitStreams(t, h, 2)
	third := sseDial(t, e, "")
	if st, err := third.ReadHead(5 * time.Second); err != nil || st != 503 {
		t.Fatalf("third stream: %d %v, want 503", st, err)
	}
	if !strings.Contains(third.Head, "\r\nRetry-After: 1\r\n") || !strings.Contains(third.Head, "\r\nConnection: close\r\n") {
		t.Fatalf("503 head %q", third.Head)
	}
	if s.Streams() != 2 {
		t.Fatalf("Streams() = %d", s.Streams())
	}
	a.Close()
	waitStreams(t, h, 1)
	testutil.Eventually(t, 5*time.Second, func() error {
		c, err := ssetest.Dial(e.Addr().String(), "/events", "")
		if err != nil {
			return err
		}
		defer c.Close()
		if st, err := c.ReadHead(5 * time.Second); err != nil || st != 200 {
			return fmt.Errorf("after one left: %d %v", st, err)
		}
		return nil
	})
}

func TestSSENotAcceptable(t *testing.T) {
	t.Parallel()
	e, _, _ := startSSE(t, Options{}, SSEOptions{})
	c := sseDial(t, e, "", "Accept: application/json")
	if st, err := c.ReadHead(5 * time.Second); err != nil || st != 406 {
		t.Fatalf("%d %v, want 406", st, err)
	}
}

func TestAcceptsEventStream(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                                  true,
		"text/event-stream":                 true,
		"*/*":                               true,
		"text/*":                            true,
		"TEXT/Event-Stream; charset=utf-8":  true,
		"application/json":                  false,
		"application/json, text/html;q=0.9": false,
		"text/event-stream;q=0":             false,
		"text/event-stream; q=0.000":        false,
		"text/event-stream; q=0.001":        true,
		"application/json, */*;q=0.1":       true,
	} {
		head := "GET / HTTP/1.1\r\nHost: x\r\n"
		if accept != "" {
			head += "Accept: " + accept + "\r\n"
		}
		var r Request
		if err := parseRequestHead([]byte(head+"\r\n"), &r); err != nil {
			t.Fatal(err)
		}
		if got := AcceptsEventStream(&r); got != want {
			t.Errorf("Accept %q: %v, want %v", accept, got, want)
		}
	}
}

func TestSSEHeadRequest(t *testing.T) {
	t.Parallel()
	e, _, h := startSSE(t, Options{}, SSEOptions{})
	nc, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, _ = nc.Write([]byte("HEAD /events HTTP/1.1\r\nHost: x\r\n\r\n"))
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(nc)
	want := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n"
	if string(got) != want {
		t.Fatalf("HEAD answer\n%q\nwant\n%q", got, want)
	}
	if h.opened.Load() != 0 {
		t.Fatal("a HEAD request opened a stream")
	}
}

// A stream the server ends gets the last chunk, then the connection closes.
func TestSSEServerCloseEndsBody(t *testing.T) {
	t.Parallel()
	e, _, h := startSSE(t, Options{}, SSEOptions{Retry: -1})
	c := sseDial(t, e, "")
	if st, err := c.ReadHead(5 * time.Second); err != nil || st != 200 {
		t.Fatalf("head: %d %v", st, err)
	}
	sc := <-h.conns
	sc.CloseAsync(CloseNormal, "")
	if _, err := c.ReadBody(5 * time.Second); !errors.Is(err, ssetest.ErrEnded) {
		t.Fatalf("after the server closed: %v (raw %q)", err, c.Raw.String())
	}
	if c.Raw.String() != "0\r\n\r\n" {
		t.Fatalf("raw %q", c.Raw.String())
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after the last chunk: %d %v, want EOF", n, err)
	}
}

// A reader that stops reading is closed like a slow WebSocket consumer, and
// one that goes away leaves nothing behind on its loop.
func TestSSESlowReaderClosedAndGoneCleanedUp(t *testing.T) {
	t.Parallel()
	e, s, h := startSSE(t, Options{MaxPendingBytes: 64 << 10}, SSEOptions{Retry: -1, MaxStreams: 100})
	// A small receive window, so that the kernel holds little for it.
	d := net.Dialer{KeepAlive: -1, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	slow, err := d.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	_, _ = slow.Write([]byte("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"))
	readers := make([]*ssetest.Client, 5)
	for i := range readers {
		readers[i] = sseDial(t, e, "")
		if st, err := readers[i].ReadHead(5 * time.Second); err != nil || st != 200 {
			t.Fatalf("head: %d %v", st, err)
		}
	}
	waitStreams(t, h, 6)
	// Readers that keep up: each counts the events it has read, and the
	// publisher waits for all of them before the next, so none ever owes
	// more than one event whatever the host's speed.
	read := make([]atomic.Int64, len(readers))
	done := make(chan struct{})
	defer close(done)
	for i, c := range readers {
		go func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := c.Next(10 * time.Second); err != nil {
					return
				}
				read[i].Add(1)
			}
		}()
	}
	data := strings.Repeat("x", 16<<10)
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; e.Stats().SlowConsumers == 0; i++ {
		if i > 20000 || time.Now().After(deadline) {
			t.Fatalf("the stream that stopped reading was never closed (%d publishes)", i)
		}
		publishEvent(t, e, "", "", data)
		testutil.Eventually(t, 10*time.Second, func() error {
			for k := range read {
				if n := read[k].Load(); n <= int64(i) {
					return fmt.Errorf("reader %d has read %d of %d", k, n, i+1)
				}
			}
			return nil
		})
	}
	if got := e.Stats().Closed; got[ReasonSlowConsumer.String()] != 1 || len(got) != 1 {
		t.Fatalf("closed: %v, want the slow stream alone", got)
	}
	waitStreams(t, h, 5)
	if e.ClosedBy(ReasonSlowConsumer) != 1 {
		t.Fatalf("closed as slow consumers: %d", e.ClosedBy(ReasonSlowConsumer))
	}
	for _, c := range readers {
		c.Close()
	}
	waitStreams(t, h, 0)
	testutil.Eventually(t, 5*time.Second, func() error {
		if st := e.Stats(); st.Connections != 0 || st.TCP != 0 || s.Streams() != 0 {
			return fmt.Errorf("%d open, %d tcp, %d streams counted", st.Connections, st.TCP, s.Streams())
		}
		return nil
	})
	loops := *e.loops.Load()
	type leftovers struct{ loop, topics, conns, closeErrs, frags, over int }
	left := make(chan leftovers, len(loops))
	e.ForEachLoop(func(i int) {
		l := loops[i]
		left <- leftovers{i, len(l.topics), len(l.conns), len(l.closeErrs), len(l.frags), len(l.over)}
	})
	for range loops {
		if got := <-left; got != (leftovers{loop: got.loop}) {
			t.Errorf("left behind on a loop: %+v", got)
		}
	}
	if mask := e.topicIdx.get("feed"); mask != 0 {
		t.Errorf("topic index still lists loops %b for feed", mask)
	}
	for len(h.conns) > 0 {
		if c := <-h.conns; e.Lookup(c.ID()) != nil {
			t.Errorf("the registry still holds stream %d", c.ID())
		}
	}
}

// A frame's stream variant is encoded once: the HTTP/1.0 bytes are the
// HTTP/1.1 chunk's, without its head and tail, in the same buffer.
func TestSSEStreamVariantSharedByBothFramings(t *testing.T) {
	f := AcquireFrame()
	defer f.Release()
	b, _ := AppendSSEEvent(f.StreamBuf(), "", "", []byte("hello"))
	f.SetStreamBytes(b)
	if unsafe.SliceData(b) != unsafe.SliceData(f.bytesFor(kindStreamPlain)) {
		t.Fatal("the stream variant built on StreamBuf was copied")
	}
	chunked, plain := f.bytesFor(kindStream), f.bytesFor(kindStreamPlain)
	if string(chunked) != "d\r\ndata: hello\n\n\r\n" || string(plain) != "data: hello\n\n" {
		t.Fatalf("chunked %q plain %q", chunked, plain)
	}
	if &chunked[3] != &plain[0] {
		t.Fatal("the two framings do not share one buffer")
	}
	f.SetStream(nil) // empty: streams skip the frame (an empty chunk would end them)
	if f.bytesFor(kindStream) != nil || f.bytesFor(kindStreamPlain) != nil {
		t.Fatal("an empty stream variant is sent")
	}
}

func TestNewSSERefusesBadOptions(t *testing.T) {
	e := New(Options{})
	if _, err := e.NewSSE("/x", &sseHandler{}, SSEOptions{MaxStreams: -1}); !errors.Is(err, ErrInvalidSSE) {
		t.Fatalf("negative MaxStreams: %v", err)
	}
	if _, err := e.NewSSE("/x", nil, SSEOptions{}); !errors.Is(err, ErrInvalidSSE) {
		t.Fatalf("nil handler: %v", err)
	}
}

func TestWebSocketRouteLimit(t *testing.T) {
	t.Parallel()
	e := New(Options{Addr: "127.0.0.1:0", Loops: 2})
	e.Handle("/ws", Echo{})
	if err := e.LimitConnections("/ws", 1); err != nil {
		t.Fatal(err)
	}
	if err := e.LimitConnections("/none", 1); !errors.Is(err, ErrInvalidRoute) {
		t.Fatalf("limit on a missing route: %v", err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(ctxT(t)) })
	first := dial(t, e)
	_ = first
	head, _ := rawHTTP(t, e, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if status(head) != 503 || !strings.Contains(head, "Retry-After: 1") {
		t.Fatalf("second WebSocket past the cap: %q", head)
	}
	if n := e.RouteConnections("/ws"); n != 1 {
		t.Fatalf("RouteConnections = %d", n)
	}
	first.CloseNow()
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := e.RouteConnections("/ws"); n != 0 {
			return fmt.Errorf("%d counted", n)
		}
		return nil
	})
}

// No input makes AppendSSEEvent write a field it was not asked for: what a
// client parses back is exactly one event with the id, the event name and
// the data (line ends made LF), or the input is refused and nothing is
// written.
func FuzzAppendSSEEvent(f *testing.F) {
	for _, s := range [][3]string{
		{"1", "note", "hello"}, {"", "", ""}, {"a\nb", "", ""}, {"", "x\ry", ""}, {"i\x00d", "", "x"},
		{"", "", "a\r\nb\rc\nd"}, {"", "", "\n\nid: 2\nretry: 5\n\nevent: x\ndata: y"}, {" ", " ", " "},
		{"", "", "\r"}, {"", "", ":comment\n:"}, {"", "", "\xEF\xBB\xBFdata"},
	} {
		f.Add(s[0], s[1], []byte(s[2]))
	}
	f.Fuzz(func(t *testing.T, id, event string, data []byte) {
		// A stream starts with the retry hint: an event is never its first
		// bytes, where a client would drop a BOM.
		prefix := AppendSSERetry(nil, time.Second)
		out, err := AppendSSEEvent(prefix, id, event, data)
		bad := strings.ContainsAny(id, "\x00\r\n") || strings.ContainsAny(event, "\r\n")
		if bad != (err != nil) {
			t.Fatalf("id %q event %q: err %v", id, event, err)
		}
		if err != nil {
			if !bytes.Equal(out, prefix) {
				t.Fatalf("refused, but wrote %q", out[len(prefix):])
			}
			return
		}
		var p ssetest.Parser
		evs := p.Feed(out)
		if len(evs) != 1 {
			t.Fatalf("%d events from %q", len(evs), out)
		}
		want := ssetest.Event{Type: event, Data: normalizeLineEnds(string(data)), LastEventID: id}
		if want.Type == "" {
			want.Type = "message"
		}
		if evs[0] != want {
			t.Fatalf("parsed %+v, want %+v (wire %q)", evs[0], want, out)
		}
		for field, n := range p.Fields {
			switch {
			case field == "retry" && n == 1, field == "data":
			case field == "id" && id != "" && n == 1, field == "event" && event != "" && n == 1:
			default:
				t.Fatalf("field %q seen %d times in %q", field, n, out)
			}
		}
	})
}

func normalizeLineEnds(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// A stream endpoint that names a handler in PublishAllOf is reached by
// that handler's PublishAll, with the frame's stream variant; other
// handlers' are not.
func TestSSEPublishAllOf(t *testing.T) {
	t.Parallel()
	e := New(Options{Addr: "127.0.0.1:0", Loops: 2})
	ws := Echo{}
	e.Handle("/ws", ws)
	h := &sseHandler{}
	s, err := e.NewSSE("/events", h, SSEOptions{Retry: -1, PublishAllOf: ws})
	if err != nil {
		t.Fatal(err)
	}
	e.HandleHTTP("/events", func(w *Response, r *Request) { w.OpenSSE(s) })
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(ctxT(t)) })
	c := sseDial(t, e, "")
	if st, err := c.ReadHead(5 * time.Second); err != nil || st != 200 {
		t.Fatalf("head: %d %v", st, err)
	}
	waitStreams(t, h, 1)
	f := NewTextFrame([]byte("x"))
	f.SetStream([]byte("data: not for you\n\n"))
	e.PublishAll(f, nil, topicOpener{}) // another handler: not reached
	f.Release()
	f = NewTextFrame([]byte("x"))
	f.SetStream([]byte("data: to every Echo connection\n\n"))
	e.PublishAll(f, nil, ws)
	f.Release()
	if ev, err := c.Next(5 * time.Second); err != nil || ev.Data != "to every Echo connection" {
		t.Fatalf("got %+v %v", ev, err)
	}
}

// topicOpener subscribes each connection to its topic when it opens.
type topicOpener struct{ topic string }

func (h topicOpener) OnOpen(c *Conn, _ *Request)      { c.loop.subscribe(c, h.topic) }
func (h topicOpener) OnMessage(*Conn, OpCode, []byte) {}
func (h topicOpener) OnClose(*Conn, CloseInfo)        {}
