// meshfast: on other systems the "raw" calls are x/sys's (change 4 in
// MESHFAST.md is Linux only).

//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package io

import "golang.org/x/sys/unix"

// RawRead is read(2) on a non-blocking descriptor.
func RawRead(fd int, p []byte) (int, error) { return unix.Read(fd, p) }

// RawWrite is write(2) on a non-blocking descriptor.
func RawWrite(fd int, p []byte) (int, error) { return unix.Write(fd, p) }

// RawWritev is writev(2) on a non-blocking descriptor.
func RawWritev(fd int, iov [][]byte) (int, error) { return Writev(fd, iov) }
