package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"
)

// gnetHandler adapts gnet's callbacks to the engine. Every callback runs on
// the event loop that owns the connection.
type gnetHandler struct {
	gnet.BuiltinEventEngine
	e *Engine
}

func (e *Engine) handler() gnet.EventHandler { return &gnetHandler{e: e} }

func (h *gnetHandler) OnBoot(eng gnet.Engine) gnet.Action {
	e := h.e
	e.gnet = eng
	addr, err := boundAddr(eng)
	if err != nil {
		e.bootErr = fmt.Errorf("engine: listen on %s: %w", e.opts.Addr, err)
		close(e.booted)
		return gnet.Shutdown
	}
	e.addr = addr
	close(e.booted)
	return gnet.None
}

// OnShutdown notes whether gnet is stopping because Shutdown asked it to.
func (h *gnetHandler) OnShutdown(gnet.Engine) {
	if !h.e.stopping.Load() {
		h.e.unexpected.Store(true)
	}
}

func (h *gnetHandler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	e := h.e
	if e.draining.Load() {
		return nil, gnet.Close
	}
	// Every accepted connection counts against the cap from here, before
	// anything is read: one that sends nothing holds a descriptor as surely
	// as one that upgrades. Past the cap it is closed before it costs more.
	if n := e.tcp.Add(1); e.connCap > 0 && n > e.connCap {
		e.tcp.Add(-1)
		if e.capByFiles {
			e.refusedFiles.Add(1)
		} else {
			e.refusedMax.Add(1)
		}
		if ok, more := e.capLog.Allow(); ok {
			e.opts.Logger.Warn("engine: connection refused: the connection limit is reached",
				"limit", e.connCap, "by_file_limit", e.capByFiles, "more_refused_since_last_line", more)
		}
		return nil, gnet.Close
	}
	if max := e.opts.MaxConnectionsPerIP; max > 0 {
		// Counted before anything is read, as the cap above; released in
		// connClosed, which every accepted connection reaches.
		if ip, ok := ipOf(gc.RemoteAddr()); ok && !e.perIP.acquire(ip, max) {
			e.tcp.Add(-1)
			e.refusedPerIP.Add(1)
			if ok, more := e.refusalLog.Allow(); ok {
				e.opts.Logger.Info("engine: connection refused: too many from its address",
					"remote", ip.String(), "max_connections_per_ip", max, "more_refused_since_last_line", more)
			}
			return nil, gnet.Close
		}
	}
	l := e.loopFor(gc.EventLoop())
	l.enter()
	c := &Conn{
		id:       e.makeID(slotOf(gc.Fd())),
		loop:     l,
		sock:     gc,
		remote:   gc.RemoteAddr(),
		deadline: l.now + int64(e.opts.HandshakeTimeout),
		lastRead: l.now,
	}
	gc.SetContext(c)
	l.addConn(c)
	e.accepted.Add(1)
	l.leave()
	return nil, gnet.None
}

func (h *gnetHandler) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil {
		return gnet.None
	}
	l := c.loop
	l.enter()
	h.e.connClosed(c, err)
	l.leave()
	return gnet.None
}

func (h *gnetHandler) OnTraffic(gc gnet.Conn) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil {
		return gnet.Close
	}
	if c.loop.traffic(c) {
		return gnet.Close
	}
	return gnet.None
}

// traffic handles readable input on c. It reports whether the transport
// must be closed now (the caller owns that, since c is mid-callback).
func (l *loop) traffic(c *Conn) bool {
	prev := l.current
	l.current = c
	l.enter()
	c.lastRead = l.now
	switch c.state {
	case stateHandshake:
		if c.kind == kindDeferred {
			_, _ = c.sock.Discard(-1) // its answer is on its way; nothing more is read
			break
		}
		l.readHandshake(c)
	case stateOpen:
		switch {
		case c.IsStream():
			_, _ = c.sock.Discard(-1) // a stream's client has nothing to say
		case c.need == needPaused:
			// Input waits for ResumeReading. With third_party/gnet the socket
			// is not read meanwhile; upstream gnet reads on, so the input a
			// paused connection may pile up is bounded here.
			if c.sock.InboundBuffered() > l.e.opts.MaxPausedBytes {
				l.closeConn(c, ReasonLimit, ClosePolicyViolation, "too much input while paused", nil)
			}
		default:
			l.readFrames(c)
		}
	case stateClosing:
		l.readClosing(c)
	}
	l.leave()
	l.current = prev
	return c.closeAfterFlush && c.state != stateClosed
}

