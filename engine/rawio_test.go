package engine

import (
	"bytes"
	"errors"
	"testing"

	gio "github.com/panjf2000/gnet/v2/pkg/io"
	"golang.org/x/sys/unix"
)

// The loops read, write and poll through third_party/gnet's raw system calls
// (MESHFAST.md, change 4); they must behave as x/sys's: errors as unix
// errnos (EAGAIN compared by value), short and vectored writes in order.
func TestRawIO(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := fds[0], fds[1]
	defer unix.Close(a)
	defer unix.Close(b)
	buf := make([]byte, 1<<16)
	if n, err := gio.RawRead(a, buf); n != -1 || !errors.Is(err, unix.EAGAIN) || err != unix.EAGAIN {
		t.Fatalf("read of an empty socket = %d, %v; want -1, EAGAIN", n, err)
	}
	// More buffers than the stack array holds, empty ones among them.
	var iov [][]byte
	var want []byte
	for i := range 100 {
		p := bytes.Repeat([]byte{byte(i)}, i%7)
		iov = append(iov, p)
		want = append(want, p...)
	}
	if n, err := gio.RawWritev(a, iov); n != len(want) || err != nil {
		t.Fatalf("writev = %d, %v; want %d", n, err, len(want))
	}
	if n, err := gio.RawWrite(a, []byte("tail")); n != 4 || err != nil {
		t.Fatalf("write = %d, %v", n, err)
	}
	want = append(want, "tail"...)
	n, err := gio.RawRead(b, buf)
	if err != nil || !bytes.Equal(buf[:n], want) {
		t.Fatalf("read back %d bytes, %v; want the %d written, in order", n, err, len(want))
	}
	if n, err := gio.RawWritev(a, [][]byte{nil, {}}); n != 0 || err != nil {
		t.Fatalf("writev of nothing = %d, %v", n, err)
	}
	// Fill the socket: the last write is short or EAGAIN, never blocking.
	for {
		n, err := gio.RawWrite(a, buf)
		if err == unix.EAGAIN {
			break
		}
		if err != nil || n <= 0 {
			t.Fatalf("write to a filling socket = %d, %v", n, err)
		}
	}
	if _, err := gio.RawWrite(-1, buf); err != unix.EBADF {
		t.Fatalf("write to fd -1: %v, want EBADF", err)
	}

	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(epfd)
	evs := make([]unix.EpollEvent, 4)
	if n, err := gio.RawEpollWait(epfd, evs); n != 0 || err != nil {
		t.Fatalf("epoll_wait on an empty set = %d, %v", n, err)
	}
	if err := gio.RawEpollCtl(epfd, unix.EPOLL_CTL_ADD, b, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(b)}); err != nil {
		t.Fatal(err)
	}
	if err := gio.RawEpollCtl(epfd, unix.EPOLL_CTL_ADD, b, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(b)}); err != unix.EEXIST {
		t.Fatalf("adding twice: %v, want EEXIST", err)
	}
	if n, err := gio.RawEpollWait(epfd, evs); n != 1 || err != nil || evs[0].Fd != int32(b) {
		t.Fatalf("epoll_wait with b readable = %d, %v, %+v", n, err, evs[0])
	}
}
