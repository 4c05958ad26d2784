package engine

import "sync/atomic"

// An HTTP handler runs on the event loop and must not block, but some
// answers wait on I/O: a coordinator round trip, a backend. Response.Defer
// lets such a handler answer later, from another goroutine, without a loop
// waiting: the connection stays with its loop, reads nothing more, and is
// answered and closed when Deferred.Respond's task runs there.

// Deferred is an HTTP answer given later (Response.Defer).
type Deferred struct {
	c    *Conn
	head bool // a HEAD request: the answer's body is not sent
	done atomic.Bool
}

// Defer tells the engine that the handler answers later with the returned
// Deferred's Respond, from any goroutine; what the handler set on w is
// ignored. The request's views (Body, headers) are valid only until the
// handler returns, as always: copy what the answer needs. The client waits
// at most Options.HandshakeTimeout from Defer for the answer; past it the
// connection is closed without one. Loop only (in an HTTPHandler).
func (w *Response) Defer() *Deferred {
	if w.deferred == nil {
		w.deferred = &Deferred{c: w.conn, head: w.head}
	}
	return w.deferred
}

// Respond sends the answer: w's status (zero means 200), content type,
// headers and body; the connection closes after it. Only the first call
// counts; one made after the connection ended does nothing. w's slices
// are not kept after Respond returns. Safe from any goroutine.
func (d *Deferred) Respond(w Response) {
	if !d.done.CompareAndSwap(false, true) || d.c == nil || d.c.closed.Load() {
		return
	}
	c := d.c
	status := w.Status
	if status == 0 {
		status = 200
	}
	b := appendResponseHead(nil, status, w.ContentType, w.Headers, len(w.Body))
	if !d.head {
		b = append(b, w.Body...)
	}
	c.loop.post(task{op: opLoopFunc, lfn: func() {
		if c.state != stateHandshake || c.kind != kindDeferred {
			return // closed meanwhile (timeout, client gone, shutdown)
		}
		l := c.loop
		_ = l.queueCopy(c, b, nil)
		c.setClose(ReasonHTTPDone, CloseAbnormal, nil)
		l.closeConn(c, ReasonHTTPDone, 0, "", nil)
	}})
}
