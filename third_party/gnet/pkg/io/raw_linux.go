// meshfast: system calls that never block, made without entering the Go
// scheduler's system-call state (MESHFAST.md, change 4).
//
// A goroutine that enters a system call the usual way (entersyscall) wakes
// Go's sysmon if it was asleep, and sysmon then polls every 20 µs for at
// least a millisecond, taking back the P of any goroutine it finds in a call
// for two polls. With loops that park when idle, every P goes idle between
// bursts, so each burst's first write woke sysmon again. These calls are made
// on non-blocking descriptors (or epoll_wait with a zero timeout): they never
// sleep, so the P has nothing to hand over while they run.

package io

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// RawRead is read(2) on a non-blocking descriptor.
func RawRead(fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// RawWrite is write(2) on a non-blocking descriptor.
func RawWrite(fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// RawWritev is writev(2) on a non-blocking descriptor.
func RawWritev(fd int, iov [][]byte) (int, error) {
	var stack [64]unix.Iovec
	vs := stack[:0]
	if len(iov) > len(stack) {
		vs = make([]unix.Iovec, 0, len(iov))
	}
	for _, b := range iov {
		if len(b) == 0 {
			continue
		}
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return 0, nil
	}
	r, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&vs[0])), uintptr(len(vs)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// RawEpollCtl is epoll_ctl(2).
func RawEpollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// RawEpollWait is epoll_wait(2) with a zero timeout: it never blocks.
func RawEpollWait(epfd int, events []unix.EpollEvent) (int, error) {
	var ptr unsafe.Pointer
	if len(events) > 0 {
		ptr = unsafe.Pointer(&events[0])
	}
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(ptr), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}
