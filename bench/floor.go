package bench

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// floorServer is the handshake ceiling: about the least a WebSocket server
// can do per connection on Linux, so that the connect scenario can report
// handshakes/s as a fraction of what the kernel allows on the same host in
// the same run. Each loop waits on the shared listener (EPOLLEXCLUSIVE, so
// one loop wakes per arrival) in its own epoll set; per connection it calls
// accept4 without asking for the peer address, reads the request at once
// (the client sends it with its connect, so it is normally there), answers
// 101 with one write and adds the socket to the set only to hold it and
// notice its close. Four system calls, made raw as meshfast's loops make
// theirs (rawsys.go); no parsing beyond the key, no state but the
// descriptor.
type floorServer struct {
	ln      *net.TCPListener
	lfd     int
	loops   []*floorLoop
	wg      sync.WaitGroup
	holding atomic.Int64 // upgraded sockets held, over all loops
}

// floorLoop is one of the floor server's loops; its fields belong to its
// goroutine except efd, written by close.
type floorLoop struct {
	s       *floorServer
	epfd    int
	efd     int
	buf     []byte
	held    map[int32]struct{} // upgraded sockets
	partial map[int32][]byte   // request heads still incomplete
}

const floorHeadMax = 4 << 10

var response101 = []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")

func startFloorServer(loops int) (*floorServer, error) {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	s := &floorServer{ln: ln}
	rc, err := ln.SyscallConn()
	if err == nil {
		_ = rc.Control(func(fd uintptr) { s.lfd = int(fd) })
	}
	if err != nil || s.lfd == 0 {
		_ = ln.Close()
		return nil, fmt.Errorf("bench: floor: listener descriptor: %w", err)
	}
	for range max(loops, 1) {
		l, err := s.newLoop()
		if err != nil {
			s.close()
			return nil, err
		}
		s.loops = append(s.loops, l)
	}
	for _, l := range s.loops {
		s.wg.Add(1)
		go l.run()
	}
	return s, nil
}

func (s *floorServer) addr() string { return s.ln.Addr().String() }

func (s *floorServer) newLoop() (*floorLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	l := &floorLoop{s: s, epfd: epfd, efd: efd, buf: make([]byte, floorHeadMax),
		held: map[int32]struct{}{}, partial: map[int32][]byte{}}
	for _, r := range []struct {
		fd int
		ev uint32
	}{{s.lfd, unix.EPOLLIN | unix.EPOLLEXCLUSIVE}, {efd, unix.EPOLLIN}} {
		ev := unix.EpollEvent{Events: r.ev, Fd: int32(r.fd)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, r.fd, &ev); err != nil {
			_ = unix.Close(efd)
			_ = unix.Close(epfd)
			return nil, err
		}
	}
	return l, nil
}

// close stops the loops, closes every held socket and the listener.
func (s *floorServer) close() {
	var one = [8]byte{1}
	for _, l := range s.loops {
		_, _ = unix.Write(l.efd, one[:])
	}
	s.wg.Wait()
	for _, l := range s.loops {
		for fd := range l.held {
			_ = unix.Close(int(fd))
		}
		for fd := range l.partial {
			_ = unix.Close(int(fd))
		}
		_ = unix.Close(l.efd)
		_ = unix.Close(l.epfd)
	}
	_ = s.ln.Close()
}

// count is the number of upgraded connections held.
func (s *floorServer) count() int { return int(s.holding.Load()) }

func (l *floorLoop) hold(fd int32) {
	l.held[fd] = struct{}{}
	l.s.holding.Add(1)
}

func (l *floorLoop) run() {
	defer l.s.wg.Done()
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(l.epfd, events, -1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		for _, ev := range events[:max(n, 0)] {
			switch fd := int(ev.Fd); {
			case fd == l.efd:
				return
			case fd == l.s.lfd:
				l.accept()
			default:
				l.readable(ev.Fd)
			}
		}
	}
}

// accept takes every queued connection and answers those whose request
// is already in.
func (l *floorLoop) accept() {
	for {
		r, _, errno := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(l.s.lfd), 0, 0,
			unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		if errno == unix.EINTR || errno == unix.ECONNABORTED {
			continue
		}
		if errno != 0 {
			return // EAGAIN: drained; anything else: the next wake retries
		}
		l.request(int32(r), nil)
	}
}

// request reads the request head on fd (after head, bytes read earlier),
// answers it when complete and holds the socket; an incomplete head waits
// in partial for the next readable event.
func (l *floorLoop) request(fd int32, head []byte) {
	n, err := rawRead(int(fd), l.buf)
	if errors.Is(err, unix.EAGAIN) {
		l.wait(fd, head)
		return
	}
	if errors.Is(err, unix.EINTR) {
		l.request(fd, head)
		return
	}
	if err != nil || n == 0 {
		l.drop(fd)
		return
	}
	b := l.buf[:n]
	if head != nil {
		b = append(head, b...)
	}
	if !bytes.Contains(b, []byte("\r\n\r\n")) {
		if len(b) >= floorHeadMax {
			l.drop(fd)
			return
		}
		// Read on until EAGAIN: the socket is edge-triggered, and a FIN
		// that came with these bytes raises no further edge.
		l.request(fd, append([]byte(nil), b...))
		return
	}
	resp := append(append(l.buf[n:n], response101...), acceptKey(string(requestKey(b)))...)
	resp = append(resp, "\r\n\r\n"...)
	if w, err := rawWrite(int(fd), resp); err != nil || w != len(resp) {
		l.drop(fd)
		return
	}
	if _, waiting := l.partial[fd]; waiting {
		delete(l.partial, fd)
		l.hold(fd)
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: fd}
	if rawEpollCtl(l.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev) != nil {
		_ = rawClose(int(fd))
		return
	}
	l.hold(fd)
}

// wait registers fd (if new) to finish reading its request head later.
func (l *floorLoop) wait(fd int32, head []byte) {
	if _, waiting := l.partial[fd]; !waiting {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: fd}
		if rawEpollCtl(l.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev) != nil {
			_ = rawClose(int(fd))
			return
		}
	}
	if head == nil {
		head = []byte{}
	}
	l.partial[fd] = head
}

// readable handles data or a close on a socket of this loop.
func (l *floorLoop) readable(fd int32) {
	if head, waiting := l.partial[fd]; waiting {
		l.request(fd, head)
		return
	}
	if _, ok := l.held[fd]; !ok {
		return
	}
	for { // a held client may send pongs or a close: discard, notice EOF
		n, err := rawRead(int(fd), l.buf)
		if errors.Is(err, unix.EAGAIN) {
			return
		}
		if err != nil || n == 0 {
			l.drop(fd)
			return
		}
	}
}

func (l *floorLoop) drop(fd int32) {
	delete(l.partial, fd)
	if _, ok := l.held[fd]; ok {
		delete(l.held, fd)
		l.s.holding.Add(-1)
	}
	_ = rawClose(int(fd))
}

// requestKey returns the Sec-WebSocket-Key header's value in a request head.
func requestKey(head []byte) []byte {
	for line := range bytes.SplitSeq(head, []byte("\r\n")) {
		if name, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(name, []byte("Sec-WebSocket-Key")) {
			return bytes.TrimSpace(v)
		}
	}
	return nil
}
