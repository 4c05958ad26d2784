package engine

import (
	"bytes"
	"errors"
	"io"
	"strconv"
)

// Request is a parsed HTTP request head. Its byte views point into the
// connection's read buffer and are valid only during the callback that
// receives it (CheckHandshake, OnOpen, an HTTPHandler): copy what you keep.
type Request struct {
	Method []byte
	URI    []byte // path and query as sent
	Path   []byte
	Query  []byte // after '?', without it
	Proto  []byte
	// Body is a plain HTTP request's body (Content-Length), empty if it
	// has none. A WebSocket upgrade has none.
	Body    []byte
	headers [32]header // inline: no allocation for ordinary requests
	nh      int
	extra   []header
	conn    *Conn
}

type header struct{ name, value []byte }

var errBadRequest = errors.New("engine: malformed request")

// Header returns the first value of the named header (case-insensitive), or nil.
func (r *Request) Header(name string) []byte {
	for i := 0; i < r.nh; i++ {
		if asciiEqualFold(r.headers[i].name, name) {
			return r.headers[i].value
		}
	}
	for _, h := range r.extra {
		if asciiEqualFold(h.name, name) {
			return h.value
		}
	}
	return nil
}

// VisitHeaders calls fn for each header in order.
func (r *Request) VisitHeaders(fn func(name, value []byte)) {
	for i := 0; i < r.nh; i++ {
		fn(r.headers[i].name, r.headers[i].value)
	}
	for _, h := range r.extra {
		fn(h.name, h.value)
	}
}

// QueryValue returns the first value of a query parameter, URL-decoded
// ("+" as a space), "" if there is none. The string is a copy, so it
// allocates; QueryBytes does not.
func (r *Request) QueryValue(key string) string {
	v, ok := r.queryRaw(key)
	if !ok {
		return ""
	}
	return unescape(v)
}

// QueryBytes returns the first value of a query parameter as sent, not
// URL-decoded, or nil if there is none. It points into the read buffer:
// valid only during the callback that received r, and it must not be
// modified. It does not allocate.
func (r *Request) QueryBytes(key string) []byte {
	v, ok := r.queryRaw(key)
	if !ok {
		return nil
	}
	return v[:len(v):len(v)]
}

func (r *Request) queryRaw(key string) ([]byte, bool) {
	q := r.Query
	for len(q) > 0 {
		var part []byte
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			part, q = q[:i], q[i+1:]
		} else {
			part, q = q, nil
		}
		k, v, _ := bytes.Cut(part, []byte{'='})
		if string(k) == key {
			if v == nil {
				v = part[len(part):]
			}
			return v, true
		}
	}
	return nil, false
}

// HasQuery reports whether the query string has the parameter key, with
// or without a value. It does not allocate.
func (r *Request) HasQuery(key string) bool {
	_, ok := r.queryRaw(key)
	return ok
}

// Cookie returns the value of the named cookie from the request's Cookie
// headers, "" if there is none. Values are returned as sent (RFC 6265 leaves
// their encoding to the application), without surrounding quotes.
func (r *Request) Cookie(name string) string {
	var found []byte
	ok := false
	r.VisitHeaders(func(n, v []byte) {
		if ok || !asciiEqualFold(n, "Cookie") {
			return
		}
		found, ok = cookieValue(v, name)
	})
	if !ok {
		return ""
	}
	return string(found)
}

// cookieValue finds name in one Cookie header's "a=1; b=2" list.
func cookieValue(v []byte, name string) ([]byte, bool) {
	for len(v) > 0 {
		var pair []byte
		if i := bytes.IndexByte(v, ';'); i >= 0 {
			pair, v = v[:i], v[i+1:]
		} else {
			pair, v = v, nil
		}
		k, val, hasEq := bytes.Cut(bytes.TrimSpace(pair), []byte{'='})
		if !hasEq || string(k) != name {
			continue
		}
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		return val, true
	}
	return nil, false
}

// Conn is the connection the request arrived on.
func (r *Request) Conn() *Conn { return r.conn }

func (r *Request) reset() {
	*r = Request{}
}

