package engine

import (
	"bytes"
	"errors"
	"strconv"
	"time"
)

// Server-Sent Events (the WHATWG HTML standard, "Server-sent events").
//
// A stream is a plain HTTP response held by the event loop like a
// WebSocket: the handler of an HTTP route answers with Response.OpenSSE,
// the engine sends the head and keeps the connection, and events reach it
// the way frames reach a WebSocket: Conn.WriteRaw on the loop, Conn.Send
// from anywhere, and published frames' stream variant (Frame.SetStream),
// encoded once per publish for every stream subscriber.
//
// HTTP/1.1 clients get the body in chunked transfer encoding, which is
// what browsers expect of a response without a length: every write is
// one chunk, and a stream the server ends gets the last chunk, so the
// client knows it ended rather than broke. HTTP/1.0 clients, who know no
// chunks, get the bare bytes and the end of the connection ends the body.
// A published frame's stream variant is stored as a chunk once, and an
// HTTP/1.0 stream is given the same bytes without the chunk's head and
// tail: one encoding serves both.
//
// Heartbeats are the loop's timer sweep's (no timer per stream): a stream
// is sent a comment line every SSEOptions.Heartbeat, which keeps proxies
// from timing it out and lets the write path notice a client that is gone.
// A client that stops reading is bounded and closed by the write path like
// a slow WebSocket consumer (Options.MaxPendingBytes, see admit).

// kindStreamPlain is a stream to an HTTP/1.0 client: no chunks. kindStream
// is the chunked one. (Its value stands apart from the kinds in conn.go,
// which count up from zero.)
const kindStreamPlain connKind = 0x10

// Defaults of SSEOptions fields.
const (
	// DefaultSSEHeartbeat is the default of SSEOptions.Heartbeat.
	DefaultSSEHeartbeat = 30 * time.Second
	// DefaultSSERetry is the default of SSEOptions.Retry.
	DefaultSSERetry = 3 * time.Second
)

// SSEOptions configures an SSE endpoint. The zero value works.
type SSEOptions struct {
	// Heartbeat is how often each stream is sent a comment line
	// (resolution Options.SweepPeriod). Zero means DefaultSSEHeartbeat;
	// negative sends none.
	Heartbeat time.Duration
	// Retry is the reconnection delay the stream asks the client to use
	// (its "retry:" field), sent once when the stream opens, in whole
	// milliseconds. Zero means DefaultSSERetry; negative sends none.
	Retry time.Duration
	// MaxStreams caps the endpoint's open streams: past it a request is
	// answered 503 Service Unavailable with a Retry-After. Zero means no
	// cap.
	MaxStreams int
	// PublishAllOf, if set, makes Engine.PublishAll(f, exclude, h) with h
	// this handler reach the endpoint's streams too (with f's stream
	// variant), as if they were h's: a protocol whose broadcasts to every
	// connection should reach streams as well names its own handler here.
	PublishAllOf Handler
}

// ErrInvalidSSE wraps the error of an SSE field that cannot be sent
// (AppendSSEEvent) and of invalid SSEOptions.
var ErrInvalidSSE = errors.New("engine: invalid server-sent event")

func (o SSEOptions) withDefaults() SSEOptions {
	if o.Heartbeat == 0 {
		o.Heartbeat = DefaultSSEHeartbeat
	}
	if o.Retry == 0 {
		o.Retry = DefaultSSERetry
	}
	return o
}

// Validate reports a negative MaxStreams.
func (o SSEOptions) Validate() error {
	if o.MaxStreams < 0 {
		return errors.Join(ErrInvalidSSE, errors.New("SSEOptions.MaxStreams is negative (zero means no cap)"))
	}
	return nil
}

// SSE is a Server-Sent Events endpoint: a handler and the options its
// streams share. Build it once with NewSSE and open streams of it from an
// HTTP handler with Response.OpenSSE. Safe from any goroutine.
type SSE struct {
	route        // shared by every stream: handler, path, heartbeat, cap and count
	head  []byte // the response head and the retry hint, HTTP/1.1 (chunked)
	head0 []byte // the same for HTTP/1.0 (no chunks)
}

// NewSSE returns an SSE endpoint whose streams h serves (OnOpen, OnClose,
// OnTimer; OnMessage is never called: a stream's client sends nothing).
// path is what the streams' Conn.Path reports. Invalid options (Validate)
// are refused.
func (e *Engine) NewSSE(path string, h Handler, o SSEOptions) (*SSE, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.Join(ErrInvalidSSE, errors.New("NewSSE: nil handler"))
	}
	o = o.withDefaults()
	s := &SSE{route: route{h: h, path: path, max: int64(o.MaxStreams), alias: o.PublishAllOf}}
	if o.Heartbeat > 0 {
		s.heartbeat = int64(o.Heartbeat)
	}
	var retry []byte
	if o.Retry > 0 {
		retry = AppendSSERetry(nil, o.Retry)
	}
	s.head = appendResponseHead(nil, 200, "text/event-stream", sseHeaders11, -1)
	s.head = appendChunk(s.head, retry)
	s.head0 = appendResponseHead(nil, 200, "text/event-stream", sseHeaders10, -1)
	s.head0 = append(s.head0, retry...)
	return s, nil
}

