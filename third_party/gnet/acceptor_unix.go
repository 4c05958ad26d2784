// Copyright (c) 2021 The Gnet Authors. All rights reserved.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package gnet

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/panjf2000/gnet/v2/pkg/errors"
	"github.com/panjf2000/gnet/v2/pkg/netpoll"
	"github.com/panjf2000/gnet/v2/pkg/queue"
	"github.com/panjf2000/gnet/v2/pkg/socket"
)

func (el *eventloop) accept0(fd int, _ netpoll.IOEvent, _ netpoll.IOFlags) error {
	for {
		nfd, sa, err := socket.Accept(fd)
		switch err {
		case nil:
		case unix.EAGAIN: // the Accept queue has been drained out, we can return now
			return nil
		case unix.EINTR, unix.ECONNRESET, unix.ECONNABORTED:
			// ECONNRESET or ECONNABORTED could indicate that a socket
			// in the Accept queue was closed before we Accept()ed it.
			// It's a silly error, let's retry it.
			continue
		default:
			if acceptExhausted(err) { // meshfast
				return el.acceptBackoff(el.listeners[fd], err, true)
			}
			el.getLogger().Errorf("Accept() failed due to error: %v", err)
			return errors.ErrAcceptSocket
		}

		ln := el.listeners[fd]
		if ln.backoff != 0 { // meshfast
			el.acceptResumed(ln)
		}
		remoteAddr := socket.SockaddrToTCPOrUnixAddr(sa)
		network := ln.network
		if opts := el.engine.opts; opts.TCPKeepAlive > 0 && network == "tcp" &&
			(runtime.GOOS != "linux" && runtime.GOOS != "freebsd" && runtime.GOOS != "dragonfly") {
			// TCP keepalive options are not inherited from the listening socket
			// on platforms other than Linux, FreeBSD, or DragonFlyBSD.
			// We therefore need to set them on the accepted socket explicitly.
			//
			// Check out https://github.com/nginx/nginx/pull/337 for details.
			if err = setKeepAlive(
				nfd,
				true,
				opts.TCPKeepAlive,
				opts.TCPKeepInterval,
				opts.TCPKeepCount); err != nil {
				el.getLogger().Errorf("failed to set TCP keepalive on fd=%d: %v", fd, err)
			}
		}

		el := el.engine.eventLoops.next(remoteAddr)
		c := newStreamConn(network, nfd, el, sa, el.listeners[fd].addr, remoteAddr)
		err = el.poller.Trigger(queue.HighPriority, el.register, c)
		if err != nil {
			el.getLogger().Errorf("failed to enqueue the accepted socket fd=%d to poller: %v", c.fd, err)
			_ = unix.Close(nfd)
			c.release()
		}
	}
}

// acceptBatch bounds how many queued connections a loop accepts per wake-up
// with SO_REUSEPORT (meshfast): upstream takes one and waits in epoll_wait
// again for the next, an extra wait per connection in a connect storm; the
// bound keeps a long queue from starving the loop's other connections.
const acceptBatch = 64

func (el *eventloop) accept(fd int, ev netpoll.IOEvent, flags netpoll.IOFlags) error {
	network := el.listeners[fd].network
	if network == "udp" {
		return el.readUDP(fd, ev, flags)
	}

	for i := 0; i < acceptBatch; i++ {
		nfd, sa, err := socket.Accept(fd)
		switch err {
		case nil:
		case unix.EINTR, unix.EAGAIN, unix.ECONNRESET, unix.ECONNABORTED:
			// ECONNRESET or ECONNABORTED could indicate that a socket
			// in the Accept queue was closed before we Accept()ed it.
			// It's a silly error, let's retry it.
			return nil
		default:
			if acceptExhausted(err) { // meshfast
				return el.acceptBackoff(el.listeners[fd], err, false)
			}
			el.getLogger().Errorf("Accept() failed due to error: %v", err)
			return errors.ErrAcceptSocket
		}

		if ln := el.listeners[fd]; ln.backoff != 0 { // meshfast
			el.acceptResumed(ln)
		}
		remoteAddr := socket.SockaddrToTCPOrUnixAddr(sa)
		if opts := el.engine.opts; opts.TCPKeepAlive > 0 && el.listeners[fd].network == "tcp" &&
			(runtime.GOOS != "linux" && runtime.GOOS != "freebsd" && runtime.GOOS != "dragonfly") {
			// TCP keepalive options are not inherited from the listening socket
			// on platforms other than Linux, FreeBSD, or DragonFlyBSD.
			// We therefore need to set them on the accepted socket explicitly.
			//
			// Check out https://github.com/nginx/nginx/pull/337 for details.
			if err = setKeepAlive(
				nfd,
				true,
				opts.TCPKeepAlive,
				opts.TCPKeepInterval,
				opts.TCPKeepCount); err != nil {
				el.getLogger().Errorf("failed to set TCP keepalive on fd=%d: %v", fd, err)
			}
		}

		c := newStreamConn(network, nfd, el, sa, el.listeners[fd].addr, remoteAddr)
		if err := el.register0(c); err != nil {
			return err
		}
	}
	return nil
}

