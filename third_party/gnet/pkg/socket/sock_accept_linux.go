// meshfast: accept4 that decodes the peer address itself.
//
// x/sys/unix's Accept4 asks the kernel for the listening socket's protocol
// (getsockopt SO_PROTOCOL, to tell L2TP from TCP) on every accepted
// connection, a second system call per accept for a question whose answer
// never changes; a TCP or Unix listener only ever yields TCP or Unix peers.

package socket

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

func sysAccept(fd int) (int, unix.Sockaddr, error) {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	r, _, errno := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&rsa)),
		uintptr(unsafe.Pointer(&n)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if errno != 0 {
		return -1, nil, errno
	}
	nfd := int(r)
	if sa := rawToSockaddr(&rsa, n); sa != nil {
		return nfd, sa, nil
	}
	_ = unix.Close(nfd)
	return -1, nil, unix.EAFNOSUPPORT
}

// rawToSockaddr is x/sys/unix's anyToSockaddr for the families a stream
// listener accepts; nil for any other.
func rawToSockaddr(rsa *unix.RawSockaddrAny, n uint32) unix.Sockaddr {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		pp := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&pp.Port))
		return &unix.SockaddrInet4{Port: int(p[0])<<8 | int(p[1]), Addr: pp.Addr}
	case unix.AF_INET6:
		pp := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&pp.Port))
		return &unix.SockaddrInet6{Port: int(p[0])<<8 | int(p[1]), ZoneId: pp.Scope_id, Addr: pp.Addr}
	case unix.AF_UNIX:
		pp := (*unix.RawSockaddrUnix)(unsafe.Pointer(rsa))
		// An unnamed peer (the usual case) has only the family; an
		// abstract name starts with NUL, shown as '@' by convention.
		size := int(n) - int(unsafe.Offsetof(pp.Path))
		if size < 0 {
			size = 0
		} else if size > len(pp.Path) {
			size = len(pp.Path)
		}
		path := unsafe.Slice((*byte)(unsafe.Pointer(&pp.Path[0])), size)
		name := make([]byte, 0, size)
		for i, c := range path {
			if c == 0 && i > 0 {
				break
			}
			if c == 0 {
				c = '@'
			}
			name = append(name, c)
		}
		return &unix.SockaddrUnix{Name: string(name)}
	}
	return nil
}
