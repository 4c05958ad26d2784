package bench

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The client's event loop. A load generator that shares two cores with the
// server it measures has to spend as little per connection as it can, and
// what it spends on a handshake beyond a plain connect lands in the
// handshake/connect ratio it reports. So the client does not go through
// net.Dialer and a library's enroll step (a dup, a close, netpoll
// registration and a synchronous round trip to the loop per connection):
// a dialer goroutine opens a raw non-blocking socket, connects, writes the
// upgrade request itself (on loopback the kernel has completed the TCP
// handshake by the time connect returns) and only then adds the socket to a
// loop's edge-triggered epoll set. The loop's first event for it is the
// server's 101. The plain-TCP probe uses the same socket code.

// readBufSize is a loop's read buffer; a read that fills it is repeated
// (edge-triggered epoll reports a socket once per arrival).
const readBufSize = 64 << 10

// connTable maps a file descriptor to its connection. Dialers store before
// they register the socket with epoll; the owning loop clears the slot
// before it closes the descriptor, so a reused descriptor never resolves to
// a dead connection.
type connTable []atomic.Pointer[cconn]

func newConnTable() connTable {
	n := uint64(1 << 16)
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur > 0 && rl.Cur < 1<<24 {
		n = rl.Cur
	}
	return make(connTable, n)
}

func (t connTable) get(fd int32) *cconn {
	if fd < 0 || int(fd) >= len(t) {
		return nil
	}
	return t[fd].Load()
}

// cloop is one client event loop: an epoll set, an eventfd that wakes it
// for tasks posted by other goroutines, and a read buffer. Connection state
// is touched only by the loop that owns the connection.
type cloop struct {
	w      *worker
	epfd   int
	ep     *parkedEpoll // owns epfd
	efd    int
	buf    []byte
	events []unix.EpollEvent

	mu      sync.Mutex // guards tasks, stopped
	tasks   []func()
	stopped bool
	done    chan struct{}
}

var errLoopStopped = errors.New("bench: client loop stopped")

func newCloop(w *worker) (*cloop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("%w: epoll: %w", ErrWorker, err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("%w: eventfd: %w", ErrWorker, err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		_ = unix.Close(efd)
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("%w: epoll: %w", ErrWorker, err)
	}
	l := &cloop{w: w, epfd: epfd, efd: efd, buf: make([]byte, readBufSize),
		events: make([]unix.EpollEvent, 256), done: make(chan struct{})}
	if l.ep, err = parkable(epfd, l.events); err != nil {
		_ = unix.Close(efd)
		return nil, fmt.Errorf("%w: epoll: %w", ErrWorker, err)
	}
	go l.run()
	return l, nil
}

// execute runs f on the loop. It fails once the loop has stopped.
func (l *cloop) execute(f func()) error {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return errLoopStopped
	}
	l.tasks = append(l.tasks, f)
	wake := len(l.tasks) == 1
	l.mu.Unlock()
	if wake {
		var one = [8]byte{1}
		_, _ = rawWrite(l.efd, one[:])
	}
	return nil
}

// stop closes every connection the loop owns (they come from conns, the
// worker's list) and ends the loop. It waits for the loop to exit.
func (l *cloop) stop(conns []*cconn) {
	_ = l.execute(func() {
		for _, cc := range conns {
			if cc.loop == l {
				cc.close()
			}
		}
	})
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	var one = [8]byte{1}
	_, _ = rawWrite(l.efd, one[:])
	<-l.done
	_ = unix.Close(l.efd)
	_ = l.ep.close()
}

// connEvents is what the loop waits for on a connection; EPOLLOUT only
// while bytes wait to go (armOut). A socket is writable the moment it is
// registered, so asking for EPOLLOUT from the start would wake the loop for
// nothing on every connection: a cross-thread wake-up per handshake.
const connEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET

// add registers a connected socket whose upgrade request may already be
// written (what was not is in cc.out). Dialer goroutines call it; the
// connection is the loop's from here.
func (l *cloop) add(cc *cconn) error {
	fd := cc.fd // cc is not to be touched once published: the loop may own it already
	ev := unix.EpollEvent{Events: connEvents, Fd: fd}
	if cc.outArmed = len(cc.out) > 0; cc.outArmed {
		ev.Events |= unix.EPOLLOUT
	}
	l.w.table[fd].Store(cc)
	if err := rawEpollCtl(l.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev); err != nil {
		l.w.table[fd].Store(nil)
		return err
	}
	return nil
}

func (l *cloop) run() {
	defer close(l.done)
	for {
		n, err := l.ep.wait()
		if n <= 0 {
			if err != nil && !errors.Is(err, unix.EINTR) {
				return
			}
			continue
		}
		for i := range l.events[:n] {
			ev := &l.events[i]
			if ev.Fd < 0 {
				if !l.runTasks() {
					return
				}
				continue
			}
			cc := l.w.table.get(ev.Fd)
			if cc == nil || cc.loop != l {
				continue // closed earlier in this batch; the slot may already be reused
			}
			cc.event(ev.Events)
		}
	}
}

// runTasks drains the eventfd and runs the posted tasks; false once stopped.
func (l *cloop) runTasks() bool {
	var b [8]byte
	_, _ = rawRead(l.efd, b[:])
	l.mu.Lock()
	tasks, stopped := l.tasks, l.stopped
	l.tasks = nil
	l.mu.Unlock()
	for _, f := range tasks {
		f()
	}
	return !stopped
}

// event handles one epoll report for the connection.
func (cc *cconn) event(mask uint32) {
	if mask&unix.EPOLLOUT != 0 && len(cc.out) > 0 {
		cc.flush()
	}
	const hup = unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR
	if mask&(unix.EPOLLIN|hup) != 0 && cc.state != stClosed {
		cc.readAll(mask&hup != 0)
	}
}