// Streams is how many streams of s are open (counted only when
// SSEOptions.MaxStreams is set; 0 otherwise).
func (s *SSE) Streams() int64 { return s.open.Load() }

// The head of a stream: no caching, no buffering by proxies (nginx obeys
// X-Accel-Buffering), and the connection kept for as long as the stream
// lasts.
var (
	sseHeaders11 = []string{"Cache-Control: no-cache", "X-Accel-Buffering: no", "Connection: keep-alive", "Transfer-Encoding: chunked"}
	sseHeaders10 = []string{"Cache-Control: no-cache", "X-Accel-Buffering: no", "Connection: close"}
)

// OpenSSE turns the response into a stream of s: once the HTTP handler
// returns, the engine sends the head (status 200: the response's own
// Status, ContentType, Headers and Body are ignored) and the retry hint,
// and s's handler gets OnOpen. Past SSEOptions.MaxStreams the request is
// answered 503 instead. A HEAD request gets the head and no stream.
func (w *Response) OpenSSE(s *SSE) { w.sse = s }

// AcceptsEventStream reports whether the request's Accept header admits
// text/event-stream (RFC 9110 §12.5.1): no Accept header, or a media range
// text/event-stream, text/* or */* whose q is not 0. EventSource sends
// "Accept: text/event-stream"; curl sends "*/*".
func AcceptsEventStream(r *Request) bool {
	seen := false
	ok := false
	r.VisitHeaders(func(name, v []byte) {
		if !asciiEqualFold(name, "Accept") {
			return
		}
		seen = true
		for len(v) > 0 && !ok {
			var part []byte
			if i := bytes.IndexByte(v, ','); i >= 0 {
				part, v = v[:i], v[i+1:]
			} else {
				part, v = v, nil
			}
			mt, params, _ := bytes.Cut(part, []byte{';'})
			mt = bytes.TrimSpace(mt)
			if !asciiEqualFold(mt, "text/event-stream") && !asciiEqualFold(mt, "text/*") && !asciiEqualFold(mt, "*/*") {
				continue
			}
			ok = !qIsZero(params)
		}
	})
	return !seen || ok
}

// qIsZero reports whether a media range's parameters hold q=0 (0, 0.0, 0.00, 0.000).
func qIsZero(params []byte) bool {
	for len(params) > 0 {
		var p []byte
		if i := bytes.IndexByte(params, ';'); i >= 0 {
			p, params = params[:i], params[i+1:]
		} else {
			p, params = params, nil
		}
		k, v, _ := bytes.Cut(bytes.TrimSpace(p), []byte{'='})
		if !asciiEqualFold(bytes.TrimSpace(k), "q") {
			continue
		}
		v = bytes.TrimSpace(v)
		if len(v) == 0 || v[0] != '0' {
			return false
		}
		return len(bytes.Trim(v[1:], ".0")) == 0
	}
	return false
}

// openSSE finishes a request whose handler called OpenSSE. Loop only.
func (l *loop) openSSE(c *Conn, r *Request, s *SSE) {
	if !l.e.reserve(&s.route) {
		l.httpError(c, 503, "too many streams", "Retry-After: 1")
		return
	}
	if string(r.Proto) == "HTTP/1.0" {
		_ = l.queueCopy(c, s.head0, nil)
		l.opened(c, r, &s.route, kindStreamPlain)
	} else {
		_ = l.queueCopy(c, s.head, nil)
		l.opened(c, r, &s.route, kindStream)
	}
}

// reserve counts a connection opening on rt against its cap, if it has
// one; false means the cap is reached. What it reserves is given back in
// connClosed if the connection opened, else by whoever refuses it.
func (e *Engine) reserve(rt *route) bool {
	if rt.max <= 0 {
		return true
	}
	if rt.open.Add(1) > rt.max {
		rt.open.Add(-1)
		return false
	}
	return true
}

// unreserve gives back what reserve took, for a connection that did not open.
func (e *Engine) unreserve(rt *route) {
	if rt.max > 0 {
		rt.open.Add(-1)
	}
}

// chunkHeadroom is the room before a stream variant for its chunk head:
// up to eight hex digits (a chunk under 4 GiB) and CRLF.
const chunkHeadroom = 10

// appendChunk appends p as one HTTP/1.1 chunk; nothing for an empty p,
// whose chunk would be the last one.
func appendChunk(dst, p []byte) []byte {
	if len(p) == 0 {
		return dst
	}
	dst = strconv.AppendUint(dst, uint64(len(p)), 16)
	dst = append(dst, '\r', '\n')
	dst = append(dst, p...)
	return append(dst, '\r', '\n')
}

// lastChunk ends a chunked body.
var lastChunk = []byte("0\r\n\r\n")

