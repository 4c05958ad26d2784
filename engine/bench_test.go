package engine

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"testing"
)

func BenchmarkParseFrameHeader(b *testing.B) {
	hdr := clientFrame(0x81, true, make([]byte, 300))[:8]
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, _ := parseFrameHeader(hdr); !ok {
			b.Fatal("not ok")
		}
	}
}

// BenchmarkReadFrames measures the read path (parse, unmask, UTF-8 check,
// dispatch) for one 128-byte text message.
func BenchmarkReadFrames(b *testing.B) {
	s := NewSimulator(Options{})
	sc := s.Open(nopHandler{})
	frame := clientFrame(0x81, true, make([]byte, 128))
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		s.Feed(sc, frame)
	}
}

// BenchmarkWriteFrame measures queuing and flushing one 128-byte text
// message to one connection.
func BenchmarkWriteFrame(b *testing.B) {
	s := NewSimulator(Options{})
	sc := s.Open(nopHandler{})
	c := sc.Conn()
	msg := make([]byte, 128)
	b.ReportAllocs()
	for b.Loop() {
		c.loop.enter()
		_ = c.WriteText(msg)
		c.loop.leave()
	}
}

func BenchmarkAppendFrame(b *testing.B) {
	msg := make([]byte, 128)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendFrame(buf[:0], OpText, msg)
	}
}

type nopHandler struct{}

func (nopHandler) OnOpen(*Conn, *Request)          {}
func (nopHandler) OnMessage(*Conn, OpCode, []byte) {}
func (nopHandler) OnClose(*Conn, CloseInfo)        {}

// BenchmarkBroadcast publishes one 128-byte frame to N subscribers through
// the real topic tables, loop tasks and write path, over fake sockets.
// ns/delivery is the user-space cost per subscriber.
func BenchmarkBroadcast(b *testing.B) {
	for _, subs := range []int{1000, 10000} {
		for _, loops := range []int{1, 2} {
			b.Run(fmt.Sprintf("subs=%d/loops=%d/msg=128B", subs, loops), func(b *testing.B) {
				s := NewSimulator(Options{Loops: loops})
				for i := 0; i < subs; i++ {
					s.Subscribe(s.Open(nopHandler{}), "room")
				}
				payload := make([]byte, 128)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					f := NewTextFrame(payload)
					s.Publish("room", f)
					f.Release()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/delivery")
				st := s.Engine().Stats()
				if st.FramesWritten < uint64(b.N*subs) {
					b.Fatalf("delivered %d of %d", st.FramesWritten, b.N*subs)
				}
			})
		}
	}
}

// BenchmarkEchoRoundTrip is a real-socket round trip: a raw client sends one
// masked 128-byte message and reads the echo.
func BenchmarkEchoRoundTrip(b *testing.B) {
	e := startEngine(b, Options{Loops: 1}, Echo{})
	nc, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	_, _ = io.WriteString(nc, goodUpgrade)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	frame := clientFrame(0x81, true, make([]byte, 128))
	reply := make([]byte, 2+128)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := nc.Write(frame); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(br, reply); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandshake is the user-space cost of one WebSocket upgrade:
// request-head scan and parse, gobwas's validation and response, and the
// connection's registration (fake socket, no kernel).
func BenchmarkHandshake(b *testing.B) {
	s := NewSimulator(Options{})
	s.Handle("/ws", nopHandler{})
	req := []byte(goodUpgrade)
	b.ReportAllocs()
	for b.Loop() {
		sc := s.OpenRaw()
		s.Feed(sc, req)
		c := sc.Conn()
		c.loop.enter()
		c.loop.closeTransport(c)
		c.loop.leave()
	}
}
