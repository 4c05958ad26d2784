package engine

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// recorder is a Handler that logs what it sees, for comparing runs.
type recorder struct {
	log []string
}

func (r *recorder) OnOpen(*Conn, *Request) { r.log = append(r.log, "open") }
func (r *recorder) OnMessage(_ *Conn, op OpCode, p []byte) {
	r.log = append(r.log, fmt.Sprintf("msg %d %q", op, p))
}
func (r *recorder) OnClose(_ *Conn, info CloseInfo) {
	r.log = append(r.log, fmt.Sprintf("close %v %d", info.Reason, info.Code))
}

// runFrames feeds data to a fresh open connection in the given chunks and
// returns what the handler was given and every byte written back. Whether
// the connection is already closed may differ (a later chunk can hold the
// peer's close reply), so OnClose is left out.
func runFrames(data []byte, cuts ...int) string {
	s := NewSimulator(Options{MaxMessageSize: 4096})
	r := &recorder{}
	sc := s.Open(r)
	out := &captureConn{SimConn: sc}
	sc.conn.sock = out
	prev := 0
	for _, cut := range append(cuts, len(data)) {
		if cut < prev || cut > len(data) {
			continue
		}
		if s.Feed(sc, data[prev:cut]) {
			break
		}
		prev = cut
	}
	var msgs []string
	for _, m := range r.log {
		if !strings.HasPrefix(m, "close") && m != "open" {
			msgs = append(msgs, m)
		}
	}
	return fmt.Sprintf("%v out=%x", msgs, out.buf.Bytes())
}

func FuzzFrames(f *testing.F) {
	f.Add(clientFrame(0x81, true, []byte("hello")), 3)
	f.Add(append(clientFrame(0x01, true, []byte("ab")), clientFrame(0x80, true, []byte("cd"))...), 5)
	f.Add(append(clientFrame(0x89, true, []byte("p")), clientFrame(0x82, true, make([]byte, 300))...), 1)
	f.Add(clientFrame(0x88, true, []byte{3, 232, 'o', 'k'}), 2)
	f.Add(clientFrame(0x81, false, []byte("x")), 1)
	f.Add(clientFrame(0x81, true, []byte{0xff}), 0)
	f.Add([]byte{0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4}, 7)
	f.Add(clientFrame(0x82, true, make([]byte, 70000)), 9)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		whole := runFrames(data)
		if cut < 0 {
			cut = -cut
		}
		cut %= len(data) + 1
		split := runFrames(data, cut)
		if whole != split {
			t.Fatalf("split at %d changed the outcome:\nwhole %v\nsplit %v", cut, whole, split)
		}
	})
}

func TestFramesEverySplit(t *testing.T) {
	var stream []byte
	stream = append(stream, clientFrame(0x01, true, []byte("frag"))...)
	stream = append(stream, clientFrame(0x89, true, []byte("ping"))...)
	stream = append(stream, clientFrame(0x80, true, []byte("ment"))...)
	stream = append(stream, clientFrame(0x82, true, make([]byte, 200))...)
	stream = append(stream, clientFrame(0x81, true, []byte("tail ✓"))...)
	stream = append(stream, clientFrame(0x88, true, []byte{3, 232})...)
	whole := runFrames(stream)
	want := fmt.Sprintf("%v out=%x", []string{
		`msg 1 "fragment"`,
		fmt.Sprintf("msg 2 %q", make([]byte, 200)),
		`msg 1 "tail ✓"`,
	}, append([]byte{0x8a, 4, 'p', 'i', 'n', 'g'}, 0x88, 2, 3, 232))
	if whole != want {
		t.Fatalf("got %v\nwant %v", whole, want)
	}
	for cut := 0; cut <= len(stream); cut++ {
		for cut2 := cut; cut2 <= len(stream); cut2 += 7 {
			got := runFrames(stream, cut, cut2)
			if got != want {
				t.Fatalf("split at %d,%d: %v", cut, cut2, got)
			}
		}
	}
}

func TestParseFrameHeaderTable(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		ok   bool
		err  error
		op   OpCode
		size int
		n    int64
	}{
		{[]byte{0x81}, false, nil, 0, 0, 0},
		{[]byte{0x81, 0x05}, true, nil, OpText, 2, 5},
		{[]byte{0x81, 0x85, 1, 2, 3}, false, nil, 0, 0, 0},
		{[]byte{0x81, 0x85, 1, 2, 3, 4}, true, nil, OpText, 6, 5},
		{[]byte{0x82, 0x7e, 0x00}, false, nil, 0, 0, 0},
		{[]byte{0x82, 0x7e, 0x00, 0x7e}, true, nil, OpBinary, 4, 126},
		{[]byte{0x82, 0x7e, 0x00, 0x05}, false, errNonMinimalLen, 0, 0, 0},
		{[]byte{0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}, true, nil, OpBinary, 10, 65536},
		{[]byte{0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0}, false, errTooBig, 0, 0, 0},
		{[]byte{0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0, 9}, false, errNonMinimalLen, 0, 0, 0},
	} {
		h, ok, err := parseFrameHeader(tc.in)
		if ok != tc.ok || err != tc.err {
			t.Fatalf("%x: ok=%v err=%v", tc.in, ok, err)
		}
		if ok && (h.op != tc.op || h.size != tc.size || h.length != tc.n) {
			t.Fatalf("%x: got %+v", tc.in, h)
		}
	}
}