// queueStream queues p for the stream c, as a chunk if c is chunked.
// Loop only.
func (l *loop) queueStream(c *Conn, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if c.kind == kindStreamPlain {
		return l.queueCopy(c, p, nil)
	}
	var hdr [chunkHeadroom]byte
	h := strconv.AppendUint(hdr[:0], uint64(len(p)), 16)
	h = append(h, '\r', '\n')
	n := len(h) + len(p) + 2
	if !l.admit(c, n) {
		return ErrClosed
	}
	off := len(l.arena)
	l.arena = append(l.arena, h...)
	l.arena = append(l.arena, p...)
	l.arena = append(l.arena, '\r', '\n')
	l.segs = append(l.segs, segment{off: int32(off), end: int32(off + n)})
	l.link(c, n)
	return nil
}

// heartbeat is a stream's keep-alive: a comment line, which a client
// ignores, and the blank line that ends it.
var (
	heartbeat      = []byte(":\n\n")
	heartbeatChunk = appendChunk(nil, heartbeat)
)

// streamTimers sends c its heartbeat when due. c.deadline holds when the
// last one went (or when the stream opened). Loop only.
func (l *loop) streamTimers(c *Conn, now int64) {
	hb := c.route.heartbeat
	if hb <= 0 || now-c.deadline < hb {
		return
	}
	c.deadline = now
	if c.kind == kindStreamPlain {
		_ = l.queueCopy(c, heartbeat, nil)
	} else {
		_ = l.queueCopy(c, heartbeatChunk, nil)
	}
}

// AppendSSEEvent appends one event to dst: an "id:" line if id is not
// empty, an "event:" line if event is not empty, one "data:" line per line
// of data, and the blank line that dispatches the event. CR, LF and CRLF
// each end a line of data (the standard's line ends), so no byte of data
// can start a field of its own; the client receives data with its line
// ends turned into LF. An empty data is sent as one empty "data:" line,
// which a client dispatches as an event with empty data.
//
// An id holding NUL, CR or LF (which a client would ignore, or read as
// another field) or an event holding CR or LF is refused with an error
// wrapping ErrInvalidSSE, and dst is returned unchanged. It allocates
// nothing beyond dst's growth.
func AppendSSEEvent(dst []byte, id, event string, data []byte) ([]byte, error) {
	if err := checkSSEID(id); err != nil {
		return dst, err
	}
	if err := checkSSEEvent(event); err != nil {
		return dst, err
	}
	if id != "" {
		dst = append(dst, "id: "...)
		dst = append(dst, id...)
		dst = append(dst, '\n')
	}
	if event != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, event...)
		dst = append(dst, '\n')
	}
	dst = AppendSSEData(dst, data)
	return append(dst, '\n'), nil
}

// AppendSSEData appends data as "data:" lines (see AppendSSEEvent),
// without the blank line that ends an event: for building an event from
// several parts.
func AppendSSEData(dst, data []byte) []byte {
	for {
		dst = append(dst, "data: "...)
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			dst = append(dst, data...)
			return append(dst, '\n')
		}
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
}

// AppendSSEComment appends text as comment lines (":" and the line; each
// line of text its own comment), which a client ignores.
func AppendSSEComment(dst []byte, text string) []byte {
	for {
		dst = append(dst, ':')
		i := indexLineEnd(text)
		if i < 0 {
			dst = append(dst, text...)
			return append(dst, '\n', '\n')
		}
		dst = append(dst, text[:i]...)
		dst = append(dst, '\n')
		if text[i] == '\r' && i+1 < len(text) && text[i+1] == '\n' {
			i++
		}
		text = text[i+1:]
	}
}

func indexLineEnd(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' || s[i] == '\n' {
			return i
		}
	}
	return -1
}

// AppendSSERetry appends a "retry:" field asking the client to wait d
// (in whole milliseconds) before reconnecting, and the blank line after
// it (dispatching nothing).
func AppendSSERetry(dst []byte, d time.Duration) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, int64(d/time.Millisecond), 10)
	return append(dst, '\n', '\n')
}

// CheckSSEID reports an id AppendSSEEvent would refuse.
func CheckSSEID(id string) error { return checkSSEID(id) }

// CheckSSEEvent reports an event name AppendSSEEvent would refuse.
func CheckSSEEvent(event string) error { return checkSSEEvent(event) }

var (
	errSSEID    = errors.Join(ErrInvalidSSE, errors.New("an event id may not hold NUL, CR or LF"))
	errSSEEvent = errors.Join(ErrInvalidSSE, errors.New("an event name may not hold CR or LF"))
)

func checkSSEID(id string) error {
	for i := 0; i < len(id); i++ {
		if c := id[i]; c == 0 || c == '\r' || c == '\n' {
			return errSSEID
		}
	}
	return nil
}

func checkSSEEvent(event string) error {
	if indexLineEnd(event) >= 0 {
		return errSSEEvent
	}
	return nil
}