func (h *gnetHandler) OnTick() (time.Duration, gnet.Action) {
	e := h.e
	for _, l := range *e.loops.Load() {
		l.post(task{op: opTick})
	}
	return e.opts.TickInterval, gnet.None
}

// readHandshake waits for a complete request head in gnet's inbound buffer
// (never copying it out), then routes it: WebSocket upgrade, stream, or a
// plain HTTP answer. A plain request's body, if it has one, is waited for
// the same way.
func (l *loop) readHandshake(c *Conn) {
	e := l.e
	gc := c.sock
	buf, _ := gc.Peek(-1)
	start := max(0, int(c.scanned)-3)
	i := bytes.Index(buf[start:], crlfcrlf)
	if i < 0 {
		if len(buf) > e.opts.MaxHeaderBytes {
			l.httpError(c, 431, "request head too large")
			return
		}
		// A line ended by a bare LF would never end the head: refuse it now
		// rather than at the handshake timeout.
		if hasBareLF(buf, int(c.scanned)) {
			l.httpError(c, 400, "malformed request: lines must end with CRLF")
			return
		}
		c.scanned = int32(len(buf)) // ≤ MaxHeaderBytes
		return
	}
	headLen := start + i + 4
	if headLen > e.opts.MaxHeaderBytes {
		l.httpError(c, 431, "request head too large")
		return
	}
	head := buf[:headLen]
	if hasBareLF(head, int(c.scanned)) {
		l.httpError(c, 400, "malformed request: lines must end with CRLF")
		return
	}
	r := &l.req
	r.reset()
	r.conn = c
	if err := parseRequestHead(head, r); err != nil {
		l.httpError(c, 400, "malformed request")
		return
	}
	used := headLen
	if r.isUpgrade() {
		l.upgrade(c, r, head)
	} else {
		n, status := r.bodyLength(e.opts.MaxMessageSize)
		switch {
		case status != 0:
			l.httpError(c, status, statusText(status))
			r.reset()
			return
		case len(buf) < headLen+n:
			r.reset()
			return // the body is on its way; the head is parsed again with it
		}
		used += n
		r.Body = buf[headLen:used]
		l.serveHTTP(c, r)
	}
	r.reset()
	if c.state == stateHandshake || c.state == stateClosed {
		return
	}
	_, _ = gc.Discard(used)
	if c.state == stateOpen && c.kind == kindWebSocket {
		l.readFrames(c) // a client may pipeline frames behind its request
	}
}

// hasBareLF reports whether b, from offset from on, has an LF not preceded
// by CR. RFC 9112 §2.2 lets a server take a bare LF for a line end; the
// engine refuses it instead, as it refuses anything the WebSocket upgrader
// behind it would read differently.
func hasBareLF(b []byte, from int) bool {
	for i := from; i < len(b); i++ {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return false
		}
		i += j
		if i == 0 || b[i-1] != '\r' {
			return true
		}
	}
	return false
}