// readAll reads until the socket is drained (edge-triggered) and feeds the
// bytes to the connection; EOF or an error closes it. A short read means
// drained, since the next arrival raises a new edge, except after the peer
// has shut down (untilEOF): then no edge follows the data, and the loop
// reads on until it sees the EOF.
func (cc *cconn) readAll(untilEOF bool) {
	buf := cc.loop.buf
	for cc.state != stClosed {
		n, err := rawRead(int(cc.fd), buf)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EAGAIN) {
				return
			}
			cc.close()
			return
		}
		if n == 0 {
			cc.close()
			return
		}
		cc.now = time.Now().UnixNano()
		if !cc.traffic(buf[:n]) {
			cc.close()
			return
		}
		if n < len(buf) && !untilEOF {
			return
		}
	}
}

// write sends b now or queues what the socket does not take; the loop
// flushes the queue on the next EPOLLOUT edge. b is not retained. Loop only.
func (cc *cconn) write(b []byte) {
	if cc.state == stClosed {
		return
	}
	if len(cc.out) > 0 {
		cc.out = append(cc.out, b...)
		return
	}
	n, err := rawWrite(int(cc.fd), b)
	if err != nil {
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			cc.close()
			return
		}
		n = 0
	}
	if n < len(b) {
		cc.out = append(cc.out, b[n:]...)
		cc.armOut()
	}
}

// armOut asks for EPOLLOUT edges, once bytes wait in cc.out; they stay
// asked for (a connection that filled its socket once is likely to again).
func (cc *cconn) armOut() {
	if cc.outArmed {
		return
	}
	ev := unix.EpollEvent{Events: connEvents | unix.EPOLLOUT, Fd: cc.fd}
	if err := rawEpollCtl(cc.loop.epfd, unix.EPOLL_CTL_MOD, int(cc.fd), &ev); err != nil {
		cc.close()
		return
	}
	cc.outArmed = true
}

// flush writes the queued bytes.
func (cc *cconn) flush() {
	for len(cc.out) > 0 {
		n, err := rawWrite(int(cc.fd), cc.out)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				return
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			cc.close()
			return
		}
		cc.out = cc.out[n:]
	}
	cc.out = nil
}

// close releases the socket and settles the connection's accounting once.
// Loop only (or before the connection is added to a loop).
func (cc *cconn) close() {
	if cc.fd < 0 {
		return
	}
	cc.w.table[cc.fd].Store(nil)
	_ = rawClose(int(cc.fd))
	cc.fd = -1
	cc.out = nil
	cc.closed()
}

// dialSocket opens a non-blocking TCP socket from src, port chosen at
// connect (IP_BIND_ADDRESS_NO_PORT, so one source address serves every
// target), with keepalive off (a raw socket's default), SO_LINGER 0 (a
// finished run leaves no TIME_WAIT behind) and TCP_NODELAY, and starts
// connecting it to dst. It returns the descriptor; a nil error means the
// connect is under way or done.
func dialSocket(src, dst *unix.SockaddrInet4) (int, error) {
	fd, err := rawSocket()
	if err != nil {
		return -1, err
	}
	linger := unix.Linger{Onoff: 1}
	if err = rawSetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1); err == nil {
		if err = rawSetsockopt(fd, unix.SOL_SOCKET, unix.SO_LINGER, unsafe.Pointer(&linger), unix.SizeofLinger); err == nil {
			if err = rawSetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err == nil {
				if err = rawBind(fd, src); err == nil {
					err = rawConnect(fd, dst)
					if errors.Is(err, unix.EINPROGRESS) {
						err = nil
					}
				}
			}
		}
	}
	if err != nil {
		_ = rawClose(fd)
		return -1, err
	}
	return fd, nil
}

// awaitConnect waits until a dialSocket connect completes, up to timeout.
// On loopback the connect is usually complete when connect(2) returns, so it
// looks first without waiting (rawPoll), as the handshakes' dialer writes its
// request at once, and waits in poll(2) only if it must.
func awaitConnect(fd int, timeout time.Duration) error {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	if n, err := rawPoll(pfd); err == nil && n == 1 && pfd[0].Revents&(unix.POLLERR|unix.POLLHUP) == 0 {
		return nil
	}
	deadline := time.Now().Add(timeout)
	for {
		ms := int(time.Until(deadline) / time.Millisecond)
		if ms < 0 {
			return unix.ETIMEDOUT
		}
		n, err := unix.Poll(pfd, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.ETIMEDOUT
		}
		if pfd[0].Revents&(unix.POLLERR|unix.POLLHUP) == 0 {
			return nil
		}
		soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return err
		}
		if soerr != 0 {
			return unix.Errno(soerr)
		}
		return unix.ECONNREFUSED
	}
}

// sockaddr4 resolves a loopback "host:port" (or a bare IPv4 address, port 0)
// to a socket address.
func sockaddr4(addr string) (*unix.SockaddrInet4, error) {
	var ip net.IP
	port := 0
	if host, p, err := net.SplitHostPort(addr); err == nil {
		ta, err := net.ResolveTCPAddr("tcp4", net.JoinHostPort(host, p))
		if err != nil {
			return nil, err
		}
		ip, port = ta.IP, ta.Port
	} else {
		ip = net.ParseIP(addr)
	}
	ip4 := ip.To4()
	if ip4 == nil {
		return nil, fmt.Errorf("%w: not an IPv4 address: %q", ErrWorker, addr)
	}
	sa := &unix.SockaddrInet4{Port: port}
	copy(sa.Addr[:], ip4)
	return sa, nil
}
