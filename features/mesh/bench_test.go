package mesh

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshfast/meshfast/engine"
)

// BenchmarkCommandRoundTrip is one client doing echo commands over a real
// socket: decode on the loop, handler on its goroutine, reply posted back.
func BenchmarkCommandRoundTrip(b *testing.B) {
	s := startServer(b, Options{})
	s.Expose("echo", func(c *Context) (any, error) { return c.Payload, nil })
	nc, br := rawMesh(b, s)
	echoRoundTrips(b, nc, br)
}

// BenchmarkRoundTripBesideFlood is BenchmarkCommandRoundTrip's client while
// 8 other connections flood a slow command: "alone" without them, "stuck"
// with their handlers blocked (their queues full, their reading paused),
// "busy" with handlers that take 200 µs and floods that go on. The serial
// client's round trip should not move: a flood fills its own queue and
// then its own socket, nobody else's.
func BenchmarkRoundTripBesideFlood(b *testing.B) {
	const flooders = 8
	for _, mode := range []string{"alone", "stuck", "busy"} {
		b.Run(mode, func(b *testing.B) {
			s := startServer(b, Options{})
			s.Expose("echo", func(c *Context) (any, error) { return c.Payload, nil })
			gate := make(chan struct{})
			s.Expose("slow", func(c *Context) (any, error) {
				if mode == "stuck" {
					<-gate
				} else {
					time.Sleep(200 * time.Microsecond)
				}
				return nil, nil
			})
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if mode != "alone" {
				for range flooders {
					fc, fbr := rawMesh(b, s)
					wg.Go(func() { _, _ = io.Copy(io.Discard, fbr) }) // replies, until the close
					wg.Go(func() {
						defer fc.Close()
						req := maskedText(`{"id":1,"command":"slow"}`)
						for {
							select {
							case <-stop:
								return
							default:
							}
							_ = fc.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
							_, _ = fc.Write(req) // stuck: times out once the socket is full
						}
					})
				}
				time.Sleep(100 * time.Millisecond) // the floods under way: queues full, stuck ones paused
			}
			nc, br := rawMesh(b, s)
			echoRoundTrips(b, nc, br)
			b.StopTimer()
			close(stop)
			close(gate)
			wg.Wait()
		})
	}
}

// rawMesh opens a raw Mesh connection to s and reads past its handshake
// and mesh/assign-id.
func rawMesh(b *testing.B, s *Server) (net.Conn, *bufio.Reader) {
	b.Helper()
	nc, err := net.Dial("tcp", s.Engine().Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = nc.Close() })
	br := bufio.NewReader(nc)
	_, _ = io.WriteString(nc, "GET /?mesh-assign-id=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	readFrame(b, br) // mesh/assign-id
	return nc, br
}

// echoRoundTrips times b.N echo commands, one at a time.
func echoRoundTrips(b *testing.B, nc net.Conn, br *bufio.Reader) {
	req := maskedText(`{"id":1,"command":"echo","payload":"` + strings.Repeat("x", 64) + `"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := nc.Write(req); err != nil {
			b.Fatal(err)
		}
		readFrame(b, br)
	}
}

func maskedText(s string) []byte {
	p := []byte(s)
	out := []byte{0x81}
	if len(p) < 126 {
		out = append(out, 0x80|byte(len(p)))
	} else {
		out = append(out, 0x80|126, byte(len(p)>>8), byte(len(p)))
	}
	out = append(out, 0, 0, 0, 0) // zero mask: payload unchanged
	return append(out, p...)
}

func readFrame(b *testing.B, br *bufio.Reader) []byte {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		b.Fatal(err)
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		var l [2]byte
		_, _ = io.ReadFull(br, l[:])
		n = int(l[0])<<8 | int(l[1])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkRoomBroadcast sends one room broadcast to N local members
// through the whole path — encode once, coordinator pub/sub, node
// delivery, the engine's per-loop tables and write path — over the
// engine's simulated sockets. ns/delivery is the cost per member.
func BenchmarkRoomBroadcast(b *testing.B) {
	for _, members := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("members=%d/msg=128B", members), func(b *testing.B) {
			sim, s := simServer(b, 2, Options{PingInterval: -1, LatencyInterval: -1, AssignID: AssignIDNever})
			for i := 0; i < members; i++ {
				sc := sim.Open(handlerOf(s))
				c := sc.Conn().Value().(*Connection)
				waitRegistered(b, c)
				if err := s.AddToRoom(bg(), "room", c.id); err != nil {
					b.Fatal(err)
				}
			}
			payload := strings.Repeat("x", 100)
			st := sim.Engine().Stats()
			want := st.FramesWritten
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.BroadcastRoom(bg(), "room", "msg", payload); err != nil {
					b.Fatal(err)
				}
				want += uint64(members)
				for sim.Engine().Stats().FramesWritten < want {
					time.Sleep(time.Microsecond)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*members), "ns/delivery")
		})
	}
}

func handlerOf(s *Server) engine.Handler { return (*handler)(s) }

// BenchmarkConnectionOpen is the Mesh layer's share of a handshake: a
// connection opened on the engine (already upgraded), its id, assign-id
// push, liveness timer and coordinator registration, with Mesh's default
// options. Connections stay open, as a connect storm leaves them.
// cpu-ns/op counts every goroutine's CPU, the registration worker's too.
func BenchmarkConnectionOpen(b *testing.B) {
	sim, s := simServer(b, 2, Options{})
	h := handlerOf(s)
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		sc := sim.Open(h)
		waitRegistered(b, sc.Conn().Value().(*Connection))
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCommandPipelined is one client that writes 1,000 echo commands
// without waiting and then reads the 1,000 replies, over a real socket:
// the throughput of one connection's command path. ns/op is per batch;
// ns/command is the time per command.
func BenchmarkCommandPipelined(b *testing.B) {
	const batch = 1000
	s := startServer(b, Options{})
	s.Expose("echo", func(c *Context) (any, error) { return c.Payload, nil })
	nc, err := net.Dial("tcp", s.Engine().Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReaderSize(nc, 64<<10)
	_, _ = io.WriteString(nc, "GET /?mesh-assign-id=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	readFrame(b, br) // mesh/assign-id
	var req []byte
	for i := range batch {
		req = append(req, maskedText(fmt.Sprintf(`{"id":%d,"command":"echo","payload":"%s"}`, i+1, strings.Repeat("x", 64)))...)
	}
	errs := 0
	b.ReportAllocs()
	for b.Loop() {
		go func() { _, _ = nc.Write(req) }() // the replies must be read while it writes
		for range batch {
			if strings.Contains(string(readFrame(b, br)), `"error"`) {
				errs++
			}
		}
	}
	if errs > 0 {
		b.Fatalf("%d error replies", errs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/command")
}
