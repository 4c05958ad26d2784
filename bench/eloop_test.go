package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/internal/testutil"
	"github.com/meshfast/meshfast/perf"
)

// TestDialSocketOptions checks the source address, keepalive off, linger 0
// and no Nagle on a real connect.
func TestDialSocketOptions(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	src, _ := sockaddr4("127.0.0.3")
	dst, _ := sockaddr4(ln.Addr().String())
	fd, err := dialSocket(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := awaitConnect(fd, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	if a := sa.(*unix.SockaddrInet4).Addr; a != [4]byte{127, 0, 0, 3} {
		t.Fatalf("source address %v", a)
	}
	ka, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
	nd, _ := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY)
	lg, _ := unix.GetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER)
	if ka != 0 || nd != 1 || lg == nil || lg.Onoff != 1 || lg.Linger != 0 {
		t.Fatalf("SO_KEEPALIVE=%d TCP_NODELAY=%d linger=%+v", ka, nd, lg)
	}
}

func TestAwaitConnectRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dst, _ := sockaddr4(ln.Addr().String())
	ln.Close()
	src, _ := sockaddr4("127.0.0.2")
	fd, err := dialSocket(src, dst)
	if err == nil {
		err = awaitConnect(fd, 5*time.Second)
		unix.Close(fd)
	}
	if !errors.Is(err, unix.ECONNREFUSED) {
		t.Fatalf("connect to a closed port: %v", err)
	}
}

func TestSockaddr4(t *testing.T) {
	if sa, err := sockaddr4("localhost:81"); err != nil || sa.Port != 81 || sa.Addr != [4]byte{127, 0, 0, 1} {
		t.Fatalf("localhost:81 = %+v, %v", sa, err)
	}
	if _, err := sockaddr4("[::1]:80"); err == nil {
		t.Fatal("IPv6 accepted")
	}
}

// fakeServer accepts one connection, answers the upgrade and hands the
// connection (and its buffered reader) to the test.
func fakeServer(t *testing.T, answer bool) (addr string, conns chan *bufio.ReadWriter, raw chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns, raw = make(chan *bufio.ReadWriter, 1), make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		rw := bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
		req, err := http.ReadRequest(rw.Reader)
		if err != nil {
			c.Close()
			return
		}
		if answer {
			_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
				acceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n")
			_ = rw.Flush()
		}
		conns <- rw
		raw <- c
	}()
	return ln.Addr().String(), conns, raw
}

func testWorker(t *testing.T, target string) *worker {
	t.Helper()
	w, err := newWorker(&plan{Targets: []string{target}, Path: "/", SourceIPs: []string{"127.0.0.2"},
		Dialers: 1, DialConcurrency: 1, ClientLoops: 1, Role: roleHold}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.stop() })
	return w
}

// onLoop runs f on cc's loop and waits for it.
func onLoop(t *testing.T, cc *cconn, f func()) {
	t.Helper()
	done := make(chan struct{})
	if err := cc.loop.execute(func() { f(); close(done) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("loop task did not run")
	}
}

// TestLoopWriteBackpressure writes far more than the socket buffers hold to
// a peer that is not reading: the rest waits in the connection's queue and
// goes out, in order, once the peer reads.
func TestLoopWriteBackpressure(t *testing.T) {
	addr, conns, raw := fakeServer(t, true)
	w := testWorker(t, addr)
	if ev := w.open(1, 5*time.Second); w.counts.get(cReady) != 1 {
		t.Fatalf("not ready: %+v %v", ev, w.counts.snapshot().named())
	}
	rw, c := <-conns, <-raw
	defer c.Close()
	cc := w.snapshot()[0]
	const total = 8 << 20
	chunk := make([]byte, 64<<10)
	queued := 0
	onLoop(t, cc, func() {
		for off := 0; off < total; off += len(chunk) {
			for i := range chunk {
				chunk[i] = byte((off + i) % 251)
			}
			cc.write(chunk)
		}
		queued = len(cc.out)
	})
	if queued == 0 {
		t.Fatal("8 MiB to a peer that is not reading: nothing queued")
	}
	got := make([]byte, total)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(rw, got); err != nil {
		t.Fatal(err)
	}
	for i, b := range got {
		if b != byte(i%251) {
			t.Fatalf("byte %d = %d, want %d", i, b, byte(i%251))
		}
	}
	onLoop(t, cc, func() { queued = len(cc.out) })
	if queued != 0 {
		t.Fatalf("%d bytes still queued", queued)
	}
}

// TestLoopPeerClose: a server that closes before its 101 fails the
// handshake; one that closes after counts as a closed connection.
func TestLoopPeerClose(t *testing.T) {
	for _, answer := range []bool{false, true} {
		addr, _, raw := fakeServer(t, answer)
		w := testWorker(t, addr)
		if answer {
			w.open(1, 5*time.Second)
			if w.counts.get(cReady) != 1 {
				t.Fatalf("not ready: %v", w.counts.snapshot().named())
			}
			(<-raw).Close()
		} else {
			go func() { (<-raw).Close() }()
			w.open(1, 5*time.Second)
		}
		want := cClosed
		if !answer {
			want = cHandshakeErrors
		}
		testutil.Eventually(t, 5*time.Second, func() error {
			if w.counts.get(want) != 1 || w.resolved.Load() != 1 {
				return fmt.Errorf("answer=%v: counts %v resolved %d", answer, w.counts.snapshot().named(), w.resolved.Load())
			}
			return nil
		})
		var fd int32
		onLoop(t, w.snapshot()[0], func() { fd = w.snapshot()[0].fd })
		if fd != -1 {
			t.Fatalf("descriptor %d still open", fd)
		}
	}
}

// TestLoopReadsBurst: more bytes than one read buffer arrive at once; the
// edge-triggered loop must read them all.
func TestLoopReadsBurst(t *testing.T) {
	addr, conns, raw := fakeServer(t, true)
	w := testWorker(t, addr)
	w.open(1, 5*time.Second)
	rw, c := <-conns, <-raw
	defer c.Close()
	var frames []byte
	for len(frames) < 3*readBufSize {
		frames = engine.AppendFrame(frames, engine.OpText, bytes.Repeat([]byte{'a'}, 1000))
	}
	before := w.counts.get(cBytesIn)
	_, _ = rw.Write(frames)
	_ = rw.Flush()
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := w.counts.get(cBytesIn) - before; got != uint64(len(frames)) {
			return fmt.Errorf("read %d of %d bytes", got, len(frames))
		}
		return nil
	})
}

