// meshfast: a connection's reading can be paused at the socket, so that a
// peer that keeps sending is slowed down by TCP instead of filling the
// inbound buffer (MESHFAST.md, change 6).
//
// Upstream gnet reads every readable connection into its inbound buffer,
// whether or not the handler consumes what it has. A server that stops
// consuming one client's input (its commands queued faster than they
// complete) can then only watch that buffer grow or close the client. With
// reading paused the descriptor stays in epoll without EPOLLIN: the
// kernel's receive buffer fills, the peer's window closes and its writes
// block. What gnet had already read stays in the inbound buffer for the
// handler to consume after ResumeRead. Writes go on as usual meanwhile.
//
// Only the default epoll poller honours PollAttachment.ReadOff, and only
// level-triggered connections (gnet's default) can pause: in edge-
// triggered mode gnet registers every connection for writes too and
// re-reads on its own.

//go:build linux && !poll_opt

package gnet

import "github.com/panjf2000/gnet/v2/pkg/errors"

// PauseRead stops reading the connection's socket until ResumeRead. While
// paused the poller reports no read events for it, so a peer that closes
// its side is noticed only once reading resumes (a reset is noticed at
// once). Call it on the connection's event loop.
func (c *conn) PauseRead() error {
	if c.loop.engine.opts.EdgeTriggeredIO || c.isDatagram {
		return errors.ErrUnsupportedOp
	}
	if c.pollAttachment.ReadOff {
		return nil
	}
	c.pollAttachment.ReadOff = true
	return c.modEvents()
}

// ResumeRead undoes PauseRead: the socket is read again when it is
// readable. Bytes read before the pause are still in the inbound buffer;
// the caller consumes them itself, since no read event reports them. Call
// it on the connection's event loop.
func (c *conn) ResumeRead() error {
	if !c.pollAttachment.ReadOff {
		return nil
	}
	c.pollAttachment.ReadOff = false
	return c.modEvents()
}

// modEvents re-registers the connection with the events it needs now.
func (c *conn) modEvents() error {
	if !c.opened {
		return nil // closed: out of the poller already
	}
	if c.outboundBuffer.IsEmpty() {
		return c.loop.poller.ModRead(&c.pollAttachment, false)
	}
	return c.loop.poller.ModReadWrite(&c.pollAttachment, false)
}