func FuzzFrameHeader(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 1, 2, 3, 4})
	f.Add([]byte{0x82, 0xfe, 0x01, 0x00, 1, 2, 3, 4})
	f.Add([]byte{0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok, err := parseFrameHeader(b)
		if ok && (err != nil || h.size > len(b) || h.size > maxHeaderSize || h.length < 0) {
			t.Fatalf("bad header %+v from %x", h, b)
		}
		if ok {
			// the header we would write for it parses back to the same length
			enc := appendFrameHeader(nil, h.op, h.fin, int(h.length))
			h2, ok2, err2 := parseFrameHeader(enc)
			if !ok2 || err2 != nil || h2.length != h.length || h2.op != h.op || h2.fin != h.fin {
				t.Fatalf("round trip of %+v: %+v %v %v", h, h2, ok2, err2)
			}
		}
	})
}

// runHandshake feeds a request head split at cut and reports the outcome:
// the response status line and whether the connection was opened.
func runHandshake(data []byte, cut int) string {
	s := NewSimulator(Options{MaxHeaderBytes: 1024})
	r := &recorder{}
	s.Handle("/ws", r)
	s.Engine().HandleHTTP("/health", s.Engine().HealthHandler(nil))
	s.Engine().HandleHTTPMethods("/echo", func(w *Response, r *Request) { w.Body = r.Body }, "POST")
	sc := s.OpenRaw()
	out := &captureConn{SimConn: sc}
	sc.conn.sock = out
	closed := false
	if cut > 0 && cut < len(data) {
		closed = s.Feed(sc, data[:cut])
		data = data[cut:]
	}
	if !closed {
		closed = s.Feed(sc, data)
	}
	status, _, _ := bytes.Cut(out.buf.Bytes(), []byte("\r\n"))
	_, body, _ := bytes.Cut(out.buf.Bytes(), []byte("\r\n\r\n"))
	return fmt.Sprintf("%s body=%q open=%v closed=%v log=%v", status, body, sc.conn.state == stateOpen, closed, r.log)
}

type captureConn struct {
	*SimConn
	buf bytes.Buffer
}

func (c *captureConn) Write(b []byte) (int, error) { return c.buf.Write(b) }
func (c *captureConn) Writev(bs [][]byte) (int, error) {
	n := 0
	for _, b := range bs {
		m, _ := c.buf.Write(b)
		n += m
	}
	return n, nil
}

const goodUpgrade = "GET /ws?token=a%20b HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

func TestHandshakeEverySplit(t *testing.T) {
	for _, req := range []string{
		goodUpgrade,
		"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"garbage\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world",
		"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /health HTTP/1.1\nHost: x\n\n",
		"GET /health HTTP/1.1\r\nHost: x\x00\r\n\r\n",
	} {
		want := runHandshake([]byte(req), 0)
		for cut := 1; cut < len(req); cut++ {
			if got := runHandshake([]byte(req), cut); got != want {
				t.Fatalf("%q split at %d:\n got %s\nwant %s", req, cut, got, want)
			}
		}
		t.Log(want)
	}
	if got := runHandshake([]byte(goodUpgrade), 0); !bytes.HasPrefix([]byte(got), []byte("HTTP/1.1 101")) || !bytes.Contains([]byte(got), []byte("open=true")) {
		t.Fatalf("upgrade failed: %s", got)
	}
}

func FuzzHandshake(f *testing.F) {
	f.Add([]byte(goodUpgrade), 10)
	f.Add([]byte("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"), 3)
	f.Add([]byte("GET / HTTP/1.0\r\n\r\n"), 1)
	f.Add([]byte("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Version: 8\r\n\r\n"), 20)
	f.Add([]byte("POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), 30)
	f.Add([]byte("GET /health HTTP/1.1\nHost: x\n\n"), 5)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		want := runHandshake(data, 0)
		if cut < 0 {
			cut = -cut
		}
		cut %= len(data) + 1
		if got := runHandshake(data, cut); got != want {
			t.Fatalf("split at %d changed the outcome:\n got %s\nwant %s", cut, got, want)
		}
	})
}

// A high publish rate puts several broadcasts in one loop batch, with
// other tasks (command replies) between them: every subscriber must still
// get everything queued for it in the pass in one write, in order.
func TestInterleavedBroadcastsLeaveInOneWrite(t *testing.T) {
	s := NewSimulator(Options{Loops: 1})
	var subs []*SimConn
	for i := 0; i < 3*flushChunk; i++ {
		sc := s.Open(nopHandler{})
		s.Subscribe(sc, "room")
		subs = append(subs, sc)
	}
	publisher := subs[0].Conn()
	l := s.loops[0]
	var batch []task
	for i := 0; i < 10; i++ {
		batch = append(batch,
			task{op: opPublish, topic: "room", frame: NewTextFrame([]byte(fmt.Sprintf("m%d", i)))},
			task{op: opSend, conn: publisher, frame: NewTextFrame([]byte("reply"))})
	}
	l.mu.Lock()
	l.inbox = append(l.inbox, batch...)
	l.mu.Unlock()
	before := make([]uint64, len(subs))
	for i, sc := range subs {
		before[i] = sc.Writes()
	}
	_ = l.Run(t.Context())
	for i, sc := range subs {
		if w := sc.Writes() - before[i]; w != 1 {
			t.Fatalf("subscriber %d: %d writes for 10 frames", i, w)
		}
	}
	if got, want := subs[1].Bytes(), uint64(10*(2+2)); got < want {
		t.Fatalf("subscriber wrote %d bytes, want at least %d", got, want)
	}
}
