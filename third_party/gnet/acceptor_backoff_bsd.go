// meshfast: accepting backs off when descriptors or memory run out
// (MESHFAST.md, change 5; acceptor_unix.go has the rest).

//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package gnet

import "github.com/panjf2000/gnet/v2/pkg/errors"

// disarmListener is Linux only: the kqueue pollers have no way to take a
// descriptor out, so accepting fails there as upstream does.
func (el *eventloop) disarmListener(*listener) error {
	return errors.ErrUnsupportedOp
}
