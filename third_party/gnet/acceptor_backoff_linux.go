// meshfast: accepting backs off when descriptors or memory run out
// (MESHFAST.md, change 5; acceptor_unix.go has the rest).

//go:build linux

package gnet

// disarmListener takes ln out of the loop's poller while accepting backs
// off; rearmListener puts it back.
func (el *eventloop) disarmListener(ln *listener) error {
	return el.poller.Delete(ln.fd)
}