func (l *loop) upgrade(c *Conn, r *Request, head []byte) {
	e := l.e
	e.routesMu.RLock()
	wr := e.ws[string(r.Path)]
	e.routesMu.RUnlock()
	switch {
	case wr == nil:
		l.httpError(c, 404, "no WebSocket endpoint here")
		return
	case e.draining.Load():
		l.httpError(c, 503, "server shutting down")
		return
	case !e.reserve(&wr.route):
		l.httpError(c, 503, "too many connections", "Retry-After: 1")
		return
	}
	if hc, ok := wr.h.(HandshakeChecker); ok {
		if err := hc.CheckHandshake(r); err != nil {
			e.unreserve(&wr.route)
			var he *HTTPError
			if errors.As(err, &he) {
				l.httpError(c, he.Status, he.Message, he.Headers...)
			} else {
				l.httpError(c, 403, err.Error())
			}
			return
		}
	}
	l.hsReader.b = head
	l.hsWriter.b = l.hsWriter.b[:0]
	_, err := wr.upgrader.Upgrade(readWriter{&l.hsReader, &l.hsWriter})
	if err != nil {
		// gobwas's refusal (400, 405, 426, 505) leaves the connection's
		// fate unsaid; the engine closes it, and says so.
		l.hsWriter.b = withConnectionClose(l.hsWriter.b)
	}
	_ = l.queueCopy(c, l.hsWriter.b, nil)
	if err != nil {
		e.unreserve(&wr.route)
		c.setClose(ReasonHandshakeFailed, CloseAbnormal, err)
		l.closeConn(c, ReasonHandshakeFailed, 0, "", err)
		return
	}
	l.opened(c, r, &wr.route, kindWebSocket)
}

// withConnectionClose adds "Connection: close" to a response head written
// by gobwas's upgrader, after its status line.
func withConnectionClose(resp []byte) []byte {
	i := bytes.Index(resp, crlf)
	if i < 0 || bytes.Contains(resp, []byte("\r\nConnection: close\r\n")) {
		return resp
	}
	i += len(crlf)
	const hdr = "Connection: close\r\n"
	resp = append(resp, hdr...)
	copy(resp[i+len(hdr):], resp[i:len(resp)-len(hdr)])
	copy(resp[i:], hdr)
	return resp
}

// opened finishes a handshake: the connection joins the registry and its
// handler sees it.
func (l *loop) opened(c *Conn, r *Request, rt *route, kind connKind) {
	c.state = stateOpen
	c.kind = kind
	c.route = rt
	c.need = 0
	c.deadline = 0 // open: no engine ping sent yet
	if c.IsStream() {
		c.deadline = l.now // open: when the last heartbeat went (sse.go)
	}
	l.e.open.Add(1)
	rt.h.OnOpen(c, r)
	// Published for Lookup only now: the registry's atomic store is what
	// orders what OnOpen stored (SetValue) before another goroutine's
	// Lookup and Value, and a handler hands the connection's identity out
	// no earlier than OnOpen.
	if c.state != stateClosed {
		l.e.registry.add(c)
	}
}

func (l *loop) serveHTTP(c *Conn, r *Request) {
	e := l.e
	e.routesMu.RLock()
	rt := e.http[string(r.Path)]
	_, isWS := e.ws[string(r.Path)]
	e.routesMu.RUnlock()
	switch {
	case rt == nil && isWS:
		l.httpError(c, 426, "this endpoint speaks WebSocket", "Upgrade: websocket")
		return
	case rt == nil:
		l.httpError(c, 404, "not found")
		return
	case !rt.allows(r.Method):
		l.httpError(c, 405, "method not allowed", rt.allow)
		return
	}
	head := string(r.Method) == "HEAD"
	w := &l.resp
	*w = Response{conn: c, head: head}
	rt.fn(w, r)
	if w.deferred != nil {
		// Answered by Deferred.Respond, through a task that runs after
		// this; until then c stays in its handshake with a new deadline.
		c.kind = kindDeferred
		c.deadline = l.now + int64(e.opts.HandshakeTimeout)
		*w = Response{}
		return
	}
	if w.sse != nil {
		s := w.sse
		*w = Response{}
		if !head {
			l.openSSE(c, r, s)
			return
		}
		w.ContentType, w.Headers, w.stream = "text/event-stream", sseHeaders11[:2], s.h // below: the head alone
	}
	status := w.Status
	if status == 0 {
		status = 200
	}
	if w.stream != nil && !head {
		kind, headers := kindStream, append(w.Headers[:len(w.Headers):len(w.Headers)], "Transfer-Encoding: chunked")
		if string(r.Proto) == "HTTP/1.0" {
			kind, headers = kindStreamPlain, w.Headers // no chunks: the body ends with the connection
		}
		l.hsWriter.b = appendResponseHead(l.hsWriter.b[:0], status, w.ContentType, headers, -1)
		_ = l.queueCopy(c, l.hsWriter.b, nil)
		rt := &route{h: w.stream, path: string(r.Path)}
		*w = Response{}
		l.opened(c, r, rt, kind)
		return
	}
	n, headers := len(w.Body), w.Headers
	if w.stream != nil { // HEAD of a stream: its head, no length, and no stream
		n, headers = -1, append(headers[:len(headers):len(headers)], "Connection: close")
	}
	l.hsWriter.b = appendResponseHead(l.hsWriter.b[:0], status, w.ContentType, headers, n)
	if !head {
		l.hsWriter.b = append(l.hsWriter.b, w.Body...)
	}
	*w = Response{}
	_ = l.queueCopy(c, l.hsWriter.b, nil)
	c.setClose(ReasonHTTPDone, CloseAbnormal, nil)
	l.closeConn(c, ReasonHTTPDone, 0, "", nil)
}

