package bench

import (
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// System calls on non-blocking descriptors, made with RawSyscall: outside
// the Go scheduler's system-call state, whose entry wakes the runtime's
// sysmon when it sleeps; sysmon then polls every 20 µs for a millisecond or
// more. The load generator's dialers and loops make several such calls per
// connection, so made the usual way they kept sysmon polling through a whole
// run: 12% of the load generator's CPU in a connect storm. None of these can
// block, so there is no P to hand over while they run. Calls that can block
// (poll, a waiting epoll_wait) stay ordinary; the loop waits by parking
// (parkable).

func errno(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func rawSocket() (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_SOCKET, unix.AF_INET,
		unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

func rawSetsockopt(fd, level, opt int, p unsafe.Pointer, n uintptr) error {
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), n, 0)
	return errno(e)
}

func rawSetsockoptInt(fd, level, opt, v int) error {
	i := int32(v)
	return rawSetsockopt(fd, level, opt, unsafe.Pointer(&i), 4)
}

// inet4 is sa in the kernel's layout.
func inet4(sa *unix.SockaddrInet4) unix.RawSockaddrInet4 {
	r := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: sa.Addr}
	p := (*[2]byte)(unsafe.Pointer(&r.Port))
	p[0], p[1] = byte(sa.Port>>8), byte(sa.Port)
	return r
}

func rawBind(fd int, sa *unix.SockaddrInet4) error {
	r := inet4(sa)
	_, _, e := unix.RawSyscall(unix.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&r)), unix.SizeofSockaddrInet4)
	return errno(e)
}

func rawConnect(fd int, sa *unix.SockaddrInet4) error {
	r := inet4(sa)
	_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&r)), unix.SizeofSockaddrInet4)
	return errno(e)
}

func rawRead(fd int, p []byte) (int, error)  { return rawIO(unix.SYS_READ, fd, p) }
func rawWrite(fd int, p []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, p) }

// rawIO is read(2) or write(2).
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	r, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

func rawClose(fd int) error {
	_, _, e := unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
	return errno(e)
}

func rawEpollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return errno(e)
}

// rawPoll is ppoll with a zero timeout.
func rawPoll(fds []unix.PollFd) (int, error) {
	var ts unix.Timespec
	r, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), uintptr(len(fds)), uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// rawEpollPoll is epoll_wait with a zero timeout.
func rawEpollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// parkedEpoll waits on an epoll set by parking in Go's netpoller: an epoll
// descriptor is readable while it has events, so it can be registered like
// a socket. A waiting loop then holds no P and keeps no thread in a system
// call (meshfast's server loops wait the same way; third_party/gnet).
type parkedEpoll struct {
	file   *os.File
	rc     syscall.RawConn
	ready  func(uintptr) bool // built once: a closure per wait would allocate
	events []unix.EpollEvent
	n      int
	err    error
}

// parkable takes ownership of epfd (closing the result closes it). It fails
// if the runtime will not poll the descriptor; epfd is then closed.
func parkable(epfd int, events []unix.EpollEvent) (*parkedEpoll, error) {
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	p := &parkedEpoll{file: os.NewFile(uintptr(epfd), "epoll"), events: events}
	// Only a descriptor in the netpoller takes deadlines.
	if err := p.file.SetReadDeadline(time.Time{}); err != nil {
		_ = p.file.Close()
		return nil, err
	}
	rc, err := p.file.SyscallConn()
	if err != nil {
		_ = p.file.Close()
		return nil, err
	}
	p.rc = rc
	p.ready = func(fd uintptr) bool {
		p.n, p.err = rawEpollPoll(int(fd), p.events)
		return p.n != 0 || p.err != nil
	}
	return p, nil
}

// wait returns the next events (in the slice given to parkable), parking
// until there are any.
func (p *parkedEpoll) wait() (int, error) {
	if err := p.rc.Read(p.ready); err != nil {
		return -1, err
	}
	return p.n, p.err
}

func (p *parkedEpoll) close() error { return p.file.Close() }
