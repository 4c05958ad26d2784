//go:build !race

package engine

import "testing"

// The delivery path allocates nothing: publishing a frame to many
// subscribers, and reading and answering a message.
func TestBroadcastAllocatesNothing(t *testing.T) {
	s := NewSimulator(Options{Loops: 2})
	for i := 0; i < 1000; i++ {
		s.Subscribe(s.Open(nopHandler{}), "room")
	}
	payload := make([]byte, 128)
	publish := func() {
		f := NewTextFrame(payload)
		s.Publish("room", f)
		f.Release()
	}
	publish() // warm the pools and arenas
	if n := testing.AllocsPerRun(100, publish); n != 0 {
		t.Fatalf("broadcast to 1000 allocates %.1f times", n)
	}
}

func TestEchoPathAllocatesNothing(t *testing.T) {
	s := NewSimulator(Options{})
	sc := s.Open(Echo{})
	frame := clientFrame(0x81, true, make([]byte, 128))
	feed := func() { s.Feed(sc, frame) }
	feed()
	if n := testing.AllocsPerRun(100, feed); n != 0 {
		t.Fatalf("read+echo allocates %.1f times", n)
	}
}

// QueryBytes is the allocation-free way to read a query parameter.
func TestQueryBytesAllocatesNothing(t *testing.T) {
	var r Request
	if err := parseRequestHead([]byte("GET /ws?room=a&token=abc%20def HTTP/1.1\r\nHost: x\r\n\r\n"), &r); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = r.QueryBytes("token") }); n != 0 {
		t.Fatalf("QueryBytes allocates %.1f times", n)
	}
}

// An SSE event published to many streams is encoded once and costs no
// allocation per stream, chunked or not.
func TestSSEBroadcastAllocatesNothing(t *testing.T) {
	s := NewSimulator(Options{Loops: 2})
	e := s.Engine()
	sse, err := e.NewSSE("/events", topicOpener{"feed"}, SSEOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.HandleHTTP("/events", func(w *Response, r *Request) { w.OpenSSE(sse) })
	var streams []*SimConn
	for i := 0; i < 1000; i++ {
		proto := "HTTP/1.1"
		if i%2 == 0 {
			proto = "HTTP/1.0"
		}
		sc := s.OpenRaw()
		if s.Feed(sc, []byte("GET /events "+proto+"\r\nHost: x\r\n\r\n")) || !sc.Conn().IsStream() {
			t.Fatal("stream did not open")
		}
		streams = append(streams, sc)
	}
	data := make([]byte, 128)
	publish := func() {
		f := NewTextFrame(data)
		b, _ := AppendSSEEvent(f.StreamBuf(), "id-1", "update", data)
		f.SetStreamBytes(b)
		s.Publish("feed", f)
		f.Release()
	}
	publish()
	before := streams[0].Bytes() + streams[1].Bytes()
	if n := testing.AllocsPerRun(100, publish); n != 0 {
		t.Fatalf("an SSE broadcast to 1000 streams allocates %.1f times", n)
	}
	if streams[0].Bytes()+streams[1].Bytes() == before {
		t.Fatal("the streams were not written")
	}
}