// Accepting while the process or the system is out of descriptors or
// memory (meshfast). Upstream treats any accept error but a few as fatal
// and shuts the whole engine down: every connection dropped, the port
// closed, the process still alive. Like Go's net/http, the patch instead
// stops accepting on that listener for a while and tries again, waiting
// 5 ms, then twice as long each time up to a second. The listener is taken
// out of the poller meanwhile, so a level-triggered loop does not spin on
// a queue it cannot accept from, and put back when the wait is over; the
// first successful accept ends the episode. Each episode is logged once
// when it starts and once when it ends, and counted (Engine.AcceptBackoffs,
// Engine.AcceptErrors).
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// nextBackoff doubles a wait up to acceptBackoffMax (meshfast).
func nextBackoff(d time.Duration) time.Duration {
	if d *= 2; d > acceptBackoffMax {
		d = acceptBackoffMax
	}
	return d
}

// acceptExhausted reports whether an accept failed for want of resources
// that closing connections gives back (meshfast).
func acceptExhausted(err error) bool {
	switch err {
	case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
		return true
	}
	return false
}

// acceptBackoff stops accepting on ln until the current wait is over
// (meshfast). Runs on the loop that owns ln.
func (el *eventloop) acceptBackoff(ln *listener, err error, edgeTriggered bool) error {
	eng := el.engine
	eng.acceptErrors.Add(1)
	if ln.backoff == 0 {
		eng.acceptBackoffs.Add(1)
		ln.backoff = acceptBackoffMin
		ln.backoffSince = time.Now()
		ln.backoffFailures = 0
		el.getLogger().Errorf("accept on %s: %v; not accepting for now, retrying in %v and backing off up to %v "+
			"(logged once until accepting works again)", ln.address, err, ln.backoff, acceptBackoffMax)
	} else {
		ln.backoff = nextBackoff(ln.backoff)
	}
	ln.backoffFailures++
	ln.rearmET = edgeTriggered
	if derr := el.disarmListener(ln); derr != nil {
		// Without a way to stop the poller reporting the listener, waiting
		// would spin: fail as upstream does.
		el.getLogger().Errorf("Accept() failed due to error: %v (and the listener could not be paused: %v)", err, derr)
		return errors.ErrAcceptSocket
	}
	ln.rearmAfter(ln.backoff, func() {
		_ = el.poller.Trigger(queue.HighPriority, el.rearmListener, ln)
	})
	return nil
}

// acceptResumed ends a backoff episode at the first accept that works
// (meshfast). Runs on the loop that owns ln.
func (el *eventloop) acceptResumed(ln *listener) {
	el.getLogger().Infof("accept on %s works again after %d failed attempts over %v",
		ln.address, ln.backoffFailures, time.Since(ln.backoffSince).Round(time.Millisecond))
	ln.backoff = 0
	ln.backoffFailures = 0
}

// rearmListener puts ln back in the loop's poller once its wait is over
// (meshfast); if the poller refuses, it waits again. Runs on the loop.
func (el *eventloop) rearmListener(a any) error {
	ln := a.(*listener)
	if ln.isClosed() {
		return nil
	}
	if err := el.poller.AddRead(ln.pollAttachment, ln.rearmET); err != nil {
		ln.backoff = nextBackoff(ln.backoff)
		el.getLogger().Errorf("accept on %s: putting the listener back in the poller: %v; retrying in %v", ln.address, err, ln.backoff)
		ln.rearmAfter(ln.backoff, func() {
			_ = el.poller.Trigger(queue.HighPriority, el.rearmListener, ln)
		})
	}
	return nil
}