// parseRequestHead parses head (which ends with CRLFCRLF) into r. It accepts
// HTTP/1.0 and 1.1 request lines and refuses anything it cannot read
// unambiguously: a method or header name that is not a token, a control
// byte (NUL, a bare CR or LF, DEL) in the request line or a header, a
// folded header line.
func parseRequestHead(head []byte, r *Request) error {
	line, rest, ok := bytes.Cut(head, crlf)
	if !ok {
		return errBadRequest
	}
	m, rl, ok := bytes.Cut(line, sp)
	if !ok || !isToken(m) {
		return errBadRequest
	}
	uri, proto, ok := bytes.Cut(rl, sp)
	if !ok || len(uri) == 0 || uri[0] != '/' || !bytes.HasPrefix(proto, []byte("HTTP/1.")) || len(proto) != 8 ||
		proto[7] < '0' || proto[7] > '9' || !isVisible(uri) {
		return errBadRequest
	}
	r.Method, r.URI, r.Proto = m, uri, proto
	r.Path, r.Query, _ = bytes.Cut(uri, []byte{'?'})
	for len(rest) > 0 {
		line, rest, ok = bytes.Cut(rest, crlf)
		if !ok {
			return errBadRequest
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok || !isToken(name) {
			return errBadRequest
		}
		value = bytes.Trim(value, " \t")
		if !isFieldValue(value) {
			return errBadRequest
		}
		h := header{name: name, value: value}
		if r.nh < len(r.headers) {
			r.headers[r.nh] = h
			r.nh++
		} else {
			r.extra = append(r.extra, h)
		}
	}
	return nil
}

// isToken reports whether b is an RFC 9110 token (a method, a header name).
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChar[c] {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// isFieldValue reports whether b holds only what a header value may: no
// control byte but a tab (RFC 9110 §5.5; bytes over 0x7f pass as obs-text).
func isFieldValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// isVisible reports whether b (a request target) has no control byte and
// no space.
func isVisible(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// bodyLength is the length of a plain request's body from its
// Content-Length, at most max; status is the answer to refuse it with, 0
// if it is fine. A body without a length (Transfer-Encoding) is refused
// with 411, as RFC 9112 §6.3 allows: the engine reads only bodies it can
// bound before they arrive.
func (r *Request) bodyLength(max int) (n, status int) {
	var cl []byte
	seen := 0
	bad := false
	r.VisitHeaders(func(name, value []byte) {
		switch {
		case asciiEqualFold(name, "Transfer-Encoding"):
			bad = true
		case asciiEqualFold(name, "Content-Length"):
			seen++
			cl = value
		}
	})
	switch {
	case bad && seen > 0:
		return 0, 400 // both: a request smuggler's favourite ambiguity
	case bad:
		return 0, 411
	case seen == 0:
		return 0, 0
	case seen > 1 || len(cl) == 0 || len(cl) > 10:
		return 0, 400
	}
	for _, c := range cl {
		if c < '0' || c > '9' {
			return 0, 400
		}
		n = n*10 + int(c-'0')
	}
	if n > max {
		return 0, 413
	}
	return n, 0
}

var (
	crlf     = []byte("\r\n")
	crlfcrlf = []byte("\r\n\r\n")
	sp       = []byte(" ")
)

// isUpgrade reports whether the request asks for a WebSocket.
func (r *Request) isUpgrade() bool {
	return headerHasToken(r.Header("Upgrade"), "websocket")
}

func headerHasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var part []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			part, v = v[:i], v[i+1:]
		} else {
			part, v = v, nil
		}
		if asciiEqualFold(bytes.TrimSpace(part), token) {
			return true
		}
	}
	return false
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func unescape(v []byte) string {
	if bytes.IndexByte(v, '%') < 0 && bytes.IndexByte(v, '+') < 0 {
		return string(v)
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '+':
			out = append(out, ' ')
		case c == '%' && i+2 < len(v) && ishex(v[i+1]) && ishex(v[i+2]):
			out = append(out, unhex(v[i+1])<<4|unhex(v[i+2]))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// Response is what an HTTPHandler answers. Zero Status means 200.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
	// Headers are extra "Name: value" lines, without CRLF.
	Headers []string

	stream Handler // set by Stream
	sse    *SSE    // set by OpenSSE

	// for Defer: the request's connection and whether it is a HEAD
	conn     *Conn
	head     bool
	deferred *Deferred
}

// Stream turns the response into a long-lived stream held by the event loop
// like a WebSocket (for Server-Sent Events): the head is sent without a
// Content-Length, the connection stays open, h receives OnOpen and OnClose,
// and messages reach it through Conn.WriteRaw, Send, and published frames'
// stream variant (Frame.SetStream).
func (w *Response) Stream(h Handler) { w.stream = h }

// appendResponseHead appends a status line and headers.
func appendResponseHead(dst []byte, status int, contentType string, extra []string, contentLength int) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, statusText(status)...)
	dst = append(dst, "\r\n"...)
	if contentType != "" {
		dst = append(dst, "Content-Type: "...)
		dst = append(dst, contentType...)
		dst = append(dst, "\r\n"...)
	}
	for _, h := range extra {
		dst = append(dst, h...)
		dst = append(dst, "\r\n"...)
	}
	if contentLength >= 0 {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, int64(contentLength), 10)
		dst = append(dst, "\r\nConnection: close\r\n"...)
	}
	return append(dst, "\r\n"...)
}

func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 411:
		return "Length Required"
	case 413:
		return "Content Too Large"
	case 426:
		return "Upgrade Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 503:
		return "Service Unavailable"
	}
	return "Status"
}

// HTTPError rejects a handshake (returned from CheckHandshake) with a status.
type HTTPError struct {
	Status  int
	Message string
	// Headers are extra "Name: value" lines for the answer, without CRLF:
	// a 401 says how to authenticate with "WWW-Authenticate: Bearer".
	Headers []string
}

func (e *HTTPError) Error() string {
	return "engine: http " + strconv.Itoa(e.Status) + ": " + e.Message
}

// byteReader and byteWriter let gobwas's Upgrader run over bytes the loop
// already holds, without a net.Conn and without allocating per handshake.
type byteReader struct {
	b []byte
}

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

type byteWriter struct{ b []byte }

func (w *byteWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

type readWriter struct {
	*byteReader
	*byteWriter
}