// TestLoopRequestWaitsForConnect: when the server's accept queue is full
// the SYN is dropped, connect is still in progress when the dialer writes,
// and the request waits in the connection's queue until the retransmitted
// SYN gets through; the loop then sends it on the first EPOLLOUT edge.
func TestLoopRequestWaitsForConnect(t *testing.T) {
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 0); err != nil { // room for one queued connection
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(lfd)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*unix.SockaddrInet4).Port))
	filler, err := net.Dial("tcp", addr) // fills the queue
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()

	w := testWorker(t, addr)
	opened := make(chan struct{})
	go func() { defer close(opened); w.open(1, 10*time.Second) }()
	// Accept nothing until the dialer has connected, written (EAGAIN) and
	// handed the socket to its loop.
	testutil.Eventually(t, 5*time.Second, func() error {
		if len(w.snapshot()) == 0 {
			return errors.New("the dialer has not handed the connection over")
		}
		return nil
	})
	for range 2 { // the filler, then ours once its SYN is retransmitted
		nfd, _, err := unix.Accept(lfd)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.FileConn(os.NewFile(uintptr(nfd), "accepted"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			continue // the filler sends nothing
		}
		_, _ = c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			acceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"))
	}
	<-opened
	if w.counts.get(cReady) != 1 {
		t.Fatalf("not ready: %v", w.counts.snapshot().named())
	}
	if h := w.hist[hHandshake].Snapshot(); h.Max() < 500*time.Millisecond {
		t.Fatalf("handshake took %v: the SYN was not dropped, the queued path was not taken", h.Max())
	}
}

// TestLoopDataThenEOFInOneEdge: a peer's last bytes and its FIN reported in
// one edge-triggered event must both be consumed; no later edge would
// report the EOF.
func TestLoopDataThenEOFInOneEdge(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	w := &worker{table: make(connTable, 1<<16)}
	for i := range w.hist {
		w.hist[i] = perf.MustNewTracker(histOptions)
	}
	l := &cloop{w: w, buf: make([]byte, readBufSize)}
	cc := &cconn{w: w, loop: l, fd: int32(fds[0]), role: roleHold, state: stReady}
	w.table[cc.fd].Store(cc)
	frame := engine.AppendFrame(nil, engine.OpText, []byte(`{"command":"x"}`))
	if _, err := unix.Write(fds[1], frame); err != nil {
		t.Fatal(err)
	}
	if err := unix.Shutdown(fds[1], unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	cc.event(unix.EPOLLIN | unix.EPOLLRDHUP)
	if cc.fd != -1 || w.counts.get(cClosed) != 1 || w.counts.get(cBytesIn) != uint64(len(frame)) {
		t.Fatalf("fd %d, closed %d, bytes in %d of %d", cc.fd, w.counts.get(cClosed), w.counts.get(cBytesIn), len(frame))
	}
}