// httpError answers a request that will not be served and closes.
func (l *loop) httpError(c *Conn, status int, msg string, headers ...string) {
	body := msg + "\n"
	l.hsWriter.b = appendResponseHead(l.hsWriter.b[:0], status, "text/plain; charset=utf-8", headers, len(body))
	l.hsWriter.b = append(l.hsWriter.b, body...)
	_ = l.queueCopy(c, l.hsWriter.b, nil)
	if c.closeReason == ReasonUnknown {
		c.setClose(ReasonHandshakeFailed, CloseAbnormal, nil)
	}
	l.closeConn(c, ReasonHandshakeFailed, 0, "", nil)
}

// readFrames parses every complete frame in gnet's inbound buffer. A frame
// that sits whole in one buffer is unmasked in place and handed to the
// handler without a copy; only fragmented messages are reassembled.
func (l *loop) readFrames(c *Conn) {
	e := l.e
	gc := c.sock
	max := int64(e.opts.MaxMessageSize)
	for c.state == stateOpen {
		n := gc.InboundBuffered()
		if n == 0 || n < int(c.need) {
			return
		}
		hb, _ := gc.Peek(min(n, maxHeaderSize))
		h, ok, err := parseFrameHeader(hb)
		if err != nil {
			l.fail(c, err)
			return
		}
		if !ok {
			c.need = int32(min(n+1, needPaused-1))
			return
		}
		if err := checkFrame(&h, c.fragOp, l.fragOf(c), max); err != nil {
			l.fail(c, err)
			return
		}
		total := h.size + int(h.length)
		if n < total {
			c.need = int32(min(total, needPaused-1))
			return
		}
		c.need = 0
		buf, _ := gc.Peek(total)
		payload := buf[h.size:total]
		if h.length > 0 {
			ws.Cipher(payload, h.mask, 0)
		}
		l.stats.bytesIn.Add(uint64(total))
		l.handleFrame(c, &h, payload)
		_, _ = gc.Discard(total)
	}
}

// readBuffered parses the frames that waited while c's reading was paused,
// outside any gnet callback for c: it stands in for OnTraffic, so a close
// the handler asks for is made the way traffic's caller would make it.
func (l *loop) readBuffered(c *Conn) {
	prev := l.current
	l.current = c
	l.readFrames(c)
	l.current = prev
	if c.closeAfterFlush && c.state != stateClosed && !c.dirty {
		l.closeTransport(c) // else flush closes it once its bytes are out
	}
}

// checkFrame applies RFC 6455's rules for a client frame header.
func checkFrame(h *frameHeader, fragOp OpCode, frag interface{ Len() int }, max int64) error {
	switch {
	case !h.masked:
		return errUnmasked
	case h.rsv != 0:
		return errReservedBits
	case h.op.isReserved():
		return errReservedOpcode
	}
	if h.op.isControl() {
		if !h.fin {
			return errControlFrag
		}
		if h.length > 125 {
			return errControlTooBig
		}
		return nil
	}
	if h.op == OpContinuation {
		if fragOp == 0 {
			return errBadContinue
		}
	} else if fragOp != 0 {
		return errExpectContinue
	}
	size := h.length
	if fragOp != 0 {
		size += int64(frag.Len())
	}
	if size > max {
		return errTooBig
	}
	return nil
}

func (l *loop) handleFrame(c *Conn, h *frameHeader, payload []byte) {
	switch h.op {
	case OpPing:
		var hdr [maxHeaderSize]byte
		_ = l.queueCopy(c, payload, appendFrameHeader(hdr[:0], OpPong, true, len(payload)))
	case OpPong:
	case OpClose:
		l.peerClose(c, payload)
	case OpText, OpBinary:
		if h.fin {
			l.deliver(c, h.op, payload)
			return
		}
		f := acquireBuf()
		f.B = append(f.B[:0], payload...)
		if l.frags == nil {
			l.frags = make(map[*Conn]*bytebufferpool.ByteBuffer)
		}
		l.frags[c] = f
		c.fragOp = h.op
	case OpContinuation:
		f := l.frags[c]
		f.B = append(f.B, payload...)
		if h.fin {
			op := c.fragOp
			delete(l.frags, c)
			c.fragOp = 0
			l.deliver(c, op, f.B)
			releaseBuf(f)
		}
	}
}

func (l *loop) deliver(c *Conn, op OpCode, payload []byte) {
	if op == OpText && !utf8.Valid(payload) {
		l.fail(c, errInvalidUTF8)
		return
	}
	l.stats.messagesIn.Add(1)
	c.route.h.OnMessage(c, op, payload)
}

// peerClose answers the peer's close frame with the same code and closes.
func (l *loop) peerClose(c *Conn, payload []byte) {
	code := CloseNoStatus
	switch {
	case len(payload) == 1:
		l.fail(c, errBadCloseBody)
		return
	case len(payload) >= 2:
		code = CloseCode(binary.BigEndian.Uint16(payload))
		if !validCloseCode(code) {
			l.fail(c, errBadCloseCode)
			return
		}
		if !utf8.Valid(payload[2:]) {
			l.fail(c, errInvalidUTF8)
			return
		}
	}
	c.setClose(ReasonClientClosed, code, nil)
	var buf [maxHeaderSize + 2]byte
	reply := appendCloseFrame(buf[:0], code, "")
	_ = l.queueCopy(c, nil, reply)
	c.state = stateClosing
	c.closeAfterFlush = true
	c.deadline = l.now // nothing to wait for: the sweep closes it if the flush has not
}

// fail closes c for a protocol violation with the matching close code.
func (l *loop) fail(c *Conn, err error) {
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		pe = protoErr(CloseProtocolError, err.Error())
	}
	reason := ReasonProtocolError
	switch pe.Code {
	case CloseInvalidPayload:
		reason = ReasonInvalidPayload
	case CloseMessageTooBig:
		reason = ReasonMessageTooBig
	}
	l.dropFrag(c)
	l.closeConn(c, reason, pe.Code, pe.Reason, pe)
	l.readClosing(c)
}

// readClosing discards input after our close frame went out; the peer's
// own close frame (or EOF, or CloseTimeout) ends the connection.
func (l *loop) readClosing(c *Conn) {
	gc := c.sock
	for {
		n := gc.InboundBuffered()
		if n == 0 {
			return
		}
		hb, _ := gc.Peek(min(n, maxHeaderSize))
		h, ok, err := parseFrameHeader(hb)
		if err != nil || !ok || h.rsv != 0 || h.op.isReserved() {
			_, _ = gc.Discard(-1)
			return
		}
		total := h.size + int(h.length)
		if h.op == OpClose {
			_, _ = gc.Discard(-1)
			c.closeAfterFlush = true
			l.closeTransport(c)
			return
		}
		if n < total {
			_, _ = gc.Discard(-1)
			return
		}
		_, _ = gc.Discard(total)
	}
}
